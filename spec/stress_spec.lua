-- stress_spec.lua — the short version of spec/stress.lua for `make test`
-- and the sanitizer runs: about 4 s with 8 Ps (3 s under TSan) and 1 s
-- with 1 P, random seed (printed; STRESS_SEED=n replays it), sizes scaled
-- by STRESS_SCALE (the Makefile sets it under the sanitizers). The long
-- run is `make stress`.
local lu = require "luaunit"
local go = require "goro"
io.stdout:setvbuf("line")

STRESS_LIBRARY = true
local here = (arg and arg[0] or "spec/stress_spec.lua"):match("^(.-)[^/]*$")
local S = dofile(here .. "stress.lua")

local function run(procs, seconds)
  local opts = S.opts_from_env{seconds = seconds, procs = procs}
  if not os.getenv("STRESS_SECONDS") then opts.seconds = seconds end
  opts.procs = procs
  local r = S.run(opts)
  print("# " .. S.summary(r):gsub("\n", "\n# "))
  if not r.ok then
    for _, e in ipairs(r.more or {}) do print("# also pending: " .. e) end
    lu.fail(r.failure .. ("\n(replay: STRESS_SEED=%d lua5.4 spec/stress.lua)"):format(r.seed))
  end
  lu.assertTrue(r.rounds > 0)
  lu.assertEquals(go.numgoroutine(), 0)
end

-- Under ThreadSanitizer a shorter run: Debian's liblua5.4 leaves Lua
-- errors and yields through __longjmp_chk, which TSan does not intercept,
-- so unless the sanitizer host routes it to longjmp, TSan's shadow stacks
-- and its memory grow with every error and yield of the run.
local TSAN = os.getenv("GORO_TSAN") ~= nil

function test_stress_8_procs_on_this_machine()
  run(8, TSAN and 3 or 4)
end

function test_stress_1_proc()
  run(1, 1)
end

os.exit(lu.LuaUnit.run())
