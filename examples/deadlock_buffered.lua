-- deadlock_buffered.lua — buffers only delay the deadlock ("From Deadlock
-- Hell to Worker Pool Heaven", the buffered variant). Main produces an
-- endless stream of jobs and would consume the results afterwards; jobs
-- has 4 slots, results 6, and there are 3 workers. How many jobs go out
-- before everything stops?
--
--   results buffer (6) + one job held by each blocked worker (3)
--   + jobs buffer (4) = 13
--
-- so this prints "produced job 1" .. "produced job 13", then goro reports
-- "all goroutines are asleep - deadlock!". A buffer is a performance
-- optimisation, not a correctness mechanism: see url_pool.lua.
--
--   lua5.4 examples/deadlock_buffered.lua       (exits with an error)

local go = require "goro"

local function worker(jobs, results, wg)
  for job in jobs:range() do
    local status = tonumber(job.url:match("[^/]+$"))
    results:send({job_id = job.id, url = job.url, status_code = status})
  end
  wg:done()
end

local jobs, results = go.chan(4), go.chan(6)
local wg = go.waitgroup()

for _ = 1, 3 do
  wg:add(1)
  go(worker, jobs, results, wg)
end

for i = 1, math.huge do -- "infinite jobs"
  jobs:send({id = i, url = "https://httpbin.org/status/200"})
  print("produced job " .. i)
end
