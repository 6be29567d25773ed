-- mainstate_spec.lua — the main state blocks its thread (it is not a
-- goroutine), hopeless waits become "all goroutines are asleep - deadlock!",
-- goroutines park through user coroutines and block their thread across C
-- boundaries, and scripts exit cleanly whatever their goroutines do.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local for_procs, run_lua = S.for_procs, S.run_lua

local DEADLOCK = "all goroutines are asleep - deadlock!"

local function assert_deadlock(fn, ...)
  local ok, err = pcall(fn, ...)
  lu.assertFalse(ok, "expected a deadlock error")
  lu.assertStrContains(tostring(err), DEADLOCK)
  lu.assertStrContains(tostring(err), "goro:")
  return err
end

---------------------------------------------------------------------------

for_procs("test_main_blocks_in_recv_until_a_goroutine_sends", {1, 2}, function()
  local c = go.chan()
  go(function()
    go.sleep(0.05) -- main is blocked in recv meanwhile
    c:send("late value")
  end)
  local stop = S.watchdog(c)
  local got = {c:recv()}
  stop()
  lu.assertEquals(got, {"late value", true})
  go.wait()
end)

for_procs("test_main_blocks_in_send_until_a_goroutine_receives", {1, 2}, function()
  local c, got = go.chan(), go.chan(1)
  go(function()
    go.sleep(0.05)
    got:send(c:recv())
  end)
  c:send("to goroutine")
  lu.assertEquals(recv(got), "to goroutine")
  go.wait()
end)

