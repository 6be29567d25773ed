-- worker_pool_results.lua — the "Worker Pool Pattern" of "Concurrency
-- Patterns": 3 workers double 9 jobs; main sends the jobs, closes the
-- channel and collects exactly 9 results (it knows how many to expect).
--
--   lua5.4 examples/worker_pool_results.lua
--   GORO_TIME_SCALE=0.1 lua5.4 examples/worker_pool_results.lua   (10x faster)

local go = require "goro"

local SCALE = tonumber(os.getenv("GORO_TIME_SCALE")) or 1

local function worker(id, jobs, results)
  for job in jobs:range() do
    print(string.format("Worker %d processing job %d", id, job))
    go.sleep(1 * SCALE) -- simulate work
    results:send(job * 2)
  end
end

local jobs, results = go.chan(100), go.chan(100)

for w = 1, 3 do go(worker, w, jobs, results) end -- start 3 workers

for j = 1, 9 do jobs:send(j) end -- send 9 jobs
jobs:close()

for _ = 1, 9 do print((results:recv())) end -- collect results
