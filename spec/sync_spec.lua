-- goro.sync: mutex, rwmutex, once, cond, semaphore, singleflight (and the
-- C waitgroup), with Go's semantics, across goroutines and the main state.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local eventually = S.eventually
local sync = require "goro.sync"

-- A shared integer "register" updated in two separate steps (read, then
-- write): without mutual exclusion, concurrent increments get lost.
local function register(v)
  local r = go.chan(1)
  r:send(v or 0)
  return r
end
local function read(r) local v = r:recv(); r:send(v); return v end
local function write(r, v) r:recv(); r:send(v) end

-- ------------------------------------------------------------- mutex

function test_mutex_makes_read_modify_write_atomic_across_goroutines()
  local mu, reg, inside, wg = go.mutex(), register(0), register(0), go.waitgroup()
  local G, N = 8, 300
  for _ = 1, G do
    wg:add(1)
    go(function()
      for _ = 1, N do
        mu:lock()
        local k = read(inside) + 1
        write(inside, k)
        if k > 1 then error("two goroutines inside the critical section") end
        local v = read(reg)
        go.yield()
        write(reg, v + 1)
        write(inside, read(inside) - 1)
        mu:unlock()
      end
      wg:done()
    end)
  end
  wg:wait()
  lu.assertEquals(read(reg), G * N)
end

function test_lock_returns_the_mutex_and_close_unlocks_it()
  local mu = go.mutex()
  do
    local held <close> = mu:lock()
    lu.assertIs(held, mu)
    lu.assertFalse(mu:trylock())
  end
  lu.assertTrue(mu:trylock())
  mu:unlock()
end

function test_close_unlocks_when_the_scope_raises()
  local mu = go.mutex()
  local ok = pcall(function()
    local _ <close> = mu:lock()
    error("inside")
  end)
  lu.assertFalse(ok)
  lu.assertTrue(mu:trylock())
  mu:unlock()
end

function test_unlock_of_unlocked_mutex_is_an_error()
  local mu = go.mutex()
  lu.assertErrorMsgContains("goro: unlock of unlocked mutex", mu.unlock, mu)
  mu:lock()
  mu:unlock()
  lu.assertErrorMsgContains("unlock of unlocked mutex", mu.unlock, mu)
end

function test_unlock_error_points_at_the_caller()
  local mu = go.mutex()
  local ok, err = pcall(function() mu:unlock() end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "sync_spec.lua:")
end

function test_trylock_fails_while_held_and_succeeds_after_unlock()
  local mu = go.mutex()
  lu.assertTrue(mu:trylock())
  local res = go.chan()
  go(function() res:send(mu:trylock()) end)
  lu.assertFalse(recv(res))
  mu:unlock()
  go(function() res:send(mu:trylock()) end)
  lu.assertTrue(recv(res))
  mu:unlock()
end

function test_a_mutex_may_be_unlocked_by_another_goroutine()
  local mu, done = go.mutex(), go.chan()
  mu:lock()
  go(function() mu:unlock(); done:send(true) end)
  recv(done)
  lu.assertTrue(mu:trylock())
  mu:unlock()
end

function test_lock_blocks_until_the_holder_unlocks()
  local mu, order = go.mutex(), go.chan(4)
  mu:lock()
  go(function() mu:lock(); order:send("goroutine"); mu:unlock() end)
  order:send("main")
  mu:unlock()
  lu.assertEquals(recv(order), "main")
  lu.assertEquals(recv(order), "goroutine")
end

function test_mutex_copies_share_one_lock()
  local mu = go.mutex()
  local ch = go.chan(1)
  ch:send(mu) -- a copy of the handle travels through the channel
  local copy = recv(ch)
  lu.assertNotIs(copy, mu)
  copy:lock()
  lu.assertFalse(mu:trylock())
  mu:unlock()
  lu.assertTrue(copy:trylock())
  copy:unlock()
end

function test_main_locking_a_mutex_no_goroutine_will_unlock_is_a_deadlock()
  local mu, locked = go.mutex(), go.chan()
  go(function() mu:lock(); locked:send(true); go.chan():recv() end) -- holds forever
  recv(locked)
  lu.assertErrorMsgContains("all goroutines are asleep - deadlock!", mu.lock, mu)
  -- the runtime stays usable
  local ch = go.chan()
  go(function() ch:send(7) end)
  lu.assertEquals(recv(ch), 7)
