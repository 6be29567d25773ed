-- preempt_spec.lua — preemption (sysmon + signal + one-shot hook), blocking
-- library calls handed off as syscalls (retake), go.blocking.
--
-- Under ThreadSanitizer signals reach a thread only at its next libc call,
-- so a pure-Lua loop never sees one: `make tsan` sets GORO_TSAN=1 and the
-- tests that need a signal-driven preemption are skipped there (they run
-- in the plain and the ASan builds).
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local with_procs = S.with_procs

local TSAN = os.getenv("GORO_TSAN") == "1"
local NO_SIGNALS = "under ThreadSanitizer no signal reaches a pure-Lua loop"

-- A goroutine that spins until told to stop; returns (stop, spins) channels.
local function spinner(body)
  local stop, spins = go.chan(1), go.chan(1)
  go(function()
    local n = 0
    while true do
      n = n + 1
      if body then body() end
      if n % 50000 == 0 then
        local _, ok = stop:tryrecv()
        if ok then spins:send(n) return end
      end
    end
  end)
  return stop, spins
end

local function pingpong(rounds)
  local a, b, done = go.chan(), go.chan(), go.chan()
  go(function() for i = 1, rounds do a:send(i) assert(b:recv() == i) end done:send(rounds) end)
  go(function() for _ = 1, rounds do b:send(a:recv()) end end)
  return done
end

function test_busy_loop_does_not_stop_a_pingpong_pair_on_one_P()
  lu.skipIf(TSAN, NO_SIGNALS)
  with_procs(1, function()
    local before = go.stats().preemptions
    local stop, spins = spinner()
    local done = pingpong(200)
    lu.assertEquals(recv(done), 200)
    stop:send(true)
    lu.assertTrue(recv(spins) > 0)
    lu.assertTrue(go.stats().preemptions > before)
  end)
end

function test_two_busy_loops_share_one_P()
  lu.skipIf(TSAN, NO_SIGNALS)
  with_procs(1, function()
    local s1, n1 = spinner()
    local s2, n2 = spinner()
    -- both must make progress: each reports after it saw its stop
    go.sleep(0.1)
    s1:send(true) s2:send(true)
    lu.assertTrue(recv(n1) > 0)
    lu.assertTrue(recv(n2) > 0)
  end)
end

function test_preemption_inside_nested_calls()
  lu.skipIf(TSAN, NO_SIGNALS)
  with_procs(1, function()
    local function level3(x) return x + 1 end
    local function level2(x) return level3(x) * 1 end
    local function level1(x) return level2(x) end
    local stop, spins = spinner(function() level1(1) end)
    lu.assertEquals(recv(pingpong(50)), 50)
    stop:send(true)
    lu.assertTrue(recv(spins) > 0)
  end)
end

function test_preemption_inside_a_user_coroutine_is_invisible_to_it()
  lu.skipIf(TSAN, NO_SIGNALS)
  with_procs(1, function()
    local out = go.chan(1)
    local stop = go.chan(1)
    go(function()
      -- the coroutine yields 1, 2, 3 ... after long busy stretches; a
      -- preemption inside it must not look like one of its yields
      local gen = coroutine.wrap(function()
        local k = 0
        while true do
          local x = 0
          for _ = 1, 2000000 do x = x + 1 end
          k = k + 1
          coroutine.yield(k)
        end
      end)
      local expect = 1
      while true do
        local v = gen()
        if v ~= expect then out:send("got " .. tostring(v) .. " want " .. expect) return end
        expect = expect + 1
        local _, ok = stop:tryrecv()
        if ok then out:send(expect - 1) return end
      end
    end)
    lu.assertEquals(recv(pingpong(50)), 50)
    stop:send(true)
    local r = recv(out)
    lu.assertEquals(math.type(r), "integer", r)
  end)
end

function test_no_yield_inside_a_non_yieldable_region()
  lu.skipIf(TSAN, NO_SIGNALS)
  with_procs(1, function()
    local res = go.chan(1)
    go(function()
      local t = {}
      for i = 1, 200 do t[i] = (i * 7919) % 200 end
      -- a slow comparator: ~0.1 s of Lua inside table.sort (a C boundary)
      local ok, err = pcall(table.sort, t, function(a, b)
        local x = 0
        for _ = 1, 300 do x = x + 1 end
        return a < b
      end)
      res:send(ok and "sorted" or tostring(err))
    end)
    local done = pingpong(20)
    lu.assertEquals(recv(res), "sorted")
    lu.assertEquals(recv(done), 20)
  end)
end

function test_user_debug_hooks_keep_working()
  lu.skipIf(TSAN, NO_SIGNALS)
  with_procs(1, function()
    local res = go.chan(1)
    go(function()
      local calls = 0
      local function hook() calls = calls + 1 end
      debug.sethook(hook, "", 1000)
      local x = 0
      for _ = 1, 30000000 do x = x + 1 end   -- long enough to be preempted
      local h, mask, count = debug.gethook()
      debug.sethook()
      res:send({same = h == hook, mask = mask, count = count, calls = calls})
    end)
    local spin_stop, spins = spinner()
    local r = recv(res)
    spin_stop:send(true)
    recv(spins)
    lu.assertTrue(r.same, "the user's hook was replaced")
    lu.assertEquals(r.count, 1000)
    lu.assertTrue(r.calls > 10000)
  end)
end

