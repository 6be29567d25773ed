-- goro.errgroup: golang.org/x/sync/errgroup semantics — wait for all,
-- first error wins, the first error cancels the group's context, limits.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local eventually = S.eventually
local context = go.context

function test_wait_returns_nil_after_every_task_ran()
  local g = go.errgroup()
  local sum = go.chan(100)
  for i = 1, 40 do g:go(function() sum:send(i) end) end
  lu.assertNil(g:wait())
  local total = 0
  for _ = 1, 40 do total = total + recv(sum) end
  lu.assertEquals(total, 820)
  lu.assertEquals(#sum, 0)
end

function test_a_returned_error_is_the_groups_error()
  local g = go.errgroup()
  g:go(function() return nil end)
  g:go(function() return "disk full" end)
  g:go(function() return true end) -- true, nil and false mean success
  lu.assertEquals(g:wait(), "disk full")
end

function test_lua_style_nil_err_counts_as_an_error()
  local g = go.errgroup()
  g:go(function() return nil, "not found" end)
  lu.assertEquals(g:wait(), "not found")
end

function test_a_raised_error_counts_and_keeps_its_traceback()
  local g = go.errgroup()
  local function deep() error("kaboom") end
  g:go(function() deep() end)
  local err = g:wait()
  lu.assertStrContains(err, "errgroup_spec.lua")
  lu.assertStrContains(err, "kaboom")
  lu.assertStrContains(err, "stack traceback:")
  lu.assertStrContains(err, "deep")
end

function test_a_raised_error_object_comes_back_as_is()
  local g = go.errgroup()
  g:go(function() error({code = 404, msg = "missing"}) end)
  local err = g:wait()
  lu.assertEquals(err, {code = 404, msg = "missing"})
end

function test_a_failing_task_does_not_crash_the_program()
  -- the error is the group's, not an uncaught goroutine error
  local g = go.errgroup()
  g:go(function() local t = nil; return t.field end)
  lu.assertStrContains(g:wait(), "attempt to index a nil value")
  local ch = go.chan()
  go(function() ch:send(1) end)
  lu.assertEquals(recv(ch), 1) -- no goroutine error pending
end

function test_the_first_error_wins()
  local g = go.errgroup()
  local second = go.chan()
  g:go(function() return "first" end)
  g:go(function() second:recv(); return "second" end)
  lu.assertTrue(eventually(function() return g.errc:closed() or #g.errc == 1 end))
  second:send(true)
  lu.assertEquals(g:wait(), "first")
  lu.assertEquals(g:wait(), "first") -- waiting again gives it again
end

function test_the_first_error_cancels_the_others_context()
  local g, ctx = go.errgroup()
  local outcome = go.chan(3)
  g:go(function()
    local i = go.select{{go.after(5), "recv"}, {ctx:done(), "recv"}}
    outcome:send(i == 2 and "canceled" or "timeout")
    return ctx:err()
  end)
  g:go(function()
    ctx:done():recv()
    outcome:send("canceled")
    return ctx:err()
  end)
  g:go(function() return "something went wrong" end)
  local t0 = go.now()
  lu.assertEquals(g:wait(), "something went wrong")
  lu.assertTrue(go.now() - t0 < 2, "the others were not cancelled")
  lu.assertEquals(recv(outcome), "canceled")
  lu.assertEquals(recv(outcome), "canceled")
  lu.assertEquals(ctx:err(), "context canceled")
end

function test_wait_cancels_the_context_even_without_error()
  local g, ctx = go.errgroup()
  g:go(function() end)
  lu.assertNil(g:wait())
  lu.assertEquals(ctx:err(), "context canceled")
end

function test_the_group_context_derives_from_the_parent()
  local parent, cancel = context.with_cancel(context.background())
  local pctx = context.with_value(parent, "req", 7)
  local g, ctx = go.errgroup(pctx)
  lu.assertEquals(ctx:value("req"), 7)
  lu.assertIs(g:context(), ctx)
  g:go(function() ctx:done():recv(); return ctx:err() end)
  cancel()
  lu.assertEquals(g:wait(), "context canceled")
end

function test_set_limit_bounds_the_running_tasks()
  local g = go.errgroup()
  g:set_limit(2)
  local mu, inside, peak = go.mutex(), go.chan(1), go.chan(1)
  inside:send(0); peak:send(0)
  for _ = 1, 12 do
    g:go(function()
      mu:lock()
      local n = inside:recv() + 1
      inside:send(n)
      local p = peak:recv()
      peak:send(math.max(p, n))
      mu:unlock()
      go.sleep(0.002)
      mu:lock(); inside:send(inside:recv() - 1); mu:unlock()
    end)
  end
  lu.assertNil(g:wait())
  local p = recv(peak)
  lu.assertTrue(p <= 2 and p >= 1, "peak " .. p)
end

function test_try_go_refuses_when_the_limit_is_reached()
  local g = go.errgroup()
  g:set_limit(1)
  local release = go.chan()
  lu.assertTrue(g:try_go(function() release:recv() end))
  local ran = go.chan(1)
  lu.assertFalse(g:try_go(function() ran:send(true) end))
  release:send(true)
  lu.assertNil(g:wait())
  lu.assertEquals(#ran, 0)
  lu.assertTrue(g:try_go(function() end))
  lu.assertNil(g:wait())
end

function test_set_limit_errors()
  local g = go.errgroup()
  lu.assertErrorMsgContains("errgroup limit must be an integer", g.set_limit, g, 1.5)
  lu.assertErrorMsgContains("errgroup limit must be an integer", g.set_limit, g, nil)
  g:set_limit(1)
  local release = go.chan()
  g:go(function() release:recv() end)
  lu.assertErrorMsgContains("modify limit while 1 goroutines", g.set_limit, g, 3)
  release:send(true)
  g:wait()
  g:set_limit(-1) -- no limit
  for _ = 1, 5 do g:go(function() end) end
  lu.assertNil(g:wait())
end

function test_tasks_may_add_tasks_to_the_group()
  local g = go.errgroup()
  local sum = go.chan(100)
  for i = 1, 5 do
    g:go(function()
      for j = 1, 3 do g:go(function() sum:send(i * j) end) end
    end)
  end
  lu.assertNil(g:wait())
  local total = 0
  while #sum > 0 do total = total + recv(sum) end
  lu.assertEquals(total, 15 * 6)
end

function test_go_passes_arguments_and_checks_its_function()
  local g = go.errgroup()
  local out = go.chan(1)
  g:go(function(a, b) out:send(a .. b) end, "x", "y")
  lu.assertNil(g:wait())
  lu.assertEquals(recv(out), "xy")
  lu.assertErrorMsgContains("errgroup go needs a function", g.go, g, 42)
  lu.assertIs(go.errgroup, require("goro.errgroup").errgroup)
end

os.exit(lu.LuaUnit.run())
