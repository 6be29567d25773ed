-- Go's guarantees in the pure-Lua library (issue #15): x/sync's semaphore
-- (oversized and cancelled acquires), errgroup's SetLimit(0),
-- singleflight's DoChan and Forget, and time.AfterFunc's Stop/Reset.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local eventually = S.eventually
local context = go.context
local after_func = go.after_func or require("goro.sync").after_func

local function cancelled()
  local ctx, cancel = context.with_cancel(context.background())
  cancel()
  return ctx
end

-- ------------------------------------------------------------- semaphore

function test_an_oversized_acquire_leaves_the_semaphore_usable()
  local s = go.semaphore(2)
  local ok, err = pcall(function() s:acquire(3) end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro: semaphore acquire of 3 exceeds its size 2")
  lu.assertStrContains(err, "guarantees_spec.lua") -- the caller's line
  -- every token is still free, and nobody is queued
  lu.assertTrue(s:try_acquire(1))
  lu.assertTrue(s:try_acquire(1))
  lu.assertEquals(s:held(), 2)
  s:release(2)
  lu.assertTrue(s:acquire(2))
  s:release(2)
  -- a context that can never end cannot end the wait either: an error too
  lu.assertErrorMsgContains("exceeds its size 2", s.acquire, s, 3, context.background())
  lu.assertTrue(s:try_acquire(2))
end

function test_an_oversized_acquire_waits_for_its_context_and_blocks_nobody()
  for _ = 1, 20 do
    local s = go.semaphore(2)
    local ctx, cancel = context.with_cancel(context.background())
    local got = go.chan(1)
    -- runs before or during the oversized wait; either way it is not
    -- queued behind it (if it were, cancel would never come: deadlock)
    go(function()
      go.yield()
      got:send(s:acquire(2))
      cancel()
    end)
    local ok, err = s:acquire(3, ctx)
    lu.assertFalse(ok)
    lu.assertEquals(err, "context canceled")
    lu.assertTrue(got:recv())
    lu.assertEquals(s:held(), 2)
    s:release(2)
  end
end

function test_an_already_done_context_fails_even_with_every_token_free()
  local s = go.semaphore(2)
  local ok, err = s:acquire(1, cancelled())
  lu.assertFalse(ok)
  lu.assertEquals(err, "context canceled")
  ok, err = s:acquire(cancelled(), 3) -- Go's order, and oversized
  lu.assertFalse(ok)
  lu.assertEquals(err, "context canceled")
  local dctx, dcancel = context.with_timeout(context.background(), -1)
  ok, err = s:acquire(1, dctx)
  dcancel()
  lu.assertFalse(ok)
  lu.assertEquals(err, "context deadline exceeded")
  lu.assertEquals(s:held(), 0)
  lu.assertTrue(s:try_acquire(2))
end

function test_a_failed_acquire_returns_false_and_the_error()
  local s = go.semaphore(1)
  s:acquire()
  local ctx, cancel = context.with_cancel(context.background())
  local res = go.chan(1)
  go(function() res:send({s:acquire(1, ctx)}) end)
  lu.assertTrue(eventually(function() -- queued
    local st = s.st:recv()
    s.st:send(st)
    return type(st) == "table" and st.head ~= nil
  end))
  cancel()
  local r = res:recv()
  lu.assertEquals(r, {false, "context canceled"})
  s:release()
  lu.assertEquals(s:held(), 0)
end

-- Acquires with contexts that end while releases hand tokens over: the
-- tokens given back by a cancelled acquire are never lost nor doubled.
function test_cancelled_acquires_racing_with_releases_keep_every_token()
  local SIZE, G, N = 3, 6, S.scaled(150, 20)
  local s, wg = go.semaphore(SIZE), go.waitgroup()
  local inside, tally = go.chan(1), go.chan(G)
  inside:send(0)
  for w = 1, G do
    wg:add(1)
    go(function()
      local ok_n, fail_n = 0, 0
      for i = 1, N do
        local k = (w + i) % SIZE + 1
        local ctx, cancel = context.with_timeout(context.background(), (i % 4) * 0.0002)
        local ok, err = s:acquire(k, ctx)
        cancel()
        if ok then
          local n = inside:recv() + k
          inside:send(n)
          if n > SIZE then error("more than the size inside: " .. n) end
          go.yield()
          inside:send(inside:recv() - k)
          s:release(k)
          ok_n = ok_n + 1
        else
          assert(ok == false and err == "context deadline exceeded", tostring(err))
          fail_n = fail_n + 1
        end
      end
      tally:send({ok_n, fail_n})
      wg:done()
    end)
  end
  wg:wait()
  local total = 0
  for _ = 1, G do
    local t = tally:recv()
    total = total + t[1] + t[2]
  end
  lu.assertEquals(total, G * N)
  lu.assertEquals(s:held(), 0)
  lu.assertTrue(s:try_acquire(SIZE))
end

-- ------------------------------------------------------------- context

-- A deadline a hair away: with_timeout read the clock twice, and a
-- remaining time that went negative in between made the watcher's
-- go.timer raise (in the watcher goroutine, so the error came later).
function test_a_timeout_that_expires_while_it_is_made_is_just_expired()
  for i = 1, S.scaled(5000, 500) do
    local ctx, cancel = context.with_timeout(context.background(), (i % 20) * 1e-7)
    if i % 2 == 0 then ctx:done():recv() end
    cancel()
  end
  lu.assertTrue(eventually(function() return go.numgoroutine() == 0 end))
end

-- ------------------------------------------------------------- errgroup

function test_a_limit_of_0_makes_try_go_fail_and_go_raise()
  local g = go.errgroup()
  g:set_limit(0)
  local ran = go.chan(1)
  lu.assertFalse(g:try_go(function() ran:send(true) end))
  local ok, err = pcall(function() g:go(function() ran:send(true) end) end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro: errgroup go: the limit is 0")
  lu.assertStrContains(err, "guarantees_spec.lua")
  lu.assertNil(g:wait())
  lu.assertEquals(#ran, 0)
  g:set_limit(-1)
  lu.assertTrue(g:try_go(function() ran:send(true) end))
  lu.assertNil(g:wait())
  lu.assertTrue(ran:recv())
  g:set_limit(0)
  g:set_limit(1) -- and back to a real limit
  g:go(function() ran:send(true) end)
  lu.assertNil(g:wait())
  lu.assertTrue(ran:recv())
end

-- ------------------------------------------------------------- singleflight

local function dups(sf, key)
  local st = sf.st:recv()
  sf.st:send(st)
  local c = st.calls[key]
  return c and c.dups or -1
end

function test_do_chan_receives_one_result_table()
  local sf = go.singleflight()
  local ch = sf:do_chan("k", function(a, b) return a .. b end, "v", 1)
  local r = ch:recv()
  lu.assertEquals(r, {val = "v1", shared = false})
  lu.assertEquals(#ch, 0) -- exactly one
  r = sf:call_chan("k", function() return nil, "not found" end):recv()
  lu.assertEquals(r, {err = "not found", shared = false})
  r = sf:do_chan("k", function() error("exploded") end):recv()
  lu.assertStrContains(r.err, "exploded")
  lu.assertNil(r.val)
  r = sf:do_chan("k", function() return io.stdout end):recv()
  lu.assertStrContains(r.err, "cannot be copied to the other callers")
  -- the key is free again afterwards
  lu.assertEquals((sf:call("k", function() return 2 end)), 2)
  lu.assertErrorMsgContains("key must not be nil", sf.do_chan, sf, nil, print)
  lu.assertErrorMsgContains("needs a function", sf.do_chan, sf, "k", 1)
  lu.assertErrorMsgContains("cannot transfer", sf.do_chan, sf, "k", print, io.stdout)
  lu.assertEquals((sf:call("k", function() return 3 end)), 3)
end

function test_do_chan_and_call_join_one_execution()
  for round = 1, 10 do
    local sf = go.singleflight()
    local release, runs = go.chan(), go.chan(10)
    local first = sf:do_chan("k", function(n)
      runs:send(1)
      release:recv()
      return n
    end, round)
    local res, wg = go.chan(10), go.waitgroup()
    for i = 1, 6 do
      wg:add(1)
      go(function()
        if i % 2 == 0 then
          local v, err, shared = sf:call("k", function() runs:send(1); return -1 end)
          res:send({val = v, err = err, shared = shared})
        else
          res:send(sf:do_chan("k", function() runs:send(1); return -1 end):recv())
        end
        wg:done()
      end)
    end
    lu.assertTrue(eventually(function() return dups(sf, "k") == 6 end))
    release:close()
    wg:wait()
    lu.assertEquals(first:recv(), {val = round, shared = true})
    for _ = 1, 6 do lu.assertEquals(res:recv(), {val = round, shared = true}) end
    lu.assertEquals(#res, 0)
    lu.assertEquals(#runs, 1)
  end
end

function test_do_chan_joins_a_call_and_gets_its_raised_error()
  local sf = go.singleflight()
  local release, res = go.chan(), go.chan(1)
  go(function()
    res:send({pcall(sf.call, sf, "k", function() release:recv(); error("bad", 0) end)})
  end)
  lu.assertTrue(eventually(function() return dups(sf, "k") == 0 end))
  local ch = sf:do_chan("k", function() return "never" end)
  release:close()
  lu.assertEquals(ch:recv(), {err = "bad", shared = true})
  lu.assertEquals(res:recv(), {false, "bad"})
end

function test_forget_runs_fn_again_while_the_forgotten_one_finishes()
  local sf = go.singleflight()
  local release, runs = go.chan(), go.chan(10)
  local old = sf:do_chan("k", function() runs:send("old"); release:recv(); return "old" end)
  local joined = sf:do_chan("k", function() return "never" end)
  lu.assertEquals(dups(sf, "k"), 1)
  sf:forget("k")
  sf:forget("k") -- twice, and for a key with no call: nothing happens
  sf:forget("nothing")
  local new = sf:do_chan("k", function() runs:send("new"); return "new" end)
  lu.assertEquals(new:recv(), {val = "new", shared = false})
  lu.assertEquals((sf:call("k", function() return "newer" end)), "newer")
  release:close()
  lu.assertEquals(old:recv(), {val = "old", shared = true})
  lu.assertEquals(joined:recv(), {val = "old", shared = true})
  lu.assertEquals(#runs, 2)
  local st = sf.st:recv()
  sf.st:send(st)
  lu.assertNil(next(st.calls))
  lu.assertNil(st.forgotten) -- nothing kept once the forgotten call ended
end

-- Many goroutines, few keys, call and do_chan mixed, forget now and then:
-- every caller gets exactly one result, from an execution of its key.
function test_singleflight_under_load_loses_and_duplicates_nothing()
  local sf, G, N = go.singleflight(), 8, S.scaled(100, 20)
  local wg, tally = go.waitgroup(), go.chan(G)
  for w = 1, G do
    wg:add(1)
    go(function()
      local got = 0
      for i = 1, N do
        local key = "k" .. (i % 3)
        local fn = function(k) go.yield(); return k end
        if (w + i) % 2 == 0 then
          local v = sf:call(key, fn, key)
          assert(v == key, tostring(v))
          got = got + 1
        else
          local ch = sf:do_chan(key, fn, key)
          local r = ch:recv()
          assert(r.val == key and r.err == nil, tostring(r.val))
          assert(#ch == 0 and not ch:tryrecv(), "a second result")
          got = got + 1
        end
        if i % 17 == 0 then sf:forget(key) end
      end
      tally:send(got)
      wg:done()
    end)
  end
  wg:wait()
  local total = 0
  for _ = 1, G do total = total + tally:recv() end
  lu.assertEquals(total, G * N)
  local st = sf.st:recv()
  sf.st:send(st)
  lu.assertNil(next(st.calls))
  lu.assertNil(st.forgotten)
end

-- ------------------------------------------------------------- after_func

-- Waits until no goroutine is left (the timers' goroutines have run fn or
-- exited after a stop; the earlier tests' have ended).
local function settled()
  return eventually(function() return go.numgoroutine() == 0 end, 20 * S.SLOW)
end

function test_after_func_calls_fn_in_its_own_goroutine()
  local done = go.chan(1)
  local t = after_func(0.001, function(a, b) done:send({a + b, go.id()}) end, 2, 3)
  local r = S.recv(done)
  lu.assertEquals(r[1], 5)
  lu.assertNotEquals(r[2], go.id())
  lu.assertFalse(t:stop()) -- it had fired
  lu.assertIsNil(t.c) -- as Go's AfterFunc timer: no channel
end

function test_after_func_stop_before_firing_returns_true_and_fn_never_runs()
  lu.assertTrue(settled())
  local ran = go.chan(1)
  local t = after_func(3600, function() ran:send(true) end)
  lu.assertEquals(go.numgoroutine(), 1) -- parked until the timer or a stop
  lu.assertTrue(t:stop())
  lu.assertFalse(t:stop())
  lu.assertTrue(settled())
  lu.assertEquals(#ran, 0)
  -- a copy of the handle, in another goroutine, is the same timer
  local t2 = after_func(3600, function() ran:send(true) end)
  local res = go.chan(1)
  go(function() res:send({t2:stop(), t2:stop()}) end)
  lu.assertEquals(res:recv(), {true, false})
  lu.assertFalse(t2:stop())
  lu.assertTrue(settled())
  lu.assertEquals(#ran, 0)
end

-- A stop racing with the firing: exactly one of "fn ran" and "stop
-- returned true", from the main state and from other goroutines.
function test_after_func_stop_racing_with_the_firing_gives_exactly_one_outcome()
  lu.assertTrue(settled())
  local N = S.scaled(300, 40)
  local ran, stopped = go.chan(N), go.chan(N)
  local delays = {0, 0.00005, 0.0002}
  for i = 1, N do
    local t = after_func(delays[i % 3 + 1], function() ran:send(i) end)
    if i % 2 == 0 then
      if t:stop() then stopped:send(i) end
    else
      go(function() if t:stop() then stopped:send(i) end end)
    end
  end
  lu.assertTrue(settled())
  lu.assertEquals(#ran + #stopped, N)
  local seen = {}
  for _ = 1, #ran do seen[ran:recv()] = true end
  for _ = 1, #stopped do
    local i = stopped:recv()
    lu.assertNil(seen[i], "timer " .. i .. " both ran and was stopped")
    seen[i] = true
  end
  for i = 1, N do lu.assertTrue(seen[i], "timer " .. i .. " neither ran nor was stopped") end
end

function test_after_func_reset_reschedules_or_runs_again()
  lu.assertTrue(settled())
  local ran = go.chan(4)
  local t = after_func(3600, function(x) ran:send(x) end, "x")
  lu.assertTrue(t:reset(0)) -- pending: rescheduled
  lu.assertEquals(S.recv(ran), "x")
  lu.assertTrue(settled())
  lu.assertFalse(t:reset(0)) -- it had run: scheduled again
  lu.assertEquals(S.recv(ran), "x")
  lu.assertTrue(settled())
  lu.assertFalse(t:reset(3600)) -- it had run: scheduled again
  lu.assertTrue(t:stop())
  lu.assertFalse(t:reset(0.001)) -- stopped: scheduled again
  lu.assertEquals(S.recv(ran), "x")
  lu.assertTrue(settled())
  lu.assertEquals(#ran, 0)
end

function test_after_func_arguments()
  local ran = go.chan(1)
  local t = after_func(-1, function() ran:send(true) end) -- as Go: at once
  lu.assertTrue(S.recv(ran))
  lu.assertFalse(t:stop())
  lu.assertErrorMsgContains("go.after_func: argument #1 must be a number of seconds",
    after_func, nil, print)
  lu.assertErrorMsgContains("the duration is NaN", after_func, 0 / 0, print)
  lu.assertErrorMsgContains("go.after_func needs a function, got nil", after_func, 1)
  lu.assertErrorMsgContains("cannot transfer", after_func, 1, print, io.stdout)
  lu.assertErrorMsgContains("t:reset: argument #2 must be a number", t.reset, t, "1")
  lu.assertStrContains(tostring(t), "goro.afterfunc")
end

os.exit(lu.LuaUnit.run())
