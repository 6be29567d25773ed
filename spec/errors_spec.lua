-- errors_spec.lua — a goroutine's uncaught error is never lost: it is
-- printed, re-raised in the main state at its next goro call (pcall catches
-- it), and an unhandled one makes the script exit non-zero. Misuse gives
-- "goro:" errors and leaves the runtime usable.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local run_lua = S.run_lua

-- Calls pcall(fn) until it fails (a pending goroutine error), at most
-- `limit` seconds of wall time; returns the error.
local function first_failure(fn, limit)
  local deadline = os.time() + (limit or 10)
  repeat
    local ok, err = pcall(fn)
    if not ok then return err end
  until os.time() > deadline
  return nil
end

---------------------------------------------------------------------------

function test_goroutine_error_is_reraised_by_wait()
  go(function() error("kaboom-17") end)
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goroutine")
  lu.assertStrContains(err, "kaboom-17")
  lu.assertStrContains(err, "goro:")
  -- raised once: the runtime is clean afterwards
  go.wait()
  lu.assertEquals(go.numgoroutine(), 0)
end

function test_goroutine_error_is_reraised_at_the_next_goro_call()
  go(function() error("next-call-error") end)
  -- a non-blocking call raises it once the goroutine has failed
  local err = first_failure(function() return go.chan() end)
  lu.assertNotNil(err, "the goroutine's error never reached the main state")
  lu.assertStrContains(err, "next-call-error")
  lu.assertStrContains(err, "goroutine")
  -- only once
  lu.assertTrue(pcall(go.chan))
  go.wait()
end

function test_goroutine_error_interrupts_main_blocked_in_recv()
  local never = go.chan()
  go(function() error("while-main-waits") end)
  local ok, err = pcall(never.recv, never)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "while-main-waits")
  lu.assertNotStrContains(err, "deadlock")
  go.wait()
end

function test_goroutine_error_message_names_the_goroutine_and_the_place()
  go(function()
    local function inner() error("deep trouble") end
    inner()
  end)
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertStrMatches(err, ".*goroutine %d+.*")
  lu.assertStrContains(err, "errors_spec.lua:")
  lu.assertStrContains(err, "deep trouble")
end

function test_non_string_error_objects_are_reported()
  go(function() error({code = 7}) end)
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertEquals(err, {code = 7}) -- the value itself, copied
  go(function() error() end)
  ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertNil(err)
end

function test_every_goroutine_error_is_reported_once()
  local seen, failures = {}, 0
  local function note(err)
    -- one raise counts the other errors pending with it (printed on stderr)
    failures = failures + S.failed_in(err)
    local n = tostring(err):match("err%-number%-(%d)")
    lu.assertNotNil(n, err)
    lu.assertNil(seen[n], "error " .. n .. " raised twice")
    seen[n] = true
  end
  local i = 1
  while i <= 3 do -- a later go() may itself raise an earlier error
    local ok, err = pcall(go, function() error("err-number-" .. i) end)
    if ok then i = i + 1 else note(err) end
  end
  for _ = 1, 10 do
    local ok, err = pcall(go.wait)
    if ok then break end
    note(err)
  end
  lu.assertEquals(failures, 3)
end

function test_errors_caught_inside_the_goroutine_are_not_reported()
  local c = go.chan()
  go(function()
    local ok, err = pcall(error, "handled", 0)
    c:send({ok, err})
  end)
  lu.assertEquals(recv(c), {false, "handled"})
  go.wait() -- raises nothing
end

function test_error_in_a_user_coroutine_is_returned_by_resume()
  local c = go.chan()
  go(function()
    local co = coroutine.create(function()
      coroutine.yield(1)
      error("inside-co", 0)
    end)
    local r1 = {coroutine.resume(co)}
    local r2 = {coroutine.resume(co)}
    local r3 = {coroutine.resume(co)}
    c:send({r1, r2, r3, coroutine.status(co)})
  end)
  local r = recv(c)
  lu.assertEquals(r[1], {true, 1})
  lu.assertEquals(r[2], {false, "inside-co"})
  lu.assertEquals(r[3][1], false)
  lu.assertStrContains(r[3][2], "dead")
  lu.assertEquals(r[4], "dead")
  go.wait()
end

