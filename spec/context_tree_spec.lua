-- context_tree_spec.lua — the cancellation tree in C (lua/lcontext.c):
-- cancel() has cancelled every descendant before it returns, from main or
-- any goroutine; deadlines fire from the timer heap; causes; after_func.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv, for_procs = S.recv, S.for_procs
local context = go.context
local bg = context.background()

-- A tree of depth d and fan-out f under root: every node, flat.
local function tree(root, d, f, out)
  out = out or {}
  if d == 0 then return out end
  for _ = 1, f do
    local c, cancel = context.with_cancel(root)
    out[#out + 1] = {c, cancel}
    local v = context.with_value(c, "depth", d)
    out[#out + 1] = {v}
    tree(v, d - 1, f, out)
  end
  return out
end

local function assert_all_done(nodes, err)
  for i, n in ipairs(nodes) do
    lu.assertEquals(n[1]:err(), err, "node " .. i)
    lu.assertEquals(go.select{{n[1]:done(), "recv"}, default = true}, 1,
      "node " .. i .. ": done not closed")
  end
end

function test_cancel_reaches_every_descendant_before_it_returns()
  for _ = 1, 20 do
    local root, cancel = context.with_cancel(bg)
    local nodes = tree(root, 4, 3)
    cancel()
    assert_all_done(nodes, "context canceled")
  end
end

function test_a_deep_chain_is_cancelled_whole()
  local root, cancel = context.with_cancel(bg)
  local c = root
  for _ = 1, S.scaled(100000, 5000) do c = context.with_cancel(c) end
  cancel()
  lu.assertEquals(c:err(), "context canceled")
  c, root = nil, nil
  collectgarbage() -- and freed: lctx_free walks up the chain in a loop, not by recursion
  collectgarbage()
end

function test_cancel_of_a_middle_node_leaves_its_parent_and_siblings()
  local root, cancel = context.with_cancel(bg)
  local a, cancel_a = context.with_cancel(root)
  local b = context.with_cancel(root)
  local a1 = context.with_timeout(a, 3600)
  cancel_a()
  lu.assertEquals(a1:err(), "context canceled")
  lu.assertNil(root:err())
  lu.assertNil(b:err())
  cancel()
  lu.assertEquals(b:err(), "context canceled")
end

for_procs("test_cancel_in_a_goroutine_is_seen_by_every_copy_at_once", {1, 2, 4}, function()
  local N = S.scaled(40, 8)
  for _ = 1, N do
    local root, cancel = context.with_cancel(bg)
    local nodes = tree(root, 3, 2)
    local out = go.chan(1)
    go(function()
      cancel()
      -- the goroutine's copies: all done as cancel returns
      local bad = 0
      for _, n in ipairs(nodes) do if n[1]:err() ~= "context canceled" then bad = bad + 1 end end
      out:send(bad)
    end)
    lu.assertEquals(recv(out), 0)
    assert_all_done(nodes, "context canceled") -- and main's
  end
end)

for_procs("test_concurrent_cancels_and_derives_lose_nothing", {2, 4}, function()
  local G = 8
  for _ = 1, S.scaled(20, 5) do
    local root, cancel = context.with_cancel(bg)
    local made, wg = go.chan(G * 20), go.waitgroup()
    local start = go.chan()
    for _ = 1, G do
      wg:add(1)
      go(function()
        start:recv()
        for _ = 1, 20 do
          local c, cc = context.with_cancel(root)
          made:send(c)
          if math.random(2) == 1 then cc() end
        end
        wg:done()
      end)
    end
    start:close()
    cancel() -- races with the derives: each child is done either way
    wg:wait()
    made:close()
    local n = 0
    for c in made:range() do
      n = n + 1
      lu.assertEquals(c:err(), "context canceled")
    end
    lu.assertEquals(n, G * 20)
  end
end)

function test_a_child_of_a_done_parent_is_done_at_once()
  local p, cancel = context.with_cancel_cause(bg)
  cancel("shutdown")
  local c = context.with_timeout(p, 3600)
  lu.assertEquals(c:err(), "context canceled")
  lu.assertEquals(context.cause(c), "shutdown")
end

function test_deadline_fires_from_the_timer_heap_for_the_subtree()
  local root, cancel = context.with_timeout(bg, 0.02)
  local nodes = tree(root, 2, 2)
  recv(root:done())
  assert_all_done(nodes, "context deadline exceeded")
  lu.assertEquals(root:err(), "context deadline exceeded")
  lu.assertEquals(context.cause(root), "context deadline exceeded")
  cancel()
  lu.assertEquals(root:err(), "context deadline exceeded", "the first error stays")
end

function test_a_past_deadline_is_done_at_once()
  local c = context.with_deadline(bg, go.now() - 1)
  lu.assertEquals(c:err(), "context deadline exceeded")
  local d = context.with_timeout(bg, 0)
  lu.assertEquals(d:err(), "context deadline exceeded")
end

function test_a_deadline_with_a_cause()
  local c = context.with_timeout_cause(bg, 0.01, {why = "slow backend"})
  local kid = context.with_cancel(c)
  recv(kid:done())
  lu.assertEquals(kid:err(), "context deadline exceeded")
  lu.assertEquals(context.cause(kid), {why = "slow backend"})
  local d = context.with_deadline_cause(bg, go.now() - 1, "late")
  lu.assertEquals({d:err(), context.cause(d)}, {"context deadline exceeded", "late"})
  -- cancelled before the deadline: the cause is the cancel's
  local e, cancel = context.with_timeout_cause(bg, 3600, "never")
  cancel()
  lu.assertEquals(context.cause(e), "context canceled")
  local ok, err = pcall(context.with_timeout_cause, bg, "x", 1)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro: with_timeout_cause needs a number of seconds")
end

function test_cause_is_copied_to_every_descendant()
  local root, cancel = context.with_cancel_cause(bg)
  local kid = context.with_value(context.with_cancel(root), "k", 1)
  lu.assertNil(context.cause(kid))
  cancel({code = 7, why = "quota"})
  lu.assertEquals(kid:err(), "context canceled")
  lu.assertEquals(context.cause(kid), {code = 7, why = "quota"})
  lu.assertEquals(kid:cause(), {code = 7, why = "quota"})
  local out = go.chan(1)
  go(function() out:send(context.cause(kid).why) end)
  lu.assertEquals(recv(out), "quota")
  -- cancel(nil) and plain cancels: the cause is the error
  local c2, cancel2 = context.with_cancel_cause(bg)
  cancel2()
  lu.assertEquals(context.cause(c2), "context canceled")
  local ok, err = pcall(cancel, io.stdout)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "the cause")
  lu.assertNil(context.cause(bg))
end

function test_after_func_runs_once_in_its_own_goroutine_when_done()
  local ctx, cancel = context.with_cancel(bg)
  local ran = go.chan(4)
  local stop = context.after_func(ctx, function() ran:send(go.id()) end)
  lu.assertEquals({ran:tryrecv()}, {nil, false}, "not before ctx is done")
  cancel()
  local id = recv(ran)
  lu.assertTrue(id > 0, "in a goroutine")
  lu.assertFalse(stop(), "too late: f was started")
  cancel()
  go.wait()
  lu.assertEquals({ran:tryrecv()}, {nil, false}, "once")
end

function test_after_func_stop_keeps_f_from_running()
  local ctx, cancel = context.with_cancel(bg)
  local ran = go.atomic()
  local stop = context.after_func(ctx, function() ran:add(1) end)
  lu.assertTrue(stop())
  lu.assertFalse(stop(), "a second stop")
  cancel()
  go.wait()
  lu.assertEquals(ran:load(), 0)
  -- on a done context it starts at once
  local ch = go.chan(1)
  local stop2 = context.after_func(ctx, function() ch:send("now") end)
  lu.assertEquals(recv(ch), "now")
  lu.assertFalse(stop2())
  -- background is never done
  local stop3 = context.after_func(bg, function() error("never") end)
  lu.assertTrue(stop3())
  lu.assertFalse(stop3())
end

for_procs("test_after_func_races_with_stop_run_xor_stopped", {1, 2, 4}, function()
  local N = S.scaled(200, 20)
  local ran = go.atomic()
  local stopped = 0
  for _ = 1, N do
    local ctx, cancel = context.with_cancel(bg)
    local stop = context.after_func(ctx, function() ran:add(1) end)
    local out = go.chan(1)
    go(function() cancel() out:send(true) end)
    if stop() then stopped = stopped + 1 end
    recv(out)
  end
  go.wait()
  lu.assertEquals(ran:load() + stopped, N, "each f either ran or was stopped, never both")
end)

function test_after_func_on_a_deadline()
  local ctx = context.with_timeout(bg, 0.01)
  local ch = go.chan(1)
  context.after_func(ctx, function() ch:send(ctx:err()) end)
  lu.assertEquals(recv(ch), "context deadline exceeded")
end

os.exit(lu.LuaUnit.run())
