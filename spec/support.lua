-- support.lua — helpers the specs share. A spec loads it with
--   package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
--   local S = require "support"
local go = require "goro"

local S = {}

-- The interpreter running this spec: the one the suite was given
-- (GORO_LUA: the sanitizer host under make tsan/asan, a release's own under
-- make test-lua-versions). Every child process runs it.
S.LUA = arg and arg[-1] or os.getenv("GORO_LUA") or "lua5.4"

-- The Lua release the module was built for ("Lua 5.4.6"), and its release
-- number (6): specs that check Lua's own rules check them by release (the
-- rules: lua/luacompat.h).
S.LUA_RELEASE = go.stats().lua
S.lua_release = tonumber(S.LUA_RELEASE:match("^Lua 5%.4%.(%d+)$"))

-- The release an interpreter reports with -v ("Lua 5.4.6"), or nil when it
-- has no -v (the sanitizer host).
function S.release_of(lua)
  local p = io.popen(S.shq(lua) .. " -v 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out:match("^(Lua 5%.4%.%d+)")
end

-- An interpreter with a REPL (-i) for the module: the suite's own when it
-- has one; else (the sanitizer host has none) lua5.4 from PATH if it is the
-- release the module was built for. nil and the reason when there is none.
function S.repl_interpreter()
  if S.release_of(S.LUA) then return S.LUA end
  local sys = S.release_of("lua5.4")
  if sys == S.LUA_RELEASE then return "lua5.4" end
  return nil, ("%s has no REPL and lua5.4 is %s, not %s"):format(S.LUA, tostring(sys),
    S.LUA_RELEASE)
end

-- Sanitizer and valgrind runs are slower: time limits scale by SLOW.
S.SLOW = (os.getenv("GORO_TSAN") or os.getenv("GORO_VALGRIND")) and 10
  or (os.getenv("ASAN_OPTIONS") and 4 or 1)

-- n scaled by STRESS_SCALE (the Makefile lowers it under the sanitizers),
-- at least min (default 1).
local SCALE = tonumber(os.getenv("STRESS_SCALE")) or 1
function S.scaled(n, min) return math.max(min or 1, math.floor(n * SCALE)) end

-- Polls pred until it holds (for states no channel can report, such as "a
-- goroutine is parked on this lock"); false after secs (default 10).
function S.eventually(pred, secs)
  local deadline = go.now() + (secs or 10)
  while not pred() do
    if go.now() > deadline then return false end
    go.sleep(0.001)
  end
  return true
end

-- Receives from ch with a watchdog of seconds (default 20) times SLOW; the
-- timer is stopped afterwards (a pending timer would hide a deadlock from
-- the detector). Fails the test on timeout.
function S.recv(ch, seconds)
  local t = go.timer((seconds or 20) * S.SLOW)
  local i, v, ok = go.select{{ch, "recv"}, {t.c, "recv"}}
  t:stop()
  if i ~= 1 then require("luaunit").fail("timed out waiting for a value") end
  return v, ok
end

-- A watchdog for a receive that must stay ch's own (the subject of a test):
-- if ch yields nothing for seconds (default 20) times SLOW, it is closed,
-- so the receive returns. Returns stop(): it ends the watchdog and fails
-- the test if the watchdog fired. (Its timer is stopped: a pending one
-- would hide a deadlock from the detector.)
function S.watchdog(ch, seconds)
  local stop, fired = go.chan(), go.chan(1)
  go(function()
    local t = go.timer((seconds or 20) * S.SLOW)
    local i = go.select{{stop, "recv"}, {t.c, "recv"}}
    t:stop()
    if i == 2 then pcall(ch.close, ch) end
    fired:send(i == 2)
  end)
  return function()
    stop:close()
    if S.recv(fired) then require("luaunit").fail("timed out waiting for a value") end
  end
end

-- ch:range() with a watchdog on each receive (S.recv): the values until ch
-- is closed and drained.
function S.range(ch, seconds)
  return function()
    local v, ok = S.recv(ch, seconds)
    if ok then return v end
  end
end

-- Runs body with GOMAXPROCS = n, then puts the old value back (also when
-- body fails: its error is re-raised).
function S.with_procs(n, body)
  local old = go.gomaxprocs(n)
  local ok, err = pcall(body)
  go.gomaxprocs(old)
  if not ok then error(err, 0) end
end

-- Defines the global test <name>_gomaxprocs<p> for each p in procs.
function S.for_procs(name, procs, body)
  for _, p in ipairs(procs) do
    _G[name .. "_gomaxprocs" .. p] = function() S.with_procs(p, body) end
  end
end

-- Fails the test if a child's stderr holds a sanitizer report or a crash.
function S.clean(err)
  for _, bad in ipairs{"AddressSanitizer", "ThreadSanitizer", "LeakSanitizer",
                       "runtime error:", "Segmentation", "unprotected error", "core dumped"} do
    if err:find(bad, 1, true) then
      require("luaunit").fail("child process reported: " .. err:sub(1, 2000))
    end
  end
end

-- How many goroutine failures the raised error err stands for: itself and
-- the "(and N more goroutines failed)" raised with it.
function S.failed_in(err)
  return 1 + (tonumber(tostring(err):match("%(and (%d+) more goroutines? failed%)")) or 0)
end

-- s quoted for sh.
function S.shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs the Lua source src in a child interpreter, killed after limit
-- seconds (default 60, times SLOW); env: "VAR=value ..." set for it.
-- Returns its exit status, stdout, stderr and the seconds it took.
function S.run_lua(src, limit, env)
  local script, errf = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(src)
  f:close()
  local t0 = go.now()
  local p = io.popen(("%s timeout -k 2 %d %s %s 2>%s; echo \"::rc=$?\"")
    :format(env or "", math.ceil((limit or 60) * S.SLOW), S.shq(S.LUA), S.shq(script),
      S.shq(errf)))
  local out = p:read("a")
  p:close()
  local took = go.now() - t0
  local rc = tonumber(out:match("::rc=(%d+)%s*$"))
  out = out:gsub("::rc=%d+%s*$", "")
  local ef = io.open(errf)
  local err = ef and ef:read("a") or ""
  if ef then ef:close() end
  os.remove(script)
  os.remove(errf)
  return rc, out, err, took
end

return S
