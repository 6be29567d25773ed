-- interrupt_spec.lua — Ctrl-C while the main state waits (issue #14): the
-- first SIGINT ends main's wait with the interpreter's own "interrupted!"
-- and traceback. A script exits with status 1 within a second; the REPL
-- prints it and gives the prompt back, with the runtime, the goroutines and
-- the channels usable, and nothing done by the interrupted operation.
-- interrupt.py presses the key once main's thread sleeps in its wait.
local lu = require "luaunit"
local dir = arg[0]:match("^(.*)/") or "."
package.path = dir .. "/?.lua;" .. package.path
local S = require "support"
local shq = S.shq

local DRIVER = dir .. "/interrupt.py"
local function have_python()
  local p = io.popen("python3 -c 'import pty' 2>/dev/null && echo yes")
  local yes = p:read("a"):match("yes")
  p:close()
  return yes
end
local PYTHON = not os.getenv("GORO_VALGRIND") and have_python()

local function drive(mode, lua, body)
  -- the pty driver is python3 (its shims, bash): valgrind would check their
  -- memory, not goro's; make test, asan and tsan run these
  lu.skipIf(os.getenv("GORO_VALGRIND"), "the pty driver is python3: not run under valgrind")
  if not PYTHON then lu.skip("python3 with its pty module is needed to press Ctrl-C") end
  local f = os.tmpname()
  local h = assert(io.open(f, "w"))
  h:write(body)
  h:close()
  local p = io.popen(("INTERRUPT_LIMIT=%d python3 %s %s %s %s 2>&1")
    :format(20 * S.SLOW, shq(DRIVER), mode, shq(lua), shq(f)))
  local out = p:read("a")
  p:close()
  os.remove(f)
  return out
end

---------------------------------------------------------------- scripts

-- A goroutine asleep for long keeps every wait from being a deadlock.
local function interrupted_script(op, fname)
  local out = drive("script", S.LUA, ([[
local go = require "goro"
go(function() go.sleep(1000) end)
local c, d = go.chan(), go.chan()
io.stdout:write("waiting\n"); io.stdout:flush()
%s
print("not reached")
]]):format(op))
  local rc, secs = out:match("^rc=(%-?%d+) secs=([%d%.]+)")
  lu.assertEquals(tonumber(rc), 1, out)
  lu.assertStrContains(out, "interrupted!")
  lu.assertStrContains(out, fname)
  lu.assertNotStrContains(out, "not reached")
  lu.assertTrue(tonumber(secs) < 1 * S.SLOW, "exit took " .. secs .. " s:\n" .. out)
end

function test_script_ctrl_c_interrupts_main_blocked_in_recv()
  interrupted_script("c:recv()", "recv")
end

function test_script_ctrl_c_interrupts_main_in_go_wait()
  interrupted_script("go.wait()", "wait")
end

function test_script_ctrl_c_interrupts_main_in_go_sleep()
  interrupted_script("go.sleep(100)", "sleep")
end

function test_script_ctrl_c_interrupts_main_in_select()
  interrupted_script('go.select{{c, "recv"}, {d, "recv"}}', "select")
end

function test_script_ctrl_c_interrupts_main_with_no_goroutine_at_all()
  local out = drive("script", S.LUA, [[
local go = require "goro"
io.stdout:write("waiting\n"); io.stdout:flush()
go.sleep(100)
]])
  lu.assertEquals(tonumber(out:match("^rc=(%-?%d+)")), 1, out)
  lu.assertStrContains(out, "interrupted!")
end

------------------------------------------------------------------ REPL

local REPL, NO_REPL = S.repl_interpreter()
local function repl(lines)
  if REPL ~= S.LUA then
    lu.skip("the REPL runs with the suite's interpreter only (" .. (NO_REPL or
      "the sanitizer host has no REPL, and lua5.4 does not load the sanitizer build") .. ")")
  end
  local out = drive("repl", REPL, table.concat(lines, "\n") .. "\n")
  return tonumber(out:match("^rc=(%-?%d+)")), out
end

-- Each "^C" interrupts the line before it; every interrupted line prints
-- "waiting" first (spelt so that the echo of the line does not match).
local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

function test_repl_ctrl_c_interrupts_each_wait_and_the_prompt_comes_back()
  local rc, out = repl({
    'go = require "goro"',
    'go(function() go.sleep(1000) end)',
    'c, d = go.chan(), go.chan()',
    'print("wait".."ing"); c:recv()', '^C',
    'print("wait".."ing"); go.wait()', '^C',
    'print("wait".."ing"); go.sleep(100)', '^C',
    'print("wait".."ing"); go.select{{c, "recv"}, {d, "recv"}}', '^C',
    'print("still", go.numgoroutine())',
  })
  lu.assertEquals(rc, 0, out)
  lu.assertEquals(count(out, "interrupted!"), 4, out)
  for _, f in ipairs({"recv", "goro.wait", "goro.sleep", "goro.select"}) do
    lu.assertStrContains(out, f, false)
  end
  lu.assertStrContains(out, "still\t1")
end

function test_repl_interrupted_recv_consumed_nothing_and_send_sent_nothing()
  local rc, out = repl({
    'go = require "goro"',
    'go(function() go.sleep(1000) end)',
    'c = go.chan()',
    'print("wait".."ing"); c:recv()', '^C',
    'go(function() c:send(41) end); print("got", c:recv())',
    'b = go.chan(1); b:send(1)',
    'print("wait".."ing"); b:send(2)', '^C',
    'print("buffered", b:recv(), #b)',
    'print("wait".."ing"); c:send("lost")', '^C',
    'go(function() c:send("fresh") end); print("then", c:recv())',
  })
  lu.assertEquals(rc, 0, out)
  lu.assertEquals(count(out, "interrupted!"), 3, out)
  lu.assertStrContains(out, "got\t41\ttrue")
  lu.assertStrContains(out, "buffered\t1\t0")
  lu.assertStrContains(out, "then\tfresh\ttrue")
end

function test_repl_ctrl_c_in_a_coroutine_of_main_raises_there()
  local rc, out = repl({
    'go = require "goro"',
    'go(function() go.sleep(1000) end)',
    'c = go.chan()',
    'co = coroutine.wrap(function() print("wait".."ing"); return c:recv() end)',
    'print(pcall(co))', '^C',
    'go(function() c:send(7) end); print("after", c:recv())',
  })
  lu.assertEquals(rc, 0, out)
  lu.assertNotNil(out:find("false\t[^\n]*interrupted!"), out)
  lu.assertStrContains(out, "after\t7\ttrue")
end

os.exit(lu.LuaUnit.run())
