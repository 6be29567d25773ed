-- mainwait_spec.lua — the main state's waits run goroutines on its own
-- thread (core/park.c, "The main thread as an M"): the goroutine main
-- woke runs there during main's next wait and hands its value over with no
-- thread parked or woken; deadlock detection and goroutine errors still
-- reach main while it does.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv, for_procs = S.recv, S.for_procs

local DEADLOCK = "all goroutines are asleep - deadlock!"

-- Before: every rendezvous with main put an M to sleep on a futex (one
-- mpark per value); now the sender runs on main's thread.
for_procs("test_main_receiving_from_a_goroutine_parks_no_thread_per_value", {1, 2}, function()
  local n = 2000
  local c = go.chan()
  go(function() for i = 1, n do c:send(i) end end)
  local stop = S.watchdog(c)
  local before = go.stats().mparks
  local sum = 0
  for _ = 1, n do sum = sum + (c:recv() or 0) end
  local parks = go.stats().mparks - before
  stop()
  lu.assertEquals(sum, n * (n + 1) // 2)
  lu.assertTrue(parks < n / 10, ("%d M parks for %d receives"):format(parks, n))
  go.wait()
end)

-- With one P (with two, the second feeder rightly runs on an M of its own).
for_procs("test_main_select_with_goroutines_parks_no_thread_per_value", {1}, function()
  local n = 1000
  local a, b = go.chan(), go.chan()
  go(function() for i = 1, n do a:send(i) end end)
  go(function() for i = 1, n do b:send(-i) end end)
  local t = go.timer(20 * S.SLOW)
  local before = go.stats().mparks
  local sum, got = 0, 0
  while got < 2 * n do
    local i, v = go.select{{a, "recv"}, {b, "recv"}, {t.c, "recv"}}
    lu.assertNotEquals(i, 3, "timed out")
    sum, got = sum + v, got + 1
  end
  local parks = go.stats().mparks - before
  t:stop()
  lu.assertEquals(sum, 0)
  lu.assertTrue(parks < n / 5, ("%d M parks for %d selects"):format(parks, 2 * n))
  go.wait()
end)

-- The goroutine main hands d's value to is readied onto main's P and runs
-- on main's thread in main's next wait, where it blocks forever: main's
-- wait must still end in "deadlock!".
for_procs("test_deadlock_found_while_main_runs_the_goroutine_it_woke", {1, 2}, function()
  local d, e, c = go.chan(), go.chan(), go.chan()
  go(function() d:recv(); e:recv(); c:send("after e") end)
  d:send(1)
  local ok, err = pcall(c.recv, c)
  lu.assertFalse(ok, "expected a deadlock error")
  lu.assertStrContains(tostring(err), DEADLOCK)
  e:close()
  lu.assertEquals(recv(c), "after e")
  go.wait()
  lu.assertEquals(go.numgoroutine(), 0)
end)

-- An error in the goroutine main woke, raised while it runs on main's
-- thread, ends main's wait with that error.
for_procs("test_error_of_the_goroutine_main_woke_is_raised_in_main", {1, 2}, function()
  local d, c = go.chan(), go.chan()
  go(function() d:recv(); error("boom from the woken goroutine") end)
  d:send(1)
  local ok, err = pcall(c.recv, c)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom from the woken goroutine")
  go.wait()
end)

-- go.wait runs them too: many goroutines woken by main finish while main
-- waits for all of them.
for_procs("test_go_wait_runs_the_goroutines_main_woke", {1, 2}, function()
  local n = 200
  local chans, done = {}, go.chan(n)
  for i = 1, n do
    chans[i] = go.chan()
    go(function() done:send(chans[i]:recv() * 2) end)
  end
  for i = 1, n do chans[i]:send(i) end
  go.wait()
  local sum = 0
  for _ = 1, n do sum = sum + recv(done) end
  lu.assertEquals(sum, n * (n + 1))
end)

os.exit(lu.LuaUnit.run())