function test_main_recv_with_no_goroutines_is_a_deadlock()
  go.wait()
  assert_deadlock(go.chan().recv, go.chan())
  local c = go.chan()
  assert_deadlock(c.recv, c)
  assert_deadlock(c.send, c, 1)          -- unbuffered, nobody receives
  local full = go.chan(1)
  full:send(1)
  assert_deadlock(full.send, full, 2)    -- full, nobody receives
  lu.assertEquals(#full, 1)
end

function test_main_select_and_waitgroup_deadlocks()
  assert_deadlock(go.select, {{go.chan(), "recv"}, {go.chan(), "send", 1}})
  local wg = go.waitgroup()
  wg:add(1)
  assert_deadlock(wg.wait, wg)
  wg:done()
  wg:wait() -- fine now
end

function test_main_waiting_while_every_goroutine_is_blocked_forever_is_a_deadlock()
  local never, started = go.chan(), go.chan(5)
  for _ = 1, 5 do
    go(function()
      started:send(true)
      never:recv()
    end)
  end
  for _ = 1, 5 do recv(started) end
  local other = go.chan()
  assert_deadlock(other.recv, other)
  -- go.wait too
  local err = assert_deadlock(go.wait)
  lu.assertEquals(go.numgoroutine(), 5)
  -- the runtime stays usable: release them and wait for real
  never:close()
  go.wait()
  lu.assertEquals(go.numgoroutine(), 0)
  local c = go.chan()
  go(function() c:send("alive") end)
  lu.assertEquals(recv(c), "alive")
  go.wait()
end

function test_goroutines_deadlocked_among_themselves_are_detected_by_wait()
  local a, b = go.chan(), go.chan()
  go(function() a:recv(); b:send(1) end)
  go(function() b:recv(); a:send(1) end)
  assert_deadlock(go.wait)
  -- release them: each may now fail with a send on a closed channel, and
  -- any goro call (close included) may raise that error: collect them all
  for _, c in ipairs({a, b}) do
    while not c:closed() do pcall(c.close, c) end
  end
  while not pcall(go.wait) do end
  lu.assertEquals(go.numgoroutine(), 0)
end

function test_a_pending_timer_is_not_a_deadlock()
  local v = go.after(0.05):recv()
  lu.assertEquals(type(v), "number")
  local c = go.chan()
  go(function() go.sleep(0.1); c:send("woke") end)
  lu.assertEquals(c:recv(), "woke")
  go.wait()
end

function test_a_goroutine_busy_in_lua_is_not_a_deadlock()
  local c = go.chan()
  go(function()
    local t = os.clock()
    while os.clock() - t < 0.2 do end
    c:send("done computing")
  end)
  lu.assertEquals(recv(c), "done computing")
  go.wait()
end

for_procs("test_a_goroutine_in_a_blocking_call_is_not_a_deadlock", {1, 2}, function()
  local c = go.chan()
  go(function()
    local r = go.blocking(function(x)
      os.execute("sleep 0.2")
      return x * 2
    end, 21)
    c:send(r)
  end)
  lu.assertEquals(recv(c), 42)
  go.wait()
end)

function test_blocking_returns_results_and_propagates_errors()
  lu.assertEquals({go.blocking(function(a, b) return a + b, "two" end, 40, 2)}, {42, "two"})
  local c = go.chan()
  go(function()
    local r = {go.blocking(function(...) return select("#", ...), ... end, 1, nil, 3)}
    local ok, err = pcall(go.blocking, function() error("inside blocking", 0) end)
    c:send({r, ok, err})
  end)
  local r = recv(c)
  lu.assertEquals(r[1], {3, 1, nil, 3})
  lu.assertFalse(r[2])
  lu.assertEquals(r[3], "inside blocking")
  go.wait()
end

for_procs("test_blocking_call_hands_off_its_p", {1}, function()
  -- with one P, another goroutine keeps running while one sits in go.blocking
  local c, ticks, entered = go.chan(), go.chan(1000), go.chan(1)
  go(function()
    go.blocking(function()
      entered:send(true) -- buffered: does not block
      os.execute("sleep 0.5")
    end)
    c:send("blocking done")
  end)
  recv(entered)
  go(function()
    for i = 1, 1000 do ticks:send(i) end
    c:send("worker done")
  end)
  lu.assertEquals(recv(c), "worker done")
  lu.assertEquals(recv(c), "blocking done")
  lu.assertEquals(#ticks, 1000)
  go.wait()
end)

function test_go_wait_waits_for_every_goroutine()
  local n = 100
  local done = go.chan(n)
  for i = 1, n do
    go(function()
      if i % 3 == 0 then go.sleep(0.01) end
      if i % 5 == 0 then go.yield() end
      done:send(i)
    end)
  end
  go.wait()
  lu.assertEquals(#done, n)
  lu.assertEquals(go.numgoroutine(), 0)
  go.wait() -- nothing left: returns at once
end

for_procs("test_parking_inside_a_coroutine_wrap_iterator", {1, 2}, function()
  local c, res = go.chan(), go.chan()
  go(function()
    local it = coroutine.wrap(function()
      for v in c:range() do coroutine.yield(v) end
    end)
    local sum, n = 0, 0
    for v in it do sum = sum + v; n = n + 1 end
    res:send({sum, n})
  end)
  for i = 1, 500 do c:send(i) end
  c:close()
  lu.assertEquals(recv(res), {125250, 500})
  go.wait()
end)

for_procs("test_parking_inside_nested_coroutines_with_resume", {1, 2}, function()
  local c, res = go.chan(), go.chan()
  go(function()
    local inner = coroutine.create(function()
      for _ = 1, 3 do coroutine.yield(c:recv()) end
      return "inner done"
    end)
    local outer = coroutine.create(function()
      local got = {}
      while true do
        local ok, v = coroutine.resume(inner)
        assert(ok, v)
        got[#got + 1] = v
        if coroutine.status(inner) == "dead" then break end
        coroutine.yield(#got)
        go.sleep(0.001) -- parks inside the outer coroutine too
      end
      return got
    end)
    local yields = {}
    while true do
      local ok, v = coroutine.resume(outer)
      assert(ok, v)
      if coroutine.status(outer) == "dead" then
        res:send({yields, v, coroutine.isyieldable()})
        return
      end
      yields[#yields + 1] = v
    end
  end)
  for _, v in ipairs({"a", "b", "c"}) do c:send(v) end
  local r = recv(res)
  lu.assertEquals(r[1], {1, 2, 3})
  lu.assertEquals(r[2], {"a", "b", "c", "inner done"})
  go.wait()
end)

for_procs("test_parking_in_a_coroutine_while_other_goroutines_run", {1, 2}, function()
  -- many goroutines each drive a generator that receives from its own
  -- channel; the feeders send only after the generators parked
  local n = 50
  local res = go.chan(n)
  local feeds = {}
  for i = 1, n do
    feeds[i] = go.chan()
    local c = feeds[i]
    go(function()
      local gen = coroutine.wrap(function()
        while true do
          local v, ok = c:recv()
          if not ok then return end
          coroutine.yield(v)
        end
      end)
      local s = 0
      for v in gen do s = s + v end
      res:send(s)
    end)
  end
  for round = 1, 20 do
    for i = 1, n do feeds[i]:send(round) end
  end
  for i = 1, n do feeds[i]:close() end
  local total = 0
  for _ = 1, n do total = total + recv(res) end
  lu.assertEquals(total, n * 210)
  go.wait()
end)

for_procs("test_go_yield_inside_a_user_coroutine_is_invisible", {1, 2}, function()
  local res = go.chan()
  go(function()
    local gen = coroutine.wrap(function()
      for i = 1, 5 do
        go.yield()
        coroutine.yield(i)
        go.yield()
      end
    end)
    local got = {}
    for v in gen do got[#got + 1] = v end
    res:send(got)
  end)
  lu.assertEquals(recv(res), {1, 2, 3, 4, 5})
  go.yield() -- in main: returns
  go.wait()
end)

for_procs("test_channel_ops_in_a_table_sort_comparator", {1, 2}, function()
  -- table.sort's comparator cannot yield (a C boundary): the goroutine
  -- blocks its thread instead, and another goroutine must still run to
  -- answer it (with one P too)
  local ask, answer, res = go.chan(), go.chan(), go.chan()
  go(function()
    for pair in ask:range() do answer:send(pair[1] < pair[2]) end
  end)
  go(function()
    local t = {}
    for i = 1, 40 do t[i] = (i * 37) % 41 end
    local calls = 0
    table.sort(t, function(a, b)
      calls = calls + 1
      ask:send({a, b})
      return (answer:recv())
    end)
    ask:close()
    res:send({t, calls})
  end)
  local r = recv(res)
  for i = 2, #r[1] do lu.assertTrue(r[1][i - 1] < r[1][i], "not sorted at " .. i) end
  lu.assertEquals(#r[1], 40)
  lu.assertTrue(r[2] > 0)
  go.wait()
end)

for_procs("test_channel_ops_in_a_gsub_callback", {1, 2}, function()
  local words, upper, res = go.chan(), go.chan(), go.chan()
  go(function()
    for w in words:range() do upper:send(w:upper()) end
  end)
  go(function()
    local s = ("one two three"):gsub("%a+", function(w)
      words:send(w)
      return (upper:recv())
    end)
    words:close()
    res:send(s)
  end)
  lu.assertEquals(recv(res), "ONE TWO THREE")
  go.wait()
end)

for_procs("test_sleep_and_select_in_a_sort_comparator", {1, 2}, function()
  local res = go.chan()
  go(function()
    local t = {3, 1, 2}
    table.sort(t, function(a, b)
      go.sleep(0.001)
      local i = go.select{{go.after(0.001), "recv"}}
      assert(i == 1)
      return a < b
    end)
    res:send(t)
  end)
  lu.assertEquals(recv(res), {1, 2, 3})
  go.wait()
end)

function test_channel_ops_in_a_metamethod_inside_a_goroutine()
  local c, res = go.chan(), go.chan()
  go(function()
    local lazy = setmetatable({}, {__index = function(_, k) return c:recv() .. k end})
    res:send(lazy.x .. lazy.y)
  end)
  c:send("1")
  c:send("2")
  lu.assertEquals(recv(res), "1x2y")
  go.wait()
end

function test_main_state_ops_inside_a_sort_comparator()
  local c, quit = go.chan(), go.chan()
  go(function()
    while go.select{{c, "send", 1}, {quit, "recv"}} == 1 do end
  end)
  local t = {5, 4, 3, 2, 1}
  local stop = S.watchdog(c)
  table.sort(t, function(a, b) c:recv(); return a < b end)
  quit:close()
  stop()
  lu.assertEquals(t, {1, 2, 3, 4, 5})
  go.wait()
end

function test_script_leaving_goroutines_blocked_forever_exits_zero_promptly()
  local rc, out, err, took = run_lua([[
    local go = require "goro"
    local never = go.chan()
    for i = 1, 100 do go(function() never:recv() end) end
    for i = 1, 10 do go(function() go.sleep(3600) end) end
    go.yield()
    print("main done")
  ]])
  lu.assertNotEquals(rc, 124, "the script hung at exit")
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "main done\n")
  lu.assertTrue(took < 20, "exit took " .. took .. " s")
end

function test_script_returning_without_waiting_exits()
  local rc, out, err = run_lua([[
    local go = require "goro"
    local c = go.chan(100)
    for i = 1, 1000 do go(function() c:send(i) end) end
    print("returning")
  ]])
  lu.assertNotEquals(rc, 124, "the script hung at exit")
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "returning\n")
end

function test_script_with_a_spinning_goroutine_exits()
  local rc, out, err = run_lua([[
    local go = require "goro"
    local started = go.chan()
    go(function()
      started:send(true)
      local x = 0
      while true do x = x + 1 end
    end)
    started:recv()
    print("leaving")
  ]])
  lu.assertNotEquals(rc, 124, "the script hung at exit")
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "leaving\n")
end

function test_script_calling_os_exit_with_goroutines_running_exits()
  local rc, out = run_lua([[
    local go = require "goro"
    for i = 1, 10 do go(function() go.sleep(10) end) end
    local never = go.chan()
    go(function() never:recv() end)
    io.write("bye\n")
    io.stdout:flush()
    os.exit(3)
  ]])
  lu.assertEquals(rc, 3)
  lu.assertEquals(out, "bye\n")
end

-- At exit a goroutine can be left woken but never resumed: main took the
-- value it was sending, the only P was busy. The value is the receiver's
-- now: freed once (a double free aborts the child), and the rest of what
-- parked goroutines hold is freed without a leak (make valgrind/asan).
function test_exit_after_taking_a_value_from_a_sender_that_never_resumes()
  local rc, out, err = run_lua([[
    local go = require "goro"
    go.gomaxprocs(1)
    local c, started = go.chan(), go.chan()
    go(function() c:send({a = 1, b = "x"}) end)
    go(function() local s = go.chan() s:send(go.chan()) end) -- parked for good
    while go.stats().waiting < 2 do go.sleep(0.001) end -- both parked
    go(function() started:send(true) local x = 0 while true do x = x + 1 end end)
    started:recv() -- the busy goroutine holds the only P
    local v = c:recv() -- the sender is woken, but cannot run before exit
    io.write(v.b, "\n")
    io.stdout:flush()
    os.exit(0, true)
  ]])
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "x\n")
  for _, bad in ipairs{"double free", "AddressSanitizer", "LeakSanitizer", "free():"} do
    lu.assertNil(err:find(bad, 1, true), err)
  end
end

function test_script_whose_main_deadlocks_fails_with_the_message()
  local rc, _, err = run_lua([[
    local go = require "goro"
    local c = go.chan()
    go(function() c:recv() end)
    c:recv()
  ]])
  lu.assertNotEquals(rc, 124, "a deadlocked script hung instead of failing")
  lu.assertNotEquals(rc, 0)
  lu.assertStrContains(err, DEADLOCK)
end

function test_main_state_is_not_a_goroutine()
  local rc, out, err = run_lua([[
    local go = require "goro"
    print(go.numgoroutine())
    local c = go.chan()
    go(function() c:send(go.numgoroutine()) end)
    print(c:recv())
  ]])
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "0\n1\ttrue\n")
end

os.exit(lu.LuaUnit.run())