end

-- ------------------------------------------------------------- rwmutex

function test_rwmutex_lets_readers_in_together()
  local rw, inside, release, wg = go.rwmutex(), go.chan(10), go.chan(), go.waitgroup()
  for i = 1, 5 do
    wg:add(1)
    go(function()
      rw:rlock()
      inside:send(i)
      release:recv()
      rw:runlock()
      wg:done()
    end)
  end
  local seen = 0
  for _ = 1, 5 do seen = seen + recv(inside) end -- all five hold it at once
  lu.assertEquals(seen, 15)
  lu.assertFalse(rw:trylock())
  release:close()
  wg:wait()
  lu.assertTrue(rw:trylock())
  rw:unlock()
end

function test_rwmutex_writers_exclude_readers_and_writers()
  local rw, a, b, wg = go.rwmutex(), register(0), register(0), go.waitgroup()
  local bad = go.chan(1000)
  for w = 1, 3 do
    wg:add(1)
    go(function()
      for _ = 1, 100 do
        local _ <close> = rw:lock()
        local v = read(a)
        write(a, v + 1)
        go.yield()
        write(b, v + 1)
      end
      wg:done()
    end)
  end
  for r = 1, 4 do
    wg:add(1)
    go(function()
      for _ = 1, 100 do
        local _ <close> = rw:rlock()
        local x = read(a)
        go.yield()
        if read(b) ~= x then bad:send(true) end
      end
      wg:done()
    end)
  end
  wg:wait()
  lu.assertEquals(read(a), 300)
  lu.assertEquals(read(b), 300)
  lu.assertEquals(#bad, 0, "a reader saw a half-done write")
end

function test_a_waiting_writer_blocks_new_readers()
  local rw = go.rwmutex()
  local guard = rw:rlock()
  local wrote = go.chan(1)
  go(function() rw:lock(); wrote:send(true); rw:unlock() end)
  -- once the writer waits at the gate, a new reader may not enter
  lu.assertTrue(eventually(function()
    if rw:tryrlock() then rw:runlock(); return false end
    return true
  end))
  lu.assertEquals(#wrote, 0)
  local reader_in = go.chan(1)
  go(function() rw:rlock(); reader_in:send(true); rw:runlock() end)
  guard:runlock()
  lu.assertTrue(recv(wrote))
  lu.assertTrue(recv(reader_in))
end

function test_rlock_guard_closes_its_read_lock()
  local rw = go.rwmutex()
  do
    local _ <close> = rw:rlock()
    lu.assertFalse(rw:trylock())
    lu.assertTrue(rw:tryrlock())
    rw:runlock()
  end
  lu.assertTrue(rw:trylock())
  rw:unlock()
end

function test_rwmutex_unlock_and_runlock_of_unlocked_are_errors()
  local rw = go.rwmutex()
  lu.assertErrorMsgContains("goro: unlock of unlocked RWMutex", rw.unlock, rw)
  lu.assertErrorMsgContains("goro: runlock of unlocked RWMutex", rw.runlock, rw)
  rw:rlock()
  rw:runlock()
  lu.assertErrorMsgContains("runlock of unlocked RWMutex", rw.runlock, rw)
  lu.assertTrue(rw:trylock()) -- still usable
  rw:unlock()
end

function test_rlocker_locks_the_read_side()
  local rw = go.rwmutex()
  local rl = rw:rlocker()
  rl:lock()
  lu.assertFalse(rw:trylock())
  lu.assertTrue(rw:tryrlock())
  rw:runlock()
  rl:unlock()
  lu.assertTrue(rw:trylock())
  rw:unlock()
  -- a cond over the read side
  local c, ready, woke = go.cond(rl), go.chan(1), go.chan(1)
  ready:send(false)
  go(function()
    rl:lock()
    while not ready:recv() do ready:send(false); c:wait() end
    woke:send(true)
    rl:unlock()
  end)
  lu.assertTrue(eventually(function()
    local s = c.st:recv(); c.st:send(s); return s.head ~= nil
  end))
  ready:recv(); ready:send(true)
  c:broadcast()
  lu.assertTrue(recv(woke))
end

-- ------------------------------------------------------------- once

function test_once_runs_the_function_once_across_goroutines()
  local once, calls, wg = go.once(), go.chan(100), go.waitgroup()
  for _ = 1, 20 do
    wg:add(1)
    go(function() once:call(function() calls:send(go.id()) end); wg:done() end)
  end
  once:call(function() calls:send(0) end)
  wg:wait()
  lu.assertEquals(#calls, 1)
  lu.assertTrue(once:done())
end

function test_once_callers_wait_until_the_first_call_returns()
  local once, value, seen, wg = go.once(), register(nil), go.chan(10), go.waitgroup()
  local started = go.chan()
  go(function()
    once:call(function() started:send(true); go.sleep(0.05); write(value, "ready") end)
  end)
  recv(started) -- the first call is running
  for _ = 1, 5 do
    wg:add(1)
    go(function() once:call(function() end); seen:send(read(value)); wg:done() end)
  end
  wg:wait()
  for _ = 1, 5 do lu.assertEquals(recv(seen), "ready") end
end

function test_once_that_raises_counts_as_done()
  local once = go.once()
  lu.assertErrorMsgContains("first", once.call, once, function() error("first") end)
  local ran = false
  once:call(function() ran = true end)
  lu.assertFalse(ran)
  lu.assertTrue(once:done())
end

function test_once_passes_arguments_and_has_do_alias()
  local once, got = go.once(), nil
  once["do"](once, function(a, b) got = a + b end, 2, 3)
  lu.assertEquals(got, 5)
end

-- ------------------------------------------------------------- cond

function test_cond_signal_wakes_one_waiter_and_broadcast_all()
  local mu = go.mutex()
  local c = go.cond(mu)
  local state = register(0) -- guarded by mu: 0 wait, 1 go one, 2 go all
  local woke, wg = go.chan(10), go.waitgroup()
  for i = 1, 4 do
    wg:add(1)
    go(function()
      mu:lock()
      while read(state) == 0 do c:wait() end
      if read(state) == 1 then write(state, 0) end -- one ticket consumed
      woke:send(i)
      mu:unlock()
      wg:done()
    end)
  end
  -- wait until all four are parked in c:wait (each released mu)
  lu.assertTrue(eventually(function()
    local s = c.st:recv(); c.st:send(s)
    return s.nid == 5 -- four waiters queued
  end))
  mu:lock(); write(state, 1); mu:unlock()
  c:signal()
  recv(woke)
  lu.assertEquals(#woke, 0)
  mu:lock(); write(state, 2); mu:unlock()
  c:broadcast()
  wg:wait()
  lu.assertEquals(#woke, 3)
end

function test_cond_guards_a_queue_of_work_without_losing_items()
  local mu = go.mutex()
  local notempty = go.cond(mu)
  local q = register({}) -- a list guarded by mu
  local sum, wg = go.chan(1000), go.waitgroup()
  local N, C = 200, 3
  for _ = 1, C do
    wg:add(1)
    go(function()
      while true do
        mu:lock()
        local items = read(q)
        while #items == 0 do notempty:wait(); items = read(q) end
        local v = table.remove(items, 1)
        write(q, items)
        mu:unlock()
        if v == false then break end
        sum:send(v)
      end
      wg:done()
    end)
  end
  for i = 1, N do
    mu:lock()
    local items = read(q); items[#items + 1] = i; write(q, items)
    mu:unlock()
    notempty:signal()
  end
  mu:lock()
  local items = read(q); for _ = 1, C do items[#items + 1] = false end; write(q, items)
  mu:unlock()
  notempty:broadcast()
  wg:wait()
  local total = 0
  for _ = 1, N do total = total + recv(sum) end
  lu.assertEquals(total, N * (N + 1) // 2)
end

function test_cond_wait_without_the_lock_is_an_error()
  local c = go.cond(go.mutex())
  lu.assertErrorMsgContains("unlock of unlocked mutex", c.wait, c)
  c:signal() -- the dead waiter is skipped
end

function test_cond_needs_a_lock()
  lu.assertErrorMsgContains("goro: cond needs a lock", go.cond)
  lu.assertErrorMsgContains("goro: cond needs a lock", go.cond, 42)
end

-- ------------------------------------------------------------- semaphore

local function queued(sem)
  local s = sem.st:recv()
  sem.st:send(s)
  return type(s) == "table" and s.head ~= nil
end

function test_semaphore_bounds_concurrency()
  local sem, inside, peak, wg = go.semaphore(3), register(0), register(0), go.waitgroup()
  local mu = go.mutex()
  for _ = 1, 20 do
    wg:add(1)
    go(function()
      sem:acquire()
      mu:lock()
      local n = read(inside) + 1
      write(inside, n)
      if n > read(peak) then write(peak, n) end
      mu:unlock()
      go.sleep(0.002)
      mu:lock(); write(inside, read(inside) - 1); mu:unlock()
      sem:release()
      wg:done()
    end)
  end
  wg:wait()
  lu.assertTrue(read(peak) <= 3, "more than 3 inside: " .. read(peak))
  lu.assertTrue(read(peak) >= 2)
  lu.assertEquals(sem:held(), 0)
end

function test_semaphore_weights_add_up()
  local sem = go.semaphore(5)
  lu.assertTrue(sem:acquire(2))
  lu.assertTrue(sem:try_acquire(3))
  lu.assertFalse(sem:try_acquire(1))
  lu.assertEquals(sem:held(), 5)
  sem:release(4)
  lu.assertTrue(sem:try_acquire(4))
  sem:release(5)
  lu.assertEquals(sem:held(), 0)
end

function test_semaphore_serves_waiters_in_fifo_order_without_overtaking()
  local sem = go.semaphore(3)
  sem:acquire(3)
  local got = go.chan(10)
  go(function() sem:acquire(3); got:send("big"); sem:release(3) end)
  lu.assertTrue(eventually(function() return queued(sem) end))
  go(function() sem:acquire(1); got:send("small"); sem:release(1) end)
  -- with a waiter queued, try_acquire fails even though a token is free
  sem:release(1)
  lu.assertFalse(sem:try_acquire(1))
  lu.assertEquals(#got, 0) -- small may not overtake big
  sem:release(2)
  lu.assertEquals(recv(got), "big")
  lu.assertEquals(recv(got), "small")
  lu.assertTrue(eventually(function() return sem:held() == 0 end))
end

function test_semaphore_release_more_than_held_is_an_error()
  local sem = go.semaphore(2)
  lu.assertErrorMsgContains("goro: semaphore: released 1 but only 0 held", sem.release, sem)
  sem:acquire(1)
  lu.assertErrorMsgContains("released 2 but only 1 held", sem.release, sem, 2)
  sem:release(1)
  lu.assertEquals(sem:held(), 0)
end

function test_semaphore_acquire_beyond_its_size_is_an_error()
  local sem = go.semaphore(2)
  lu.assertErrorMsgContains("acquire of 3 exceeds its size 2", sem.acquire, sem, 3)
  lu.assertErrorMsgContains("positive integer", go.semaphore, 0)
  lu.assertErrorMsgContains("bad weight", sem.acquire, sem, -1)
end

function test_semaphore_acquire_gives_up_when_its_context_ends()
  local context = go.context
  local sem = go.semaphore(1)
  sem:acquire()
  local ctx, cancel = context.with_cancel(context.background())
  local res = go.chan(1)
  go(function() res:send({sem:acquire(1, ctx)}) end)
  lu.assertTrue(eventually(function() return queued(sem) end))
  -- a later waiter behind the one that gives up
  local later = go.chan(1)
  go(function() sem:acquire(1); later:send(true); sem:release(1) end)
  cancel()
  local r = recv(res)
  lu.assertFalse(r[1])
  lu.assertEquals(r[2], "context canceled")
  sem:release()
  lu.assertTrue(recv(later))
  lu.assertTrue(eventually(function() return sem:held() == 0 end))
  -- an already cancelled context fails at once, holding nothing (Go's
  -- argument order works too)
  sem:acquire()
  local ok, err = sem:acquire(ctx, 1)
  lu.assertFalse(ok)
  lu.assertEquals(err, "context canceled")
  sem:release()
end

-- ------------------------------------------------------------- singleflight

function test_singleflight_runs_once_for_concurrent_callers()
  local g = go.singleflight()
  local runs, release, res, wg = go.chan(10), go.chan(), go.chan(10), go.waitgroup()
  local function op() runs:send(1); release:recv(); return "data" end
  for _ = 1, 5 do
    wg:add(1)
    go(function()
      local v, err, shared = g:call("user:123", op)
      res:send({v, err, shared})
      wg:done()
    end)
  end
  -- wait until one runs and the four others joined it
  lu.assertTrue(eventually(function()
    local s = g.st:recv(); g.st:send(s)
    local c = s.calls["user:123"]
    return c ~= nil and c.dups == 4
  end))
  release:close()
  wg:wait()
  lu.assertEquals(#runs, 1)
  for _ = 1, 5 do
    local r = recv(res)
    lu.assertEquals(r[1], "data")
    lu.assertNil(r[2])
    lu.assertTrue(r[3])
  end
end

function test_singleflight_sequential_calls_run_again_and_are_not_shared()
  local g, n = go.singleflight(), 0
  local v, err, shared = g:call("k", function() n = n + 1; return n end)
  lu.assertEquals({v, err, shared}, {1, nil, false})
  v, err, shared = g:call("k", function() n = n + 1; return n end)
  lu.assertEquals({v, err, shared}, {2, nil, false})
end

function test_singleflight_returns_errors_and_raises_raised_ones()
  local g = go.singleflight()
  local v, err = g:call("k", function() return nil, "not found" end)
  lu.assertNil(v)
  lu.assertEquals(err, "not found")
  lu.assertErrorMsgContains("exploded", g.call, g, "k", function() error("exploded") end)
  -- the key is free again after a failure
  lu.assertEquals((g:call("k", function() return 1 end)), 1)
end

function test_singleflight_waiters_raise_the_runners_error()
  local g = go.singleflight()
  local release, res = go.chan(), go.chan(10)
  go(function()
    res:send({pcall(g.call, g, "k", function() release:recv(); error("bad", 0) end)})
  end)
  lu.assertTrue(eventually(function()
    local s = g.st:recv(); g.st:send(s); return s.calls.k ~= nil
  end))
  go(function() res:send({pcall(g.call, g, "k", function() return "never" end)}) end)
  lu.assertTrue(eventually(function()
    local s = g.st:recv(); g.st:send(s); return s.calls.k.dups == 1
  end))
  release:close()
  for _ = 1, 2 do
    local r = recv(res)
    lu.assertFalse(r[1])
    lu.assertEquals(r[2], "bad")
  end
end

function test_singleflight_forget_lets_the_next_call_run()
  local g = go.singleflight()
  local release, res, runs = go.chan(), go.chan(10), go.chan(10)
  go(function()
    res:send(g:call("k", function() runs:send(1); release:recv(); return "old" end))
  end)
  lu.assertTrue(eventually(function() return #runs == 1 end))
  g:forget("k")
  local v, _, shared = g:call("k", function() runs:send(2); return "new" end)
  lu.assertEquals(v, "new")
  lu.assertFalse(shared)
  release:close()
  lu.assertEquals(recv(res), "old")
  lu.assertEquals(#runs, 2)
end

function test_singleflight_distinct_keys_run_concurrently()
  local g = go.singleflight()
  local a_in, res = go.chan(), go.chan(2)
  go(function() res:send(g:call("a", function() a_in:recv(); return "a" end)) end)
  -- "b" completes while "a" is still running
  lu.assertEquals(g:call("b", function() return "b" end), "b")
  a_in:send(true)
  lu.assertEquals(recv(res), "a")
end

-- ------------------------------------------------------------- waitgroup

function test_waitgroup_waits_for_every_done()
  local wg, sum = go.waitgroup(), go.chan(100)
  for i = 1, 50 do
    wg:add(1)
    go(function() sum:send(i); wg:done() end)
  end
  wg:wait()
  local total = 0
  for _ = 1, 50 do total = total + recv(sum) end
  lu.assertEquals(total, 1275)
  lu.assertIs(sync.waitgroup, go.waitgroup)
end

function test_waitgroup_negative_counter_is_an_error()
  local wg = go.waitgroup()
  lu.assertErrorMsgContains("negative WaitGroup counter", wg.done, wg)
  wg:add(2)
  lu.assertErrorMsgContains("negative WaitGroup counter", wg.add, wg, -3)
  wg:done(); wg:done()
  wg:wait()
end

function test_sync_objects_work_from_the_main_state_and_print_their_kind()
  lu.assertStrContains(tostring(go.mutex()), "goro.mutex")
  lu.assertStrContains(tostring(go.semaphore(1)), "goro.semaphore")
  lu.assertStrContains(tostring(go.singleflight()), "goro.singleflight")
  lu.assertIs(go.mutex, sync.mutex)
end

os.exit(lu.LuaUnit.run())
