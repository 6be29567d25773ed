-- run_pool.lua — "Worker Pools — Junior Level", Example 8: the whole
-- anatomy in one function. The caller sees no goroutines: RunPool spawns
-- the workers, a producer and a closer, drains the results and returns
-- them (in completion order, like the Go version).
--
--   lua5.4 examples/run_pool.lua

local go = require "goro"

local function run_pool(inputs, num_workers)
  local jobs, results = go.chan(), go.chan()
  local wg = go.waitgroup()
  for _ = 1, num_workers do -- workers
    wg:add(1)
    go(function()
      for j in jobs:range() do results:send(j * j) end
      wg:done()
    end)
  end
  go(function() -- producer
    for _, input in ipairs(inputs) do jobs:send(input) end
    jobs:close()
  end)
  go(function() -- closer
    wg:wait()
    results:close()
  end)
  local out = {} -- drain
  for r in results:range() do out[#out + 1] = r end
  return out
end

local inputs = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
-- Go's fmt.Println of a []int
print("[" .. table.concat(run_pool(inputs, 3), " ") .. "]")

-- go.map is RunPool with the results in input order:
local squares = go.map(inputs, function(n) return n * n end, {workers = 3})
print("[" .. table.concat(squares, " ") .. "]")
