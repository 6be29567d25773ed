-- repl_spec.lua — goro in the interactive interpreter: `lua -i` driven
-- through a pipe. Globals defined on earlier lines reach goroutines spawned
-- on later ones; a goroutine's error or a deadlock is reported at the next
-- interaction and the REPL goes on.
--
-- The REPL is the interpreter the suite was given (GORO_LUA); the sanitizer
-- host has none, so under make asan/tsan it is lua5.4 from PATH when that
-- is the release the module was built for (else the tests are skipped).
-- When the module on LUA_CPATH is a sanitizer build, its runtimes are
-- preloaded.
local lu = require "luaunit"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local shq = S.shq

local REPL, NO_REPL = S.repl_interpreter()

-- Environment prefix that lets plain lua5.4 load the module found on
-- package.cpath (LD_PRELOAD of the sanitizer runtimes it links, if any).
local function env_prefix()
  local so = package.searchpath("goro", package.cpath)
  if not so then return "" end
  local p = io.popen("ldd " .. shq(so) .. " 2>/dev/null")
  local libs = {}
  for line in p:lines() do
    local path = line:match("lib[at]san[%w%.]*%s+=>%s+(%S+)")
      or line:match("libubsan[%w%.]*%s+=>%s+(%S+)")
    if path then libs[#libs + 1] = path end
  end
  p:close()
  if #libs == 0 then return "" end
  -- the interpreter's own allocations are not ours to judge here
  local asan = (os.getenv("ASAN_OPTIONS") or "") .. ":detect_leaks=0"
  return "LD_PRELOAD=" .. shq(table.concat(libs, " ")) .. " ASAN_OPTIONS=" .. shq(asan) .. " "
end
local ENV = env_prefix()

-- Feeds `lines` to `REPL -i`; returns the exit status and everything it
-- wrote (stdout and stderr together, in order).
local function repl(lines)
  if not REPL then lu.skip(NO_REPL) end
  local input = os.tmpname()
  local f = assert(io.open(input, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local p = io.popen(string.format("%stimeout 60 %s -i < %s 2>&1; echo \"::rc=$?\"",
    ENV, shq(REPL), shq(input)))
  local out = p:read("a")
  p:close()
  os.remove(input)
  local rc = tonumber(out:match("::rc=(%d+)%s*$"))
  out = out:gsub("::rc=%d+%s*$", "")
  return rc, out
end

-- Position of plain text `s` in `out` after position `from`, or fails.
local function find_after(out, s, from, what)
  local i = out:find(s, from or 1, true)
  lu.assertNotNil(i, (what or ("'" .. s .. "'")) .. " missing from the REPL output:\n" .. out)
  return i
end

---------------------------------------------------------------------------

function test_repl_goroutine_uses_a_function_defined_on_an_earlier_line()
  local rc, out = repl({
    'go = require "goro"',
    'function f(x) return x * 2 end',
    'c = go.chan(); go(function() c:send(f(21)) end); print(c:recv())',
  })
  lu.assertEquals(rc, 0, out)
  find_after(out, "42\ttrue")
end

function test_repl_goroutine_uses_globals_and_redefinitions()
  local rc, out = repl({
    'go = require "goro"',
    'cfg = {factor = 3, name = "cfg"}',
    'function f(x) return x * cfg.factor end',
    'c = go.chan(); go(function() c:send(f(14) .. cfg.name) end); print("first", (c:recv()))',
    'function f(x) return x + 1 end',
    'go(function() c:send(f(99)) end); print("second", (c:recv()))',
    'cfg.factor = 10; function f(x) return x * cfg.factor end',
    'go(function() c:send(f(5)) end); print("third", (c:recv()))',
  })
  lu.assertEquals(rc, 0, out)
  local i = find_after(out, "first\t42cfg")
  i = find_after(out, "second\t100", i, "the redefined f")
  find_after(out, "third\t50", i, "the changed global table")
end

function test_repl_goroutine_error_is_reported_and_the_repl_goes_on()
  local rc, out = repl({
    'go = require "goro"',
    'go(function() error("repl-boom") end)',
    'go.sleep(0.2)',
    'print("still alive", 1 + 1)',
    'c = go.chan(); go(function() c:send("works after error") end); print(c:recv())',
  })
  lu.assertEquals(rc, 0, out)
  local i = find_after(out, "repl-boom", 1, "the goroutine's error")
  find_after(out, "goroutine", 1)
  i = find_after(out, "still alive\t2", i, "a line after the error")
  find_after(out, "works after error\ttrue", i)
end

function test_repl_pcall_catches_a_goroutine_error()
  local rc, out = repl({
    'go = require "goro"',
    'go(function() error("catch-me") end)',
    'ok, err = pcall(go.wait); print("caught", ok, (err:match("catch%-me")))',
    'go.wait(); print("after", go.numgoroutine())',
  })
  lu.assertEquals(rc, 0, out)
  local i = find_after(out, "caught\tfalse\tcatch-me")
  find_after(out, "after\t0", i)
end

function test_repl_deadlock_is_reported_and_the_repl_goes_on()
  local rc, out = repl({
    'go = require "goro"',
    'c = go.chan()',
    'c:recv()',
    'print("after deadlock")',
    'go(function() c:send("fine") end); print(c:recv())',
  })
  lu.assertEquals(rc, 0, out)
  local i = find_after(out, "all goroutines are asleep - deadlock!")
  i = find_after(out, "after deadlock", i)
  find_after(out, "fine\ttrue", i)
end

function test_repl_wait_for_goroutines_started_on_earlier_lines()
  local rc, out = repl({
    'go = require "goro"',
    'results = go.chan(10)',
    'for i = 1, 10 do go(function() go.sleep(0.01 * i); results:send(i) end) end',
    'go.wait(); print("count", #results)',
    's = 0; for i = 1, 10 do s = s + results:recv() end; print("sum", s)',
  })
  lu.assertEquals(rc, 0, out)
  local i = find_after(out, "count\t10")
  find_after(out, "sum\t55", i)
end

function test_repl_exits_cleanly_with_goroutines_still_blocked()
  local rc, out = repl({
    'go = require "goro"',
    'never = go.chan()',
    'for i = 1, 20 do go(function() never:recv() end) end',
    'print("leaving with", go.numgoroutine())',
  })
  lu.assertNotEquals(rc, 124, "the REPL hung at exit")
  lu.assertEquals(rc, 0, out)
  find_after(out, "leaving with\t20")
end

-- issue #14: a goroutine stuck in a busy loop at the REPL is stopped with
-- go.cancel (the id go() returned), and the REPL goes on.
function test_repl_cancels_a_runaway_goroutine()
  if os.getenv("GORO_TSAN") == "1" then lu.skip("busy loops see no signal under TSan") end
  local rc, out = repl({
    'go = require "goro"',
    'started = go.chan(1)',
    'id = go(function() started:send(true) while true do end end)',
    'started:recv(); print("running", go.numgoroutine())',
    'go.cancel(id); go.wait(); print("stopped", go.numgoroutine())',
    'print("still here")',
  })
  lu.assertEquals(rc, 0, out)
  local i = find_after(out, "running\t1")
  i = find_after(out, "stopped\t0", i)
  find_after(out, "still here", i)
  lu.assertNotStrContains(out, "cancelled") -- no failure reported
end

os.exit(lu.LuaUnit.run())
