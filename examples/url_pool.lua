-- url_pool.lua — the three-worker URL pool, with the producer decoupled
-- from the consumer: the pattern that cannot deadlock, whatever the number
-- of jobs ("From Deadlock Hell to Worker Pool Heaven", last program).
--
--   main ──► results consumer     producer goroutine ──► jobs
--   3 workers: jobs ──► "status code" parsed from the URL ──► results
--   a closer goroutine closes results once every worker has ended.
--
--   lua5.4 examples/url_pool.lua
-- (deadlock_unbuffered.lua and deadlock_buffered.lua are the two broken
-- versions that lead here.)

local go = require "goro"

local function worker(jobs, results, wg)
  for job in jobs:range() do
    local status = tonumber(job.url:match("[^/]+$")) -- the last path element
    results:send({job_id = job.id, url = job.url, status_code = status})
  end
  print("G ended")
  wg:done()
end

local jobs, results = go.chan(), go.chan()
local wg = go.waitgroup()

for _ = 1, 3 do
  wg:add(1)
  go(worker, jobs, results, wg)
end

go(function() -- the producer
  local urls = {
    "https://httpbin.org/status/200", "https://httpbin.org/status/404",
    "https://httpbin.org/status/500", "https://httpbin.org/status/500",
    "https://httpbin.org/delay/1", "https://httpbin.org/delay/1",
    "https://httpbin.org/status/200", "https://httpbin.org/status/200",
    "https://httpbin.org/status/404", "https://httpbin.org/status/500",
    "https://httpbin.org/delay/1", "https://httpbin.org/status/200",
    "https://httpbin.org/status/200", "https://httpbin.org/status/404",
    "https://httpbin.org/status/404",
  }
  for i, url in ipairs(urls) do jobs:send({id = i, url = url}) end
  jobs:close()
end)

go(function() -- the closer
  wg:wait()
  results:close()
end)

for r in results:range() do -- main consumes the results
  print(string.format("job-%d %s → %d", r.job_id, r.url, r.status_code))
end
print("Main ended")
