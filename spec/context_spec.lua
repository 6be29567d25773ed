-- goro.context: Go's context semantics — cancellation trees, deadlines,
-- values — shared by copy across goroutines.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local context = require "goro.context"

local bg = context.background()

function test_go_context_is_the_module()
  lu.assertIs(go.context, context)
  lu.assertEquals(context.canceled, "context canceled")
  lu.assertEquals(context.deadline_exceeded, "context deadline exceeded")
end

function test_background_is_never_done_and_has_nothing()
  lu.assertNil(bg:done()) -- a nil channel: its select case never fires
  lu.assertNil(bg:err())
  local t, ok = bg:deadline()
  lu.assertNil(t)
  lu.assertFalse(ok)
  lu.assertNil(bg:value("k"))
  lu.assertIs(context.background(), bg)
  lu.assertNil(context.todo():done())
  lu.assertStrContains(tostring(bg), "context.Background")
  -- a nil done case is ignored by select, like Go's nil channel
  local i = go.select{{bg:done(), "recv"}, default = true}
  lu.assertNil(i)
end

function test_cancel_closes_done_and_sets_err()
  local ctx, cancel = context.with_cancel(bg)
  lu.assertNil(ctx:err())
  lu.assertFalse(ctx:done():closed())
  cancel()
  lu.assertTrue(ctx:done():closed())
  lu.assertEquals(ctx:err(), "context canceled")
  local _, ok = recv(ctx:done())
  lu.assertFalse(ok)
  cancel() -- again: no effect, no error
  lu.assertEquals(ctx:err(), "context canceled")
end

function test_cancelling_a_parent_cancels_the_whole_subtree()
  local parent, cancel = context.with_cancel(bg)
  local child, cancel_child = context.with_cancel(parent)
  local grandchild, cancel_gc = context.with_cancel(child)
  local valued = context.with_value(grandchild, "k", "v")
  cancel()
  recv(grandchild:done())
  recv(valued:done())
  lu.assertEquals(child:err(), "context canceled")
  lu.assertEquals(grandchild:err(), "context canceled")
  lu.assertEquals(valued:err(), "context canceled")
  cancel_child(); cancel_gc()
end

function test_cancelling_a_child_leaves_its_parent_alone()
  local parent, cancel = context.with_cancel(bg)
  local child, cancel_child = context.with_cancel(parent)
  local sibling, cancel_sibling = context.with_cancel(parent)
  cancel_child()
  lu.assertEquals(child:err(), "context canceled")
  lu.assertNil(parent:err())
  lu.assertNil(sibling:err())
  cancel()
  recv(sibling:done())
  cancel_sibling()
end

function test_deriving_from_a_cancelled_parent_gives_a_cancelled_child()
  local parent, cancel = context.with_cancel(bg)
  cancel()
  local child, cancel_child = context.with_cancel(parent)
  lu.assertEquals(child:err(), "context canceled")
  cancel_child()
end

function test_timeout_ends_with_deadline_exceeded()
  local t0 = go.now()
  local ctx, cancel = context.with_timeout(bg, 0.05)
  local dl, ok = ctx:deadline()
  lu.assertTrue(ok)
  lu.assertAlmostEquals(dl, t0 + 0.05, 0.02)
  lu.assertNil(ctx:err())
  recv(ctx:done())
  lu.assertTrue(go.now() - t0 >= 0.045)
  lu.assertEquals(ctx:err(), "context deadline exceeded")
  cancel() -- cancelling afterwards keeps the first error
  lu.assertEquals(ctx:err(), "context deadline exceeded")
end

function test_cancel_before_the_deadline_wins()
  local ctx, cancel = context.with_timeout(bg, 5)
  cancel()
  lu.assertEquals(ctx:err(), "context canceled")
end

function test_a_deadline_in_the_past_is_already_exceeded()
  local ctx, cancel = context.with_deadline(bg, go.now() - 1)
  lu.assertTrue(ctx:done():closed())
  lu.assertEquals(ctx:err(), "context deadline exceeded")
  cancel()
end

function test_a_child_keeps_its_parents_earlier_deadline()
  -- 0.5 s: room for the slow builds (TSan) between the two derives below
  local parent, cancel = context.with_timeout(bg, 0.5)
  local pdl = parent:deadline()
  local child, cancel_child = context.with_timeout(parent, 10)
  lu.assertEquals(child:deadline(), pdl)
  local tighter, cancel_t = context.with_timeout(parent, 0.01)
  lu.assertTrue(tighter:deadline() < pdl)
  recv(child:done())
  -- cancelled by the parent's deadline: it reports the parent's error
  lu.assertEquals(child:err(), "context deadline exceeded")
  lu.assertEquals(tighter:err(), "context deadline exceeded")
  cancel(); cancel_child(); cancel_t()
