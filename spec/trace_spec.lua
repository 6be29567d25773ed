-- trace_spec.lua — GORO_TRACE=path and go.trace_start/trace_stop write a
-- Chrome trace-event file that tools/tracejson.lua accepts: every slice
-- closed, no two slices overlapping on one P, every unblock after its
-- block; for the demo, a pool, a select-heavy and a deadlocking program.
local lu = require "luaunit"
local go = require "goro"
local here = arg[0]:match("^(.*)/") or "."
package.path = here .. "/?.lua;" .. package.path
local S = require "support"
local T = dofile(here .. "/../tools/tracejson.lua")

-- Runs src with GORO_TRACE set; returns the checked trace and the exit status.
local function traced(src, args)
  local path = os.tmpname()
  local rc, _, err = S.run_lua(src, 120, "GORO_TRACE=" .. S.shq(path) .. " " .. (args or ""))
  S.clean(err)
  local ok, trace = pcall(T.read, path)
  os.remove(path)
  lu.assertTrue(ok, "the trace is not valid JSON: " .. tostring(trace) .. "\n" .. err)
  lu.assertEquals(T.check(trace), {})
  return trace, rc, err
end

local function count(trace, pred)
  local n = 0
  for _, e in ipairs(trace.traceEvents) do if pred(e) then n = n + 1 end end
  return n
end

local function named(ph, name)
  return function(e) return e.ph == ph and e.name == name end
end

---------------------------------------------------------------------------

function test_demo_trace_has_a_slice_per_run_on_p_tracks()
  local f = assert(io.open(here .. "/../examples/demo.lua"))
  local src = f:read("a")
  f:close()
  local trace, rc = traced((src:gsub("local LIMIT = [^\n]*", "local LIMIT = 200000", 1)))
  lu.assertEquals(rc, 0)
  local runs = count(trace, function(e) return e.ph == "X" and e.cat == "goroutine" end)
  lu.assertTrue(runs >= 6, "slices: " .. runs)
  lu.assertTrue(count(trace, named("i", "spawn")) >= 3)
  lu.assertTrue(count(trace, function(e)
    return e.ph == "M" and e.name == "thread_name" and e.args.name == "P0" end) == 1)
  -- the function's site names the slice
  lu.assertTrue(count(trace, function(e)
    return e.ph == "X" and e.args and tostring(e.args.fn):find(":%d+$") end) > 0)
end

function test_pool_trace_is_consistent_and_shows_blocks_and_unblocks()
  local trace, rc = traced([[
local go = require "goro"
local p = go.pool{workers = 4, fn = function(x) return x * x end}
for i = 1, 2000 do p:submit(i) end
p:close()
local sum = 0
for _, v in p:results() do sum = sum + v end
assert(sum == 2000 * 2001 * 4001 // 6, sum)
]])
  lu.assertEquals(rc, 0)
  lu.assertTrue(count(trace, named("i", "block")) > 0)
  lu.assertTrue(count(trace, named("i", "unblock")) > 0)
end

function test_select_heavy_trace_names_select_blocks()
  local trace, rc = traced([[
local go = require "goro"
local a, b, quit = go.chan(), go.chan(), go.chan()
for w = 1, 4 do
  go(function()
    for i = 1, 500 do
      if i % 2 == 0 then a:send(i) else b:send(i) end
    end
  end)
end
local got = 0
while got < 2000 do
  local i = go.select{{a, "recv"}, {b, "recv"}, {quit, "recv"}}
  got = got + 1
end
go.wait()
]])
  lu.assertEquals(rc, 0)
  lu.assertTrue(count(trace, named("X", "select")) + count(trace, function(e)
    return e.name == "block" and e.args.reason == "chan send" end) > 0)
end

function test_deadlocking_program_still_writes_a_whole_trace()
  local trace, rc, err = traced([[
local go = require "goro"
local a, b = go.chan(), go.chan()
go(function() a:send(1) end) -- nobody receives: it blocks for good
b:recv()
]])
  lu.assertEquals(rc, 1)
  lu.assertStrContains(err, "deadlock!")
  lu.assertTrue(count(trace, function(e) return e.name == "block" and e.args.reason == "chan send" end) >= 1)
  lu.assertTrue(count(trace, named("X", "chan receive")) >= 1) -- the main state's waits
end

function test_trace_start_and_stop_from_lua()
  local path = os.tmpname()
  go.trace_start(path)
  lu.assertErrorMsgContains("already being written", go.trace_start, path)
  local ch = go.chan()
  go(function() ch:send(42) end)
  lu.assertEquals(S.recv(ch), 42)
  go.wait()
  go.trace_stop()
  lu.assertErrorMsgContains("no trace is being written", go.trace_stop)
  local trace = T.read(path)
  os.remove(path)
  lu.assertEquals(T.check(trace), {})
  lu.assertTrue(count(trace, named("i", "spawn")) == 1)
  lu.assertErrorMsgContains("cannot be opened", go.trace_start, "/nonexistent-dir/x.json")
end

function test_stats_give_per_p_runs_steals_handoffs_and_run_queue()
  local before = go.stats()
  lu.assertEquals(#before.p, go.gomaxprocs())
  local wg = go.waitgroup()
  for _ = 1, 50 do
    wg:add(1)
    go(function() go.blocking(function() end); wg:done() end)
  end
  wg:wait()
  local st = go.stats()
  local runs, handoffs = 0, 0
  for i, p in ipairs(st.p) do
    lu.assertEquals(math.type(p.runs), "integer")
    lu.assertTrue(p.steals >= before.p[i].steals)
    lu.assertTrue(p.runqueue >= 0)
    runs = runs + p.runs - before.p[i].runs
    handoffs = handoffs + p.handoffs - before.p[i].handoffs
  end
  lu.assertTrue(runs >= 50, "runs: " .. runs)
  lu.assertTrue(handoffs >= 50, "handoffs: " .. handoffs) -- every go.blocking hands its P off
end

function test_pool_total_is_checked_and_the_pool_runs_with_it()
  lu.assertErrorMsgContains("pool total must be an integer >= 0", go.pool,
    {fn = function(x) return x end, total = -1})
  local p = go.pool{fn = function(x) return x * 2 end, workers = 2, total = 10}
  for i = 1, 10 do p:submit(i) end
  p:close()
  local vals = p:wait()
  local sum = 0
  for _, v in pairs(vals) do sum = sum + v end
  lu.assertEquals(sum, 110)
end

os.exit(lu.LuaUnit.run())
