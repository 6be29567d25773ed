-- worker_pool_context.lua — the "minimal worker-pool example" with context
-- cancellation: 3 workers take 8 jobs from a buffered channel; each worker
-- also watches ctx:done(), so cancelling the context stops them all
-- promptly. Prints one line per job, in completion order.
--
--   lua5.4 examples/worker_pool_context.lua

local go = require "goro"
local context = go.context

local function worker(ctx, id, jobs, results, wg)
  while true do
    local case, job, ok = go.select{{ctx:done(), "recv"}, {jobs, "recv"}}
    if case == 1 or not ok then break end -- cancelled, or jobs closed and drained
    go.sleep(0.05) -- simulate I/O or compute work
    results:send({job_id = job.id, value = string.format("worker-%d done", id)})
  end
  wg:done()
end

-- `<close>` cancels the context when main's scope ends (Go: defer cancel())
local ctx <close>, cancel = context.with_cancel(context.background())

local jobs, results = go.chan(10), go.chan(10)
local workers = 3
local wg = go.waitgroup()
for i = 1, workers do
  wg:add(1)
  go(worker, ctx, i, jobs, results, wg)
end

for i = 1, 8 do jobs:send({id = i}) end
jobs:close()

go(function()
  wg:wait()
  results:close()
end)

for r in results:range() do
  print(string.format("job=%d %s", r.job_id, r.value))
end
