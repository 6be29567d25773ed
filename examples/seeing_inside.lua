-- seeing_inside.lua — a small job to look at with the execution trace:
-- a producer that hands out work in bursts, three workers that do CPU work
-- of varying size, and the main state collecting the results. Traced, it
-- shows the workers running on the Ps, waiting (blocked on the jobs
-- channel) between bursts, and the main state's receives.
--
--   GORO_TRACE=trace.json lua5.4 examples/seeing_inside.lua
--   lua5.4 tools/trace_html.lua trace.json trace.html    (open it in a browser)

local go = require "goro"

local function work(n) -- CPU work: n rounds of a small loop
  local x = 0
  for i = 1, n * 20000 do x = (x + i * i) % 1000003 end
  return x
end

local jobs, results = go.chan(4), go.chan()

go(function() -- the producer: four bursts of jobs, a pause between them
  for burst = 1, 4 do
    for j = 1, 6 do jobs:send(burst * j) end
    go.sleep(0.015)
  end
  jobs:close()
end)

local wg = go.waitgroup()
for _ = 1, 3 do
  wg:add(1)
  go(function()
    for n in jobs:range() do results:send(work(n)) end
    wg:done()
  end)
end
go(function() wg:wait(); results:close() end)

local count, sum = 0, 0
for v in results:range() do count, sum = count + 1, sum + v end
print(("%d results, checksum %d"):format(count, sum))
