-- Errors of the pattern library name the user's line: a lock that can never
-- be taken from the main state is the deadlock error at the line of the
-- call (`mu:lock()`), not a line of lua/goro/sync.lua; a goroutine's error
-- raised again in main keeps its own text.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local lu = require "luaunit"
local S = require "support"

-- Runs body (line 2 onwards of a script whose line 1 requires goro) in a
-- child; returns the line of its stderr where the interpreter reports the
-- error that stopped it.
local function first_error_line(body)
  local rc, _, err = S.run_lua('local go = require "goro"\n' .. body, 30)
  S.clean(err)
  lu.assertNotEquals(rc, 0, "the script should have failed")
  for line in err:gmatch("[^\n]+") do
    if line:match("^%S*lua[^:]*: ") then return line end
  end
  lu.fail("no error reported: " .. err)
end

local DEADLOCK = "goro: all goroutines are asleep %- deadlock!"

local CASES = {
  {"mutex locked twice", "local mu = go.mutex()\nmu:lock()\nmu:lock()\n", 4},
  {"rwmutex locked twice", "local rw = go.rwmutex()\nrw:lock()\nrw:lock()\n", 4},
  {"rlock under the write lock", "local rw = go.rwmutex()\nrw:lock()\nrw:rlock()\n", 4},
  {"rlocker under the write lock",
    "local rw = go.rwmutex()\nrw:lock()\nlocal l = rw:rlocker()\nl:lock()\n", 5},
  {"lock inside <close> scope",
    "local mu = go.mutex()\ndo\n  local _ <close> = mu:lock()\n  mu:lock()\nend\n", 5},
  {"cond wait nobody signals",
    "local mu = go.mutex()\nlocal c = go.cond(mu)\nmu:lock()\nc:wait()\n", 5},
  {"semaphore with no tokens left", "local s = go.semaphore(1)\ns:acquire()\ns:acquire()\n", 4},
  {"once called from its own function",
    "local o = go.once()\no:call(function()\n  o:call(print)\nend)\n", 4},
  {"called from a function of the script",
    "local mu = go.mutex()\nlocal function take()\n  mu:lock()\nend\ntake()\ntake()\n", 4},
}

for _, c in ipairs(CASES) do
  _G["test_deadlock_names_the_callers_line_" .. c[1]:gsub("%W+", "_")] = function()
    local line = first_error_line(c[2])
    lu.assertStrMatches(line, "^%S*lua[^:]*: [^:]+:" .. c[3] .. ": " .. DEADLOCK .. ".*")
    lu.assertNil(line:find("sync.lua", 1, true), line)
  end
end

function test_a_goroutines_error_raised_in_main_during_lock_keeps_its_text()
  local line = first_error_line([[
local mu = go.mutex()
mu:lock()
go(function() error("boom") end)
mu:lock()
]])
  lu.assertStrMatches(line, "^%S*lua[^:]*: goro: goroutine %d+: [^:]+:4: boom$")
end

function test_misuse_errors_keep_naming_the_callers_line()
  local line = first_error_line("local mu = go.mutex()\nmu:unlock()\n")
  lu.assertStrMatches(line, "^%S*lua[^:]*: [^:]+:3: goro: unlock of unlocked mutex.*")
  line = first_error_line("local s = go.semaphore(2)\ns:acquire(3)\n")
  lu.assertStrMatches(line, "^%S*lua[^:]*: [^:]+:3: goro: semaphore acquire of 3 exceeds its size 2: it can never succeed %(acquire at most 2, or pass a ctx to wait for its end, as Go does%)$")
end

os.exit(lu.LuaUnit.run())
