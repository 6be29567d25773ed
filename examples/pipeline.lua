-- pipeline.lua — "Concurrency patterns on Golang: Pipeline": gen -> sq.
-- Each stage is a goroutine that reads its input channel until it is
-- closed, and closes its output when done. Prints 4, 9, 16.
--
--   lua5.4 examples/pipeline.lua

local go = require "goro"

-- stage 1: a generator
local function gen(...)
  local out = go.chan()
  go(function(...)
    for _, n in ipairs({...}) do out:send(n) end
    out:close()
  end, ...)
  return out
end

-- stage 2: squares
local function sq(input)
  local out = go.chan()
  go(function()
    for n in input:range() do out:send(n * n) end
    out:close()
  end)
  return out
end

for result in sq(gen(2, 3, 4)):range() do
  print(result) -- 4, 9, 16
end

-- The same pipeline with the library (go.generate is gen; a stage is a
-- function, or {fn = f, workers = n} to fan it out):
--   for v in go.pipeline(go.generate(2, 3, 4), function(n) return n * n end):range() do
--     print(v)
--   end
