-- worker_pool.lua — "Concurrency patterns on Golang: Worker Pool": 3
-- workers, 10 jobs in a buffered channel, a WaitGroup, and a recover in
-- each worker so that a panicking job is reported instead of crashing the
-- program (Lua: pcall around the worker's loop).
--
--   lua5.4 examples/worker_pool.lua
--   GORO_TIME_SCALE=0.1 lua5.4 examples/worker_pool.lua   (10x faster)

local go = require "goro"

local SCALE = tonumber(os.getenv("GORO_TIME_SCALE")) or 1

local function worker(id, wg, jobs)
  local ok, err = pcall(function()
    for job in jobs:range() do
      print(string.format("Worker %d started the task %d", id, job))
      go.sleep(1 * SCALE) -- simulating a task
      print(string.format("Worker %d completed the task %d", id, job))
    end
  end)
  if not ok then print(string.format("Worker %d: panic: %s", id, err)) end
  wg:done()
end

local num_jobs, num_workers = 10, 3
local jobs = go.chan(num_jobs)
local wg = go.waitgroup()

for w = 1, num_workers do
  wg:add(1)
  go(worker, w, wg, jobs)
end

for j = 1, num_jobs do jobs:send(j) end
jobs:close()
wg:wait()
print("All tasks completed")
