-- cancel_spec.lua — issue #14: go.cancel stops a goroutine from outside
-- (item 1), error values keep their identity (item 6), the thread cap
-- never kills slow-but-healthy work (item 5), the README says a script's
-- end drops running goroutines (item 7).
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv, run_lua = S.recv, S.run_lua
-- under ThreadSanitizer a signal reaches a thread at its next libc call
-- only: a pure-Lua busy loop is never reached (see preempt_spec.lua)
local TSAN = os.getenv("GORO_TSAN") == "1"
local function busy_loops() if TSAN then lu.skip("busy loops see no signal under TSan") end end

-- ------------------------------------------------------------ go.cancel

function test_go_returns_the_goroutine_id()
  local c = go.chan(1)
  local id = go(function() c:send(go.id()) end)
  lu.assertEquals(math.type(id), "integer")
  lu.assertEquals(recv(c), id)
  go.wait()
end

function test_cancel_stops_a_busy_loop_and_is_no_failure()
  busy_loops()
  local started = go.chan()
  local id = go(function() started:send(true) while true do end end)
  recv(started)
  go.cancel(id)
  lu.assertTrue(pcall(go.wait)) -- ends; not reported as a failure
  lu.assertEquals(go.numgoroutine(), 0)
end

function test_cancel_cannot_be_caught_by_pcall()
  busy_loops()
  local started, seen = go.chan(), go.chan(10)
  local id = go(function()
    started:send(true)
    while true do
      local ok, err = pcall(function() while true do end end)
      seen:trysend(tostring(err)) -- never reached: the error comes back at once
    end
  end)
  recv(started)
  go.cancel(id)
  lu.assertTrue(pcall(go.wait))
  lu.assertNil(seen:tryrecv())
  -- the runtime and later goroutines are fine
  local c = go.chan(1)
  go(function() c:send(6 * 7) end)
  lu.assertEquals(recv(c), 42)
  go.wait()
end

function test_cancelled_goroutine_closes_its_close_variables()
  busy_loops()
  local started, closed = go.chan(), go.chan(1)
  local id = go(function()
    local _ <close> = setmetatable({}, {__close = function() closed:send("closed") end})
    started:send(true)
    while true do end
  end)
  recv(started)
  go.cancel(id)
  go.wait()
  lu.assertEquals(closed:tryrecv(), "closed")
end

function test_cancel_wakes_a_goroutine_parked_on_a_channel_or_timer()
  local parked, after = go.chan(), go.chan(4)
  local never, never2 = go.chan(), go.chan() -- nobody else uses them
  local ids = {
    go(function() parked:send(1) never:recv() after:send("recv returned") end),
    go(function() parked:send(1) go.select{{never2, "send", 1}} after:send("select returned") end),
    go(function() parked:send(1) go.sleep(3600) after:send("sleep returned") end),
  }
  for _ = 1, #ids do recv(parked) end
  go.sleep(0.01) -- let them park (a cancel before that raises at their next step anyway)
  for _, id in ipairs(ids) do go.cancel(id) end
  lu.assertTrue(pcall(go.wait)) -- woken, ended, no failure (a hang: the spec's timeout)
  lu.assertNil(after:tryrecv())
end

function test_cancel_of_an_ended_goroutine_is_nothing_and_bad_ids_are_errors()
  local id = go(function() end)
  go.wait()
  go.cancel(id)
  local ok, err = pcall(go.cancel, "x")
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro: go.cancel(id) needs a goroutine id")
end

-- --------------------------------------------------------- error values

function test_error_object_arrives_as_itself_with_its_metatable()
  local mt = {__tostring = function(t) return "E(" .. t.code .. ")" end}
  go(function() error(setmetatable({code = 7}, mt)) end)
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertEquals(type(err), "table")
  lu.assertEquals(err.code, 7)
  lu.assertEquals(tostring(err), "E(7)")
end

function test_error_string_keeps_its_nul_bytes()
  go(function() error("a\0b", 0) end)
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "a\0b")
  lu.assertStrContains(err, "goroutine")
end

function test_one_wait_reports_every_failure()
  local gate = go.chan()
  for i = 1, 3 do go(function() gate:recv() error("three-" .. i) end) end
  gate:close()
  while go.stats().goroutines > 0 do go.stats() end -- go.stats raises nothing
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "(and 2 more goroutines failed)")
  lu.assertTrue(pcall(go.wait)) -- nothing left
end

function test_error_value_that_cannot_cross_arrives_as_its_tostring()
  go(function() error({co = coroutine.create(print)}) end)
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "could not cross to the main state")
  lu.assertStrContains(err, "coroutine")
end

function test_errors_are_printed_once_where_they_end()
  local rc, out, err = run_lua([[
    local go = require "goro"
    go(function() error("caught-in-main") end)
    print(pcall(go.wait))
    go(function() error("never-raised") end)
    while go.stats().goroutines > 0 do end
  ]])
  lu.assertStrContains(out, "caught-in-main")
  lu.assertNotStrContains(err, "caught-in-main")
  lu.assertEquals(rc, 1)
  local _, n = err:gsub("never%-raised", "")
  lu.assertEquals(n, 1, err)
  lu.assertStrContains(err, "stack traceback")
end

-- ------------------------------------------------------------ thread cap

function test_thread_cap_lets_slow_calls_finish()
  local rc, out, err = run_lua([[
    local go = require "goro"
    go.maxthreads(4)
    local c = go.chan()
    for i = 1, 8 do go(function() go.blocking(os.execute, "sleep 1.5") c:send(i) end) end
    local sum = 0
    for _ = 1, 8 do sum = sum + c:recv() end
    print("sum", sum)
  ]], 30)
  lu.assertEquals(rc, 0, err)
  lu.assertStrContains(out, "sum\t36")
end

-- ---------------------------------------------------------------- README

function test_readme_says_script_end_drops_goroutines()
  local f = assert(io.open((arg[0]:match("^(.*)/") or ".") .. "/../README.md"))
  local text = f:read("a")
  f:close()
  local first = text:find("```lua", 1, true)
  lu.assertNotNil(first)
  local near = text:sub(first, first + 1500)
  lu.assertStrContains(near, "go.wait()")
  lu.assertStrContains(near, "drop")
end

os.exit(lu.LuaUnit.run())
