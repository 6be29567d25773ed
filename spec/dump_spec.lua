-- dump_spec.lua — seeing what goroutines wait on: the deadlock error lists
-- every blocked goroutine with its id, file:line and the channels it waits
-- on (by the site that made them); go.dump() gives the same as a table or
-- text; SIGQUIT prints it to stderr and exits with status 2.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"

-- Waits until go.dump() shows n goroutines in state "waiting"; returns the dump.
local function until_waiting(n)
  local d
  S.eventually(function()
    d = go.dump()
    local k = 0
    for _, e in ipairs(d) do if e.id > 0 and e.state == "waiting" then k = k + 1 end end
    return k >= n
  end, 10)
  return d
end

local function entry(d, id)
  for _, e in ipairs(d) do if e.id == id then return e end end
end

---------------------------------------------------------------------------

function test_deadlock_lists_both_goroutines_their_lines_and_channels()
  local rc, _, err = S.run_lua([[
local go = require "goro"
local a = go.chan()
local b = go.chan()
go(function()
  local v = a:recv()
  b:send(v)
end)
go(function()
  local v = b:recv()
  a:send(v)
end)
go.wait()
]], 30)
  S.clean(err)
  lu.assertEquals(rc, 1)
  lu.assertStrContains(err, "all goroutines are asleep - deadlock!")
  lu.assertStrMatches(err, ".*goroutine 1 %[chan receive[^%]]*%]:.*")
  lu.assertStrMatches(err, ".*goroutine 2 %[chan receive[^%]]*%]:.*")
  lu.assertStrMatches(err, ".*:5: in function.*")
  lu.assertStrMatches(err, ".*:9: in function.*")
  lu.assertStrMatches(err, ".*waiting on channel made at [^\n]*:2 %(receive%).*")
  lu.assertStrMatches(err, ".*waiting on channel made at [^\n]*:3 %(receive%).*")
  lu.assertStrContains(err, "main state [go.wait")
end

function test_main_state_deadlock_shows_its_own_wait_and_channel()
  local rc, _, err = S.run_lua([[
local go = require "goro"
local never = go.chan()
local mu = go.mutex()
mu:lock()
go(function() mu:lock() end)
never:recv()
]], 30)
  S.clean(err)
  lu.assertEquals(rc, 1)
  lu.assertStrContains(err, "all goroutines are asleep - deadlock!")
  lu.assertStrMatches(err, ".*main state %[chan receive[^%]]*%]:.*:6: in main chunk.*")
  lu.assertStrMatches(err, ".*waiting on channel made at [^\n]*:2 %(receive%).*")
  -- the mutex is named as such, and its channel by the user's go.mutex() line
  lu.assertStrMatches(err, ".*goroutine 1 %[sync.Mutex.Lock[^%]]*%]:.*:5: in function.*")
  lu.assertStrMatches(err, ".*waiting on channel made at [^\n]*:3 %(send%).*")
end

function test_dump_table_has_id_state_reason_since_where_and_traceback()
  local ch = go.chan()
  local done = go.chan()
  local function consume(c) return c:recv() end
  go(function() consume(ch); done:send(true) end)
  go(function() go.sleep(60) end)
  local d = until_waiting(2)
  lu.assertTrue(d[1].main)
  lu.assertEquals(d[1].state, "running")
  lu.assertStrContains(d[1].traceback, "dump_spec.lua")
  local ids = {}
  for _, e in ipairs(d) do if e.id > 0 then ids[#ids + 1] = e end end
  lu.assertEquals(#ids, 2)
  local r, s = ids[1], ids[2]
  lu.assertEquals(r.reason, "chan receive")
  lu.assertStrMatches(r.where, ".*dump_spec%.lua:%d+")
  lu.assertStrContains(r.traceback, "consume")
  lu.assertStrMatches(r.waiting_on[1], "waiting on channel made at .*dump_spec%.lua:%d+ %(receive%)")
  lu.assertTrue(r.since >= 0)
  lu.assertEquals(s.reason, "sleep")
  lu.assertEquals(#s.waiting_on, 0)
  local text = go.dump "text"
  lu.assertStrContains(text, ("goroutine %d [chan receive"):format(r.id))
  lu.assertStrContains(text, ("goroutine %d [sleep"):format(s.id))
  ch:send(1)
  S.recv(done)
  S.eventually(function() return entry(go.dump(), r.id) == nil end, 10)
  lu.assertNil(entry(go.dump(), r.id))
  lu.assertErrorMsgContains("go.dump\"text\"", go.dump, "xml")
end

function test_dump_from_a_goroutine_shows_it_running_with_its_stack()
  local out = go.chan(1)
  go(function()
    local d = go.dump()
    for _, e in ipairs(d) do
      if e.id == go.id() then out:send(e.state .. "|" .. e.traceback) return end
    end
    out:send("missing")
  end)
  local got = S.recv(out)
  lu.assertStrContains(got, "running|")
  lu.assertStrContains(got, "dump_spec.lua")
  go.wait()
end

function test_sigquit_prints_every_goroutine_and_exits_2()
  local rc, _, err = S.run_lua([[
local go = require "goro"
local a = go.chan()
go(function() a:recv() end)
go(function() go.sleep(100) end)
repeat
  local k = 0
  for _, e in ipairs(go.dump()) do if e.state == "waiting" then k = k + 1 end end
  go.sleep(0.01)
until k == 2
local pid = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
io.popen("kill -QUIT " .. pid):close() -- not os.execute: system() ignores SIGQUIT meanwhile
a:recv()
]], 30)
  S.clean(err)
  lu.assertEquals(rc, 2)
  lu.assertStrContains(err, "SIGQUIT: quit")
  lu.assertStrMatches(err, ".*goroutine 1 %[chan receive[^%]]*%]:.*:3: in function.*")
  lu.assertStrMatches(err, ".*goroutine 2 %[sleep[^%]]*%]:.*:4: in function.*")
  lu.assertStrContains(err, "main state [")
end

-- A main-state wait that a goroutine's error ends (raised in main, caught
-- by pcall) is over: a later dump shows main running, not still waiting.
function test_main_wait_ended_by_a_goroutine_error_is_over_in_later_dumps()
  -- needs the dumping goroutine to run while main's Lua loop runs: valgrind
  -- runs one thread at a time and lets a busy loop keep it
  lu.skipIf(os.getenv("GORO_VALGRIND"), "needs two threads at once: not under valgrind")
  local old = go.gomaxprocs(2)
  for _ = 1, 5 do
    local never = go.chan()
    go(function() error("boom") end)
    local ok, err = pcall(function() return never:recv() end)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "boom")
    -- (no wait here: any wait of main's would set the record afresh)
    -- main runs Lua code while a goroutine dumps
    local done, seen = go.atomic(0), go.chan(1)
    go(function(done, seen)
      local go = require "goro"
      for _, e in ipairs(go.dump()) do
        if e.main then seen:send(e.state) end
      end
      done:store(1)
    end, done, seen)
    local t0 = os.clock()
    while done:load() == 0 do
      assert(os.clock() - t0 < 10, "the dumping goroutine never ran")
    end
    local state = seen:tryrecv()
    go.wait()
    lu.assertEquals(state, "running")
  end
  go.gomaxprocs(old)
end

os.exit(lu.LuaUnit.run())
