-- deadlock_unbuffered.lua — the first program of "From Deadlock Hell to
-- Worker Pool Heaven": main both produces the jobs and consumes the
-- results, over unbuffered channels, with 3 workers and 5 jobs.
--
-- Main hands jobs 1-3 to the workers, which then block sending their
-- results (nobody receives yet); main blocks sending job 4. Nobody can move:
-- goro reports it, as Go does, instead of hanging:
--
--   goro: all goroutines are asleep - deadlock! ...
--
-- With jobs <= workers it would work; url_pool.lua is the real fix.
--
--   lua5.4 examples/deadlock_unbuffered.lua     (exits with an error)

local go = require "goro"

local function worker(jobs, results, wg)
  for job in jobs:range() do
    local status = tonumber(job.url:match("[^/]+$"))
    results:send({job_id = job.id, url = job.url, status_code = status})
  end
  print("G ended")
  wg:done()
end

local jobs, results = go.chan(), go.chan() -- unbuffered
local wg = go.waitgroup()

for _ = 1, 3 do
  wg:add(1)
  go(worker, jobs, results, wg)
end

local urls = {
  "https://httpbin.org/status/200", "https://httpbin.org/status/404",
  "https://httpbin.org/status/500", "https://httpbin.org/delay/1",
  "https://httpbin.org/status/200",
}
for i, url in ipairs(urls) do -- main produces jobs: job 4 never goes out
  jobs:send({id = i, url = url})
end
jobs:close()

go(function() wg:wait(); results:close() end)

for r in results:range() do
  print(string.format("job-%d %s → %d", r.job_id, r.url, r.status_code))
end
print("Main ended")