end

function test_with_cancel_under_a_timed_out_parent_reports_deadline_exceeded()
  local parent, cancel = context.with_timeout(bg, 0.02)
  local child, cancel_child = context.with_cancel(parent)
  recv(child:done())
  lu.assertEquals(child:err(), "context deadline exceeded")
  cancel(); cancel_child()
end

function test_values_are_found_up_the_chain_and_shadowed()
  local a = context.with_value(bg, "user", "ann")
  local b = context.with_value(a, "request", 42)
  local c = context.with_value(b, "user", "bob")
  lu.assertEquals(a:value("user"), "ann")
  lu.assertEquals(b:value("user"), "ann")
  lu.assertEquals(b:value("request"), 42)
  lu.assertEquals(c:value("user"), "bob")
  lu.assertNil(c:value("missing"))
  lu.assertNil(a:done()) -- a value context of background cannot be cancelled
  local cc, cancel = context.with_cancel(c)
  lu.assertEquals(cc:value("request"), 42)
  cancel()
end

function test_values_and_cancellation_travel_to_goroutines()
  local ctx, cancel = context.with_cancel(context.with_value(bg, "trace", "t-1"))
  local got = go.chan(2)
  go(function()
    got:send(ctx:value("trace"))
    ctx:done():recv()
    got:send(ctx:err())
  end)
  lu.assertEquals(recv(got), "t-1")
  cancel()
  lu.assertEquals(recv(got), "context canceled")
end

function test_a_goroutine_may_cancel_and_main_sees_it()
  local ctx, cancel = context.with_cancel(bg)
  go(function() cancel() end)
  recv(ctx:done())
  lu.assertEquals(ctx:err(), "context canceled")
end

function test_workers_stop_on_cancel_in_a_select_loop()
  local ctx, cancel = context.with_cancel(bg)
  local jobs, done, wg = go.chan(), go.chan(10), go.waitgroup()
  for w = 1, 3 do
    wg:add(1)
    go(function()
      local n = 0
      while true do
        local i, job, ok = go.select{{ctx:done(), "recv"}, {jobs, "recv"}}
        if i == 1 or not ok then break end
        n = n + job
      end
      done:send(n)
      wg:done()
    end)
  end
  for j = 1, 30 do jobs:send(j) end
  cancel()
  wg:wait()
  local total = 0
  for _ = 1, 3 do total = total + recv(done) end
  lu.assertEquals(total, 465) -- every job sent was taken before the stop
end

function test_close_cancels_a_context()
  local ctx
  do
    local c <close> = context.with_cancel(bg)
    ctx = c
    lu.assertNil(ctx:err())
  end
  lu.assertEquals(ctx:err(), "context canceled")
  -- closing a value context does not cancel its parent
  local parent, cancel = context.with_cancel(bg)
  do
    local _ <close> = context.with_value(parent, "k", 1)
  end
  lu.assertNil(parent:err())
  cancel()
end

function test_derived_contexts_cost_no_goroutine()
  local parent, cancel = context.with_cancel(bg)
  local before = go.stats().spawned -- goroutines spawned so far, ever
  local cancels = {}
  for i = 1, 50 do
    local _, c = context.with_timeout(parent, 3600)
    cancels[i] = c
  end
  lu.assertEquals(go.stats().spawned, before, "no watcher goroutine per context")
  cancel()
  for _, c in ipairs(cancels) do c() end
end

function test_children_of_background_need_no_watcher()
  local before = go.stats().spawned
  local ctx, cancel = context.with_cancel(bg)
  lu.assertEquals(go.stats().spawned, before)
  cancel()
end

function test_a_nil_parent_is_an_error()
  lu.assertErrorMsgContains("goro: cannot create a context from a nil parent",
    context.with_cancel, nil)
  lu.assertErrorMsgContains("from a table", context.with_timeout, {}, 1)
  lu.assertErrorMsgContains("nil key", context.with_value, bg, nil, 1)
  lu.assertErrorMsgContains("number of seconds", context.with_timeout, bg, "1")
  lu.assertTrue(context.is_context(bg))
  lu.assertFalse(context.is_context({}))
end

os.exit(lu.LuaUnit.run())