function test_os_execute_does_not_stall_its_P()
  with_procs(1, function()
    local stop, spins = spinner()
    local wg = go.waitgroup()
    local t0 = go.now()
    for _ = 1, 4 do
      wg:add(1)
      go(function() os.execute("sleep 0.5") wg:done() end)
    end
    wg:wait()
    local elapsed = go.now() - t0
    stop:send(true)
    lu.assertTrue(recv(spins) > 0)
    lu.assertTrue(elapsed < 1.5, string.format("4 x sleep 0.5 took %.2f s", elapsed))
  end)
end

-- A goroutine that records go.now() until stop is closed, then sends the
-- list of its timestamps on the returned channel.
local function ticker(stop)
  local out = go.chan(1)
  go(function()
    local ts = {}
    while not stop:closed() do
      ts[#ts + 1] = go.now()
      local x = 0
      for _ = 1, 20000 do x = x + 1 end
    end
    out:send(ts)
  end)
  return out
end

-- How much of [t0, t1] the timestamps cover (first to last inside it).
local function coverage(ts, t0, t1)
  local lo, hi
  for _, t in ipairs(ts) do
    if t > t0 and t < t1 then
      lo = lo and math.min(lo, t) or t
      hi = hi and math.max(hi, t) or t
    end
  end
  return lo and (hi - lo) / (t1 - t0) or 0
end

local function shuffled(n)
  local t = {}
  for i = 1, n do t[i] = (i * 7919) % n end
  return t
end

-- A C function that goro does not wrap (table.sort without a comparator:
-- no Lua runs inside, so no hook can fire) holds its P only until sysmon
-- retakes it (~12 ms): on one P, a second goroutine runs through the call.
function test_a_long_C_call_does_not_keep_its_P()
  with_procs(1, function()
    local before = go.stats().retakes
    local stop, res = go.chan(), go.chan(1)
    local ticks = ticker(stop)
    go(function()
      local t = shuffled(1000000)
      local t0 = go.now()
      table.sort(t) -- ~0.3 s in C
      local t1 = go.now()
      stop:close()
      res:send({t0, t1, t[1] == 0 and t[#t] == #t - 1})
    end)
    local r = recv(res)
    local cov = coverage(recv(ticks), r[1], r[2])
    lu.assertTrue(r[3], "not sorted")
    lu.assertTrue(cov > 0.5, ("the other goroutine ran during %.0f%% of the %.2f s call")
      :format(cov * 100, r[2] - r[1]))
    lu.assertTrue(go.stats().retakes > before)
  end)
end

-- A blocking call goro does not wrap (the iterator of file:lines(), as a
-- socket read of another C module would be): the preemption signal
-- interrupts the read (SA_RESTART resumes it), sysmon retakes the P, and a
-- second goroutine runs while the read waits.
function test_a_blocking_call_goro_does_not_wrap_does_not_keep_its_P()
  with_procs(1, function()
    local stop, res = go.chan(), go.chan(1)
    local ticks = ticker(stop)
    go(function()
      local p = io.popen("sleep 0.3; echo x")
      local t0 = go.now()
      local got = p:lines()()
      local t1 = go.now()
      p:close()
      stop:close()
      res:send({t0, t1, got})
    end)
    local r = recv(res)
    lu.assertEquals(r[3], "x")
    local cov = coverage(recv(ticks), r[1], r[2])
    lu.assertTrue(cov > 0.5, ("the other goroutine ran during %.0f%% of the %.2f s read")
      :format(cov * 100, r[2] - r[1]))
  end)
end

-- The same inside a region where Lua cannot yield (a sort comparator): after
-- the retake the goroutine goes on without a P until it can yield; what it
-- does there (spawn, wake a goroutine, a blocking call) still works.
function test_a_retaken_goroutine_works_on_without_its_P()
  with_procs(1, function()
    local stop, res, woken = go.chan(), go.chan(4), go.chan()
    local ticks = ticker(stop)
    go(function() res:send("woken " .. woken:recv()) end)
    go(function()
      local big = shuffled(1000000)
      local t0, t1
      local pair = {2, 1}
      table.sort(pair, function(a, b)
        if not t0 then
          t0 = go.now()
          table.sort(big) -- retaken in here
          t1 = go.now()
          go(function() res:send("spawned") end)
          woken:send(1)
          res:send("blocking " .. go.blocking(function(x) return x * 2 end, 21))
        end
        return a < b
      end)
      stop:close()
      res:send({t0, t1, pair[1] == 1})
    end)
    local got, span = {}, nil
    for _ = 1, 4 do
      local v = recv(res)
      if type(v) == "table" then span = v else got[#got + 1] = v end
    end
    table.sort(got)
    lu.assertEquals(got, {"blocking 42", "spawned", "woken 1"})
    lu.assertTrue(span[3], "not sorted")
    local cov = coverage(recv(ticks), span[1], span[2])
    lu.assertTrue(cov > 0.5, ("the other goroutine ran during %.0f%% of the %.2f s call")
      :format(cov * 100, span[2] - span[1]))
  end)
end

function test_blocking_returns_results_and_keeps_others_running()
  with_procs(1, function()
    local r = go.chan(1)
    go(function()
      r:send({go.blocking(function(a, b) os.execute("sleep 0.2") return a + b, "x" end, 1, 2)})
    end)
    lu.assertEquals(recv(pingpong(100)), 100)
    lu.assertEquals(recv(r), {3, "x"})
  end)
end

function test_blocking_reraises_errors()
  local r = go.chan(1)
  go(function()
    local ok, err = pcall(go.blocking, function() error("inside blocking") end)
    r:send({ok, tostring(err)})
  end)
  local res = recv(r)
  lu.assertFalse(res[1])
  lu.assertStrContains(res[2], "inside blocking")
end

os.exit(lu.LuaUnit.run())
