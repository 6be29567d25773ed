-- go.exit() (runtime.Goexit) inside the patterns: an errgroup task that
-- exits counts as one that returned without error (Go's errgroup runs its
-- deferred Done), and a pool job that exits is a job that returned
-- nothing, with every other job still run by the pool's workers.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local lu = require "luaunit"
local go = require "goro"
local S = require "support"

-- g:wait() with a watchdog: a hang fails the test.
local function wait_group(g)
  local res = go.chan(1)
  go(function() res:send({g:wait()}) end)
  return S.recv(res)
end

function test_an_errgroup_task_that_exits_is_done_without_error()
  for _ = 1, 20 do
    local g = go.errgroup()
    local ran = go.atomic(0)
    for i = 1, 8 do
      g:go(function()
        ran:add(1)
        if i % 2 == 0 then go.exit() end
      end)
    end
    lu.assertEquals(wait_group(g), {})
    lu.assertEquals(ran:load(), 8)
  end
end

function test_an_errgroup_with_a_limit_frees_the_slot_of_a_task_that_exits()
  local g = go.errgroup()
  g:set_limit(1)
  local n = go.atomic(0)
  for _ = 1, 5 do g:go(function() n:add(1); go.exit() end) end
  lu.assertEquals(wait_group(g), {})
  lu.assertEquals(n:load(), 5)
end

function test_a_pool_job_that_exits_returns_nothing_and_the_rest_still_run()
  for _, workers in ipairs{1, 3} do
    local p = go.pool{workers = workers, fn = function(x)
      if x % 3 == 0 then go.exit() end
      return x * 10
    end}
    for x = 1, 30 do p:submit(x) end
    local done = go.chan(1)
    go(function() done:send({p:wait()}) end)
    local r = S.recv(done)
    local values, errs = r[1], r[2]
    for x = 1, 30 do
      if x % 3 == 0 then lu.assertNil(values[x], x) else lu.assertEquals(values[x], x * 10) end
    end
    lu.assertNil(errs)
  end
end

os.exit(lu.LuaUnit.run())
