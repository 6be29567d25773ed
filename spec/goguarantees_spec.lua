-- goguarantees_spec.lua — what Go guarantees that goro used to differ on
-- (#15): durations <= 0 (timers fire at once, Tick gives nil, GOMAXPROCS(0)
-- reads), a non-blocking receive that tells "would block" from "closed",
-- and runtime.Goexit as go.exit().
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs

-- ------------------------------------------------------------ durations

function test_after_and_timer_with_a_negative_duration_fire_at_once()
  lu.assertEquals(math.type((recv(go.after(-1)))), "float")
  lu.assertEquals(math.type((recv(go.after(0)))), "float")
  local t = go.timer(-1)
  lu.assertEquals(math.type((recv(t.c))), "float")
  lu.assertFalse(t:reset(-5), "a fired timer was not active")
  lu.assertEquals(math.type((recv(t.c))), "float")
  t:reset(3600)
  lu.assertTrue(t:reset(-1), "a pending timer was active")
  lu.assertEquals(math.type((recv(t.c))), "float")
end

function test_tick_with_a_non_positive_period_is_nil()
  lu.assertNil(go.tick(0))
  lu.assertNil(go.tick(-1))
  -- a nil channel never fires in select, as in Go
  lu.assertNil(go.select{{go.tick(0), "recv"}, default = true})
end

function test_gomaxprocs_zero_reads_the_value()
  local n = go.gomaxprocs()
  lu.assertEquals(go.gomaxprocs(0), n)
  lu.assertEquals(go.gomaxprocs(0), n, "reading changed it")
end

-- ------------------------------------------------------------ tryrecv

function test_tryrecv_tells_would_block_from_closed()
  for _, cap in ipairs{0, 3} do
    local c = go.chan(cap)
    lu.assertEquals({c:tryrecv()}, {nil, false}, "open and empty: would block")
    if cap > 0 then
      c:send(false)
      lu.assertEquals({c:tryrecv()}, {false, true}, "a false value is a value")
      c:send(7)
      c:close()
      lu.assertEquals({c:tryrecv()}, {7, true}, "closed but not drained: the value")
    else
      c:close()
    end
    local v, ok, closed = c:tryrecv()
    lu.assertEquals({v, ok, closed}, {nil, false, true}, "closed and drained")
  end
end

function test_tryrecv_in_a_goroutine_sees_close_from_another()
  local c, out = go.chan(), go.chan(1)
  go(function()
    local blocked = select(3, c:tryrecv()) == nil
    c:close()
    out:send({blocked, select(3, c:tryrecv())})
  end)
  lu.assertEquals(recv(out), {true, true})
end

-- ------------------------------------------------------------ go.exit

function test_exit_ends_the_goroutine_running_its_close_variables()
  local out = go.chan(8)
  go(function()
    local _ <close> = setmetatable({}, {__close = function(_, e) out:send({"outer", e}) end})
    local ok = pcall(function() -- pcall cannot stop it, as recover cannot stop Goexit
      local _ <close> = setmetatable({}, {__close = function(_, e) out:send({"inner", e}) end})
      go.exit()
    end)
    out:send({"after exit", ok})
  end)
  go.wait() -- no error is raised in main
  out:close()
  local got = {}
  for v in out:range() do got[#got + 1] = v end
  lu.assertEquals(got, {{"inner"}, {"outer"}})
end

function test_exit_inside_a_user_coroutine_closes_it_and_ends_the_goroutine()
  local out = go.chan(8)
  go(function()
    local co = coroutine.wrap(function()
      local _ <close> = setmetatable({}, {__close = function() out:send("coroutine") end})
      coroutine.yield(1)
      go.exit()
    end)
    co()
    local _ <close> = setmetatable({}, {__close = function() out:send("goroutine") end})
    co()
    out:send("not reached")
  end)
  go.wait()
  out:close()
  local got = {}
  for v in out:range() do got[#got + 1] = v end
  lu.assertEquals(got, {"coroutine", "goroutine"})
end

function test_exit_is_not_an_error_and_its_state_is_reused()
  local n = S.scaled(200, 20)
  local wg, done = go.waitgroup(), go.chan(n)
  for i = 1, n do
    wg:add(1)
    go(function()
      local _ <close> = setmetatable({}, {__close = function() wg:done() end})
      done:send(i)
      go.exit()
      error("not reached")
    end)
  end
  wg:wait()
  go.wait()
  local sum = 0
  for _ = 1, n do sum = sum + done:recv() end
  lu.assertEquals(sum, n * (n + 1) // 2)
end

function test_a_failing_close_after_exit_is_the_goroutines_error()
  go(function()
    local _ <close> = setmetatable({}, {__close = function() error("close failed") end})
    go.exit()
  end)
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "close failed")
end

function test_exit_in_main_is_a_clear_error()
  local ok, err = pcall(go.exit)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro: go.exit() ends a goroutine; in the main state use os.exit")
end

function test_exit_where_it_cannot_yield_is_a_clear_error()
  local out = go.chan(1)
  go(function()
    local ok, err = pcall(table.sort, {3, 1, 2}, function(a, b) go.exit() return a < b end)
    out:send({ok, err})
  end)
  local r = recv(out)
  lu.assertFalse(r[1])
  lu.assertStrContains(r[2], "goro: go.exit() cannot end the goroutine from inside a C call")
  go.wait()
end

os.exit(lu.LuaUnit.run())
