-- smallest_pool.lua — "Worker Pools — Junior Level", Example 1: the
-- smallest worker pool that works. Four roles: 3 workers, 1 producer, 1
-- closer (turns "all workers exited" into "results closed"), and main, the
-- consumer. Prints n^2 for n = 1..5, in the order the workers finish.
--
--   lua5.4 examples/smallest_pool.lua

local go = require "goro"

local function worker(id, jobs, results, wg)
  for j in jobs:range() do
    results:send({n = j.n, square = j.n * j.n}) -- id could be logged here
  end
  wg:done()
end

local num_workers = 3
local jobs, results = go.chan(5), go.chan(5)
local wg = go.waitgroup()

for w = 1, num_workers do
  wg:add(1)
  go(worker, w, jobs, results, wg)
end

go(function() -- producer
  for n = 1, 5 do jobs:send({n = n}) end
  jobs:close()
end)

go(function() -- closer
  wg:wait()
  results:close()
end)

for r in results:range() do -- consumer
  print(string.format("%d^2 = %d", r.n, r.square))
end

-- With the library, the same in three lines:
--   local p = go.pool{workers = 3, fn = function(n) return n * n end}
--   for n = 1, 5 do p:submit(n) end
--   for n, sq in ipairs(p:wait()) do print(string.format("%d^2 = %d", n, sq)) end
