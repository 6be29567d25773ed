-- semaphore.lua — "Concurrency patterns on Golang: Semaphore": 10 workers
-- start 200 ms apart, but a semaphore of 3 lets only 3 work (2 s each) at
-- a time. go.semaphore is golang.org/x/sync/semaphore: weighted, FIFO.
--
--   lua5.4 examples/semaphore.lua
--   GORO_TIME_SCALE=0.1 lua5.4 examples/semaphore.lua   (10x faster)

local go = require "goro"

local SCALE = tonumber(os.getenv("GORO_TIME_SCALE")) or 1

local function worker(id, sem, wg)
  sem:acquire() -- wait for a free slot
  print(string.format("[%s] Worker %d: started work", os.date("%H:%M:%S"), id))
  go.sleep(2 * SCALE) -- simulate work
  print(string.format("[%s] Worker %d: finished", os.date("%H:%M:%S"), id))
  sem:release() -- release the slot after work
  wg:done()
end

local sem = go.semaphore(3) -- at most 3 concurrent tasks
local wg = go.waitgroup()

-- start 10 goroutines, but only 3 will be active
for i = 1, 10 do
  wg:add(1)
  go(worker, i, sem, wg)
  go.sleep(0.2 * SCALE) -- small delay between launches
end

wg:wait()
print("All tasks completed")