function test_error_in_a_wrapped_coroutine_propagates_to_the_goroutine()
  local c = go.chan()
  go(function()
    local gen = coroutine.wrap(function() error("wrapped-fail") end)
    local ok, err = pcall(gen)
    c:send({ok, err})
  end)
  local r = recv(c)
  lu.assertFalse(r[1])
  lu.assertStrContains(r[2], "wrapped-fail")
  go.wait()
  -- uncaught: it becomes the goroutine's error
  go(function()
    local gen = coroutine.wrap(function() coroutine.yield(); error("wrapped-uncaught") end)
    gen()
    gen()
  end)
  local ok, err = pcall(go.wait)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "wrapped-uncaught")
end

function test_error_in_a_coroutine_that_parked_is_reported()
  local c = go.chan()
  go(function()
    local co = coroutine.wrap(function()
      local v = c:recv()        -- parks inside the user coroutine
      error("after-park-" .. v, 0)
    end)
    local ok, err = pcall(co)
    c:send(ok and "no error" or err)
  end)
  c:send("x")
  lu.assertStrContains(recv(c), "after-park-x")
  go.wait()
end

function test_runtime_stays_usable_after_goroutine_errors()
  -- any goro call may raise an earlier goroutine's error, go() included
  local failures, spawned, i = 0, 0, 0
  while spawned < 20 do
    i = i + 1
    local ok, err = pcall(go, function() error("burst " .. i) end)
    if ok then spawned = spawned + 1 else failures = failures + S.failed_in(err) end
  end
  while true do
    local ok, err = pcall(go.wait)
    if ok then break end
    failures = failures + S.failed_in(err)
  end
  lu.assertEquals(failures, 20)
  local c = go.chan()
  local n = 200
  for i = 1, n do go(function() c:send(i) end) end
  local sum = 0
  for _ = 1, n do sum = sum + recv(c) end
  lu.assertEquals(sum, n * (n + 1) // 2)
  go.wait()
  lu.assertEquals(go.numgoroutine(), 0)
end

function test_misuse_gives_goro_errors_and_leaves_the_runtime_usable()
  local wg = go.waitgroup()
  local cases = {
    function() go(42) end,
    function() go.chan(-5) end,
    function() go.chan().send(wg, 1) end,
    function() wg:done() end,                    -- negative counter
    function() go.gomaxprocs(-3) end,
    function() go.select{{"nope", "recv"}} end,
    function() go.ticker(0) end,
    function() local c = go.chan(); c:close(); c:close() end,
  }
  for i, f in ipairs(cases) do
    local ok, err = pcall(f)
    lu.assertFalse(ok, "case " .. i .. " did not fail")
    lu.assertStrContains(tostring(err), "goro:", "case " .. i)
  end
  lu.assertEquals(wg:count(), 0)
  local c = go.chan(1)
  go(function() c:send("still fine") end)
  lu.assertEquals(recv(c), "still fine")
  go.wait()
end

function test_go_wait_inside_a_goroutine_is_an_error_there()
  local c = go.chan()
  go(function()
    local ok, err = pcall(go.wait)
    c:send({ok, err})
  end)
  local r = recv(c)
  lu.assertFalse(r[1])
  lu.assertStrContains(r[2], "goro:")
  go.wait()
end

function test_script_with_an_unhandled_goroutine_error_exits_nonzero()
  local rc, out, err = run_lua([[
    local go = require "goro"
    go(function() error("child-boom") end)
    go.wait()
    print("not reached")
  ]])
  lu.assertNotEquals(rc, 0)
  lu.assertNotEquals(rc, 124, "the script hung")
  lu.assertStrContains(err, "child-boom")
  lu.assertStrContains(err, "goroutine")
  lu.assertNotStrContains(out, "not reached")
end

function test_script_ending_without_goro_calls_still_exits_nonzero()
  -- the error happens, but main never calls goro again: the exit says so
  local rc, out, err = run_lua([[
    local go = require "goro"
    go(function() error("silent-boom") end)
    local t = os.clock()
    while os.clock() - t < 0.3 do end -- busy, no goro call
    print("main done")
  ]])
  lu.assertEquals(out, "main done\n")
  lu.assertNotEquals(rc, 0, "an unhandled goroutine error went unnoticed")
  lu.assertNotEquals(rc, 124, "the script hung")
  lu.assertStrContains(err, "silent-boom")
end

function test_script_that_handles_the_goroutine_error_exits_zero()
  local rc, out, err = run_lua([[
    local go = require "goro"
    go(function() error("handled-boom") end)
    local ok, e = pcall(go.wait)
    print(ok, e:match("handled%-boom"))
  ]])
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "false\thandled-boom\n")
  -- main handled it: printed nowhere (printed once, where it ends unhandled)
  lu.assertNotStrContains(err, "handled-boom")
end

os.exit(lu.LuaUnit.run())
