-- time_spec.lua — go.sleep, go.after, go.tick, go.timer, go.ticker.
-- Only generous timing bounds: the test machine is small and loaded.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local for_procs = S.for_procs

local EPS = 0.005 -- clock granularity allowance on lower bounds
local GENEROUS = 5 -- upper bound for anything that should take milliseconds

-- Receives from c, or fails after GENEROUS seconds instead of hanging.
local function recv_within(c, what)
  local i, v, ok = go.select{{c, "recv"}, {go.after(GENEROUS), "recv"}}
  lu.assertEquals(i, 1, what .. " did not arrive within " .. GENEROUS .. " s")
  return v, ok
end

---------------------------------------------------------------------------

function test_now_is_a_monotonic_float_in_seconds()
  local a = go.now()
  local b = go.now()
  lu.assertEquals(math.type(a), "float")
  lu.assertTrue(b >= a)
end

function test_sleep_in_main_waits_at_least_the_duration()
  local t = go.now()
  go.sleep(0.05)
  local dt = go.now() - t
  lu.assertTrue(dt >= 0.05 - EPS, "slept only " .. dt)
  lu.assertTrue(dt < GENEROUS, "slept " .. dt)
  -- zero and negative durations return at once
  go.sleep(0)
  go.sleep(-1)
end

for_procs("test_sleeping_goroutines_sleep_concurrently", {1, 2}, function()
  -- 100 goroutines sleep 0.1 s each: together far less than 100 * 0.1 s,
  -- and none wakes early
  local n = 100
  local c = go.chan(n)
  local t = go.now()
  for _ = 1, n do
    go(function()
      local s = go.now()
      go.sleep(0.1)
      c:send(go.now() - s)
    end)
  end
  for _ = 1, n do
    local dt = recv(c)
    lu.assertTrue(dt >= 0.1 - EPS, "a goroutine woke after " .. dt)
  end
  local total = go.now() - t
  lu.assertTrue(total < GENEROUS, "100 sleeps of 0.1 s took " .. total .. " s")
  go.wait()
end)

for_procs("test_a_sleeping_goroutine_does_not_block_others", {1}, function()
  local sleeper, worker = go.chan(1), go.chan(1)
  go(function() go.sleep(0.3); sleeper:send(go.now()) end)
  go(function()
    local c = go.chan()
    go(function() for i = 1, 1000 do c:send(i) end end)
    local s = 0
    for _ = 1, 1000 do s = s + c:recv() end
    worker:send(go.now())
  end)
  local w = recv_within(worker, "the worker")
  local s = recv_within(sleeper, "the sleeper")
  lu.assertTrue(w < s, "the worker waited for the sleeper")
  go.wait()
end)

