-- fan_out_fan_in.lua — "Concurrency patterns on Golang: Fan-out / Fan-in".
-- generate_jobs feeds 5 numbers; fan_out starts 3 workers that square
-- them (stopping early if the context is cancelled); fan_in merges the
-- workers' channels into one. Prints the five squares in whatever order the
-- workers finish. (The Go program's message is Russian for "got result".)
--
--   lua5.4 examples/fan_out_fan_in.lua

local go = require "goro"
local context = go.context

-- Task generation
local function generate_jobs(n)
  local ch = go.chan()
  go(function()
    for i = 1, n do ch:send(i) end
    ch:close()
  end)
  return ch
end

-- Fan-out: distributing tasks among workers
local function fan_out(ctx, jobs, num_workers)
  local worker_channels = {}
  for i = 1, num_workers do
    local result_ch = go.chan()
    go(function()
      while true do
        local case, job, ok = go.select{{jobs, "recv"}, {ctx:done(), "recv"}}
        if case == 2 or not ok then break end -- cancelled, or no more jobs
        result_ch:send(job * job) -- task processing: squaring
      end
      result_ch:close()
    end)
    worker_channels[i] = result_ch
  end
  return worker_channels
end

-- Fan-in: merging results
local function fan_in(channels)
  local wg = go.waitgroup()
  local merged = go.chan()
  wg:add(#channels)
  for _, ch in ipairs(channels) do
    go(function(c)
      for res in c:range() do merged:send(res) end
      wg:done()
    end, ch)
  end
  go(function() -- closes the final channel
    wg:wait()
    merged:close()
  end)
  return merged
end

local jobs = generate_jobs(5)                                  -- 1. generate
local result_channels = fan_out(context.background(), jobs, 3) -- 2. fan out to 3 workers
local merged_results = fan_in(result_channels)                 -- 3. fan in
for res in merged_results:range() do                           -- 4. results
  print(string.format("Получен результат: %d", res))
end

-- With the library: go.merge(table.unpack(result_channels)) is fan_in, and
-- go.pipeline(jobs, {fn = function(n) return n * n end, workers = 3}) is
-- fan-out and fan-in together.
