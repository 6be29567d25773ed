-- luarelease_spec.lua — what differs between Lua 5.4 releases
-- (lua/luacompat.h): the module runs on the release it was built for, the
-- closure-layout self-check passes there (or says so), and a pooled
-- goroutine state is reset after an error the way that release supports,
-- or closed when it cannot be (5.4.3 keeps the error status).
-- make test-lua-versions runs this (and the whole suite) on every release.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv, with_procs = S.recv, S.with_procs

function test_the_module_is_built_for_the_lua_release_that_runs_it()
  lu.assertNotNil(S.lua_release, "go.stats().lua: " .. tostring(S.LUA_RELEASE))
  local running = S.release_of(S.LUA)
  if not running then lu.skip(S.LUA .. " has no -v to say its release") end
  lu.assertEquals(S.LUA_RELEASE, running)
end

-- The self-check reads a closure's prototype; where it fails goro says so
-- once on stderr and in go.stats(), so a layout change in a future Lua
-- shows up (the releases tested all pass it).
function test_the_closure_layout_self_check_passes_on_this_release()
  lu.assertTrue(go.stats().closure_layout, "self-check failed on " .. S.LUA_RELEASE)
  local rc, out, err = S.run_lua([[
    local go = require "goro"
    local c = go.chan()
    go(function() c:send(go.stats().closure_layout) end)
    print((c:recv()))
  ]], 10)
  S.clean(err)
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "true\n")
  lu.assertNotStrContains(err, "closure layout")
end

-- On one P the same pooled states serve every goroutine: after errors
-- (5.4.3 leaves such a state dead: it must be closed, not reused) every
-- later goroutine still runs.
function test_goroutines_after_goroutine_errors_all_run()
  with_procs(1, function()
    local c = go.chan(64)
    for round = 1, 10 do
      go(function() error("boom " .. round, 0) end)
      local ok, err = pcall(go.wait)
      lu.assertFalse(ok)
      lu.assertStrContains(tostring(err), "boom " .. round)
      for i = 1, 20 do go(function() c:send(i) end) end
      local sum = 0
      for _ = 1, 20 do sum = sum + recv(c) end
      lu.assertEquals(sum, 210, "round " .. round)
    end
    go.wait()
    lu.assertEquals(go.numgoroutine(), 0)
  end)
end

-- Resetting the state of a failed goroutine closes its pending <close>
-- variables on every release, as coroutine.close does in plain Lua; what
-- __close receives is Lua's rule (lua/luacompat.h): the error from 5.4.3
-- on, nil before.
function test_close_variables_of_a_failed_goroutine_are_closed_as_lua_closes_them()
  local expected = S.lua_release >= 3 and "failed-goroutine" or "nil"
  local got
  local co = coroutine.create(function()
    local x <close> = setmetatable({}, {__close = function(_, e) got = tostring(e) end})
    error("failed-goroutine", 0)
  end)
  coroutine.resume(co)
  coroutine.close(co)
  lu.assertEquals(got, expected, S.LUA_RELEASE .. ", plain Lua")
  local c = go.chan(1)
  go(function()
    local x <close> = setmetatable({}, {__close = function(_, e) c:send(tostring(e)) end})
    error("failed-goroutine", 0)
  end)
  lu.assertStrContains(tostring(select(2, pcall(go.wait))), "failed-goroutine")
  lu.assertEquals(recv(c), expected, S.LUA_RELEASE .. ", a goroutine")
end

-- A __close that fails while the state is reset (5.4.0 to 5.4.2 leave
-- that state dead): the goroutine's own error is reported and the next
-- goroutines run.
function test_a_close_that_fails_while_a_failed_goroutine_is_reset_breaks_nothing()
  with_procs(1, function()
    for round = 1, 5 do
      go(function()
        local x <close> = setmetatable({}, {__close = function() error("in-close", 0) end})
        error("goroutine-error " .. round, 0)
      end)
      local ok, err = pcall(go.wait)
      lu.assertFalse(ok)
      lu.assertStrContains(tostring(err), "goroutine-error " .. round)
      local c = go.chan(8)
      for i = 1, 8 do go(function() c:send(i) end) end
      local sum = 0
      for _ = 1, 8 do sum = sum + recv(c) end
      lu.assertEquals(sum, 36)
    end
    go.wait()
    lu.assertEquals(go.numgoroutine(), 0)
  end)
end

-- coroutine.wrap inside a goroutine (goro's own, which passes parks): an
-- error in the wrapped coroutine closes its <close> variables and reaches
-- the caller, as in plain Lua.
function test_a_failing_wrapped_coroutine_closes_its_variables()
  local function wrapped_failure()
    local closed = 0
    local f = coroutine.wrap(function()
      local x <close> = setmetatable({}, {__close = function() closed = closed + 1 end})
      coroutine.yield(1)
      error("wrapped-boom", 0)
    end)
    f()
    local ok, err = pcall(f)
    return {ok, err, closed}
  end
  local in_main = wrapped_failure()
  lu.assertEquals(in_main, {false, "wrapped-boom", 1})
  local c = go.chan(1)
  go(function() c:send(wrapped_failure()) end)
  lu.assertEquals(recv(c), in_main)
end

-- The same with a __close that fails: from 5.4.3 its error is the one
-- raised (Lua's rule, probed by lua/luacompat.c), before the body's stays.
function test_a_wrapped_coroutine_whose_close_fails_raises_what_plain_lua_raises()
  local function failing_close()
    local f = coroutine.wrap(function()
      local x <close> = setmetatable({}, {__close = function() error("close-err", 0) end})
      coroutine.yield(1)
      error("body-err", 0)
    end)
    f()
    return select(2, pcall(f))
  end
  local expected = S.lua_release >= 3 and "close-err" or "body-err"
  lu.assertEquals(failing_close(), expected, S.LUA_RELEASE .. ", plain Lua")
  local c = go.chan(1)
  go(function() c:send(failing_close()) end)
  lu.assertEquals(recv(c), expected, S.LUA_RELEASE .. ", a goroutine")
end

os.exit(lu.LuaUnit.run())