function test_after_fires_once_with_the_time()
  local t = go.now()
  local c = go.after(0.03)
  local v, ok = recv_within(c, "go.after")
  lu.assertTrue(ok)
  lu.assertEquals(math.type(v), "float")
  lu.assertTrue(v >= t + 0.03 - EPS, "fired early: " .. (v - t))
  lu.assertTrue(go.now() - t >= 0.03 - EPS)
  go.sleep(0.05)
  lu.assertEquals({c:tryrecv()}, {nil, false}, "go.after fired twice")
  lu.assertEquals(#c, 0)
end

function test_after_zero_fires_promptly()
  local v = recv_within(go.after(0), "go.after(0)")
  lu.assertEquals(type(v), "number")
end

function test_after_in_a_goroutine()
  local res = go.chan()
  go(function()
    local t = go.now()
    go.after(0.02):recv()
    res:send(go.now() - t)
  end)
  lu.assertTrue(recv_within(res, "the goroutine") >= 0.02 - EPS)
  go.wait()
end

function test_tick_repeats_with_increasing_times()
  local t = go.now()
  local c = go.tick(0.01)
  local last = -1
  for _ = 1, 5 do
    local v = recv_within(c, "a tick")
    lu.assertTrue(v > last, "tick times do not increase")
    last = v
  end
  lu.assertTrue(go.now() - t >= 0.05 - EPS, "5 ticks of 0.01 s came too soon")
end

function test_ticker_repeats_and_stops()
  local tk = go.ticker(0.01)
  local last = -1
  for _ = 1, 3 do
    local v = recv_within(tk.c, "a tick")
    lu.assertTrue(v > last)
    last = v
  end
  tk:stop()
  tk.c:tryrecv() -- at most one tick may be buffered from before the stop
  go.sleep(0.05)
  lu.assertEquals({tk.c:tryrecv()}, {nil, false}, "a stopped ticker still ticks")
end

function test_ticker_and_duration_errors()
  for _, bad in ipairs({0, -1}) do
    local ok, err = pcall(go.ticker, bad)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro:")
    lu.assertNil(go.tick(bad), "go.tick(d <= 0) is nil, as Go's Tick") -- goguarantees_spec
  end
  for _, f in ipairs({go.timer, go.after, go.tick}) do
    local ok, err = pcall(f, "soon")
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro:")
  end
end

function test_timer_fires_once()
  local t = go.timer(0.02)
  local v = recv_within(t.c, "the timer")
  lu.assertEquals(type(v), "number")
  go.sleep(0.04)
  lu.assertEquals({t.c:tryrecv()}, {nil, false})
  lu.assertFalse(t:stop(), "stop after the timer fired should return false")
end

function test_timer_stopped_before_it_fires_never_fires()
  local t = go.timer(0.05)
  lu.assertTrue(t:stop(), "stop of an active timer should return true")
  lu.assertFalse(t:stop(), "a second stop should return false")
  go.sleep(0.1)
  lu.assertEquals({t.c:tryrecv()}, {nil, false}, "a stopped timer fired")
end

function test_timer_reset_moves_the_deadline()
  -- a 60 s timer reset to 0.02 s fires in well under the generous bound
  local t = go.timer(60)
  local start = go.now()
  lu.assertTrue(t:reset(0.02), "reset of an active timer should return true")
  recv_within(t.c, "the reset timer")
  lu.assertTrue(go.now() - start >= 0.02 - EPS)
  -- reset after it fired: false, and it fires again
  lu.assertFalse(t:reset(0.01))
  recv_within(t.c, "the timer reset after firing")
  -- reset to later: does not fire at the old time
  local t2 = go.timer(0.02)
  t2:reset(60)
  go.sleep(0.06)
  lu.assertEquals({t2.c:tryrecv()}, {nil, false}, "fired at the deadline before reset")
  lu.assertTrue(t2:stop())
end

function test_timer_channel_is_the_same_object_each_time()
  local t = go.timer(60)
  lu.assertTrue(rawequal(t.c, t.c), "t.c gives a different channel each time")
  t:stop()
end

for_procs("test_timers_in_goroutines", {1, 2}, function()
  local n = 50
  local res = go.chan(n)
  for i = 1, n do
    go(function()
      local t = go.timer(0.01 + (i % 5) * 0.005)
      if i % 2 == 0 then
        t:stop()
        local k = go.select{{t.c, "recv"}, {go.after(0.05), "recv"}}
        res:send(k == 2 and "stopped" or "fired after stop")
      else
        t.c:recv()
        res:send("fired")
      end
    end)
  end
  local count = {}
  for _ = 1, n do
    local r = recv_within(res, "a goroutine's timer")
    count[r] = (count[r] or 0) + 1
  end
  lu.assertEquals(count, {fired = n / 2, stopped = n / 2})
  go.wait()
end)

function test_timer_shared_with_a_goroutine()
  -- a timer is a goro object: shared by reference
  local t = go.timer(60)
  local res = go.chan()
  go(function(tm)
    tm:reset(0.01)
    res:send(true)
  end, t)
  recv(res)
  recv_within(t.c, "the timer reset by the goroutine")
  go.wait()
end

os.exit(lu.LuaUnit.run())
