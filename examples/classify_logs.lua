-- classify_logs.lua — a batch job: classify log lines in parallel and
-- print them in their original order ("a log-line classifier that ...
-- classifies in parallel, prints in original order using a sequence
-- number").
--
-- The lines go to an ordered pool in chunks of 250 (one line is too little
-- work to be worth a trip to another goroutine); each worker classifies
-- its chunk with Lua patterns; the pool hands the chunks back in input
-- order, so the output is "seq  class  line" in input order, then a
-- count per class.
--
--   lua5.4 examples/classify_logs.lua [n]        (n generated lines, default 2000)
--   some_command | lua5.4 examples/classify_logs.lua -     (classify stdin)

local go = require "goro"

local CHUNK = 250
local CLASSES = {"error", "slow", "client-error", "warning", "debug", "ok"}

-- "2024-05-01T12:00:07Z ERROR billing POST /invoices/12 503 87ms"
local function classify(line)
  local level, status, ms = line:match("^%S+%s+(%u+)%s+%S+%s+%u+%s+%S+%s+(%d+)%s+(%d+)ms")
  if not level then return "unparsed" end
  status, ms = tonumber(status), tonumber(ms)
  if level == "ERROR" or status >= 500 then return "error" end
  if ms >= 1000 then return "slow" end
  if status >= 400 then return "client-error" end
  if level == "WARN" then return "warning" end
  if level == "DEBUG" then return "debug" end
  return "ok"
end

-- A pool job: {first = seq of the first line, lines...} -> the classes.
local function classify_chunk(chunk)
  local out = {}
  for j = 1, #chunk do out[j] = classify(chunk[j]) end
  return out
end

-- The input: stdin with "-", else n lines made up by a seeded generator.
local function generated(n)
  local seed = 42
  local function rand(k) -- a small LCG: the same lines on every run
    seed = (seed * 1103515245 + 12345) % 2147483648
    return (seed >> 16) % k + 1
  end
  local levels = {"INFO", "INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR"}
  local services = {"api", "auth", "billing", "search"}
  local methods = {"GET", "GET", "POST", "PUT", "DELETE"}
  local paths = {"/users/%d", "/invoices/%d", "/search?q=%d", "/login", "/health"}
  local statuses = {200, 200, 200, 201, 204, 304, 400, 404, 404, 500, 503}
  local lines = {}
  for i = 1, n do
    local t = i * 3
    lines[i] = string.format("2024-05-01T%02d:%02d:%02dZ %s %s %s %s %d %dms",
      12 + t // 3600 % 12, t // 60 % 60, t % 60, levels[rand(#levels)],
      services[rand(#services)], methods[rand(#methods)],
      paths[rand(#paths)]:format(rand(999)), statuses[rand(#statuses)],
      rand(10) == 1 and 1000 + rand(2000) or rand(300))
  end
  return lines
end

local lines = {}
if arg and arg[1] == "-" then
  for line in io.lines() do lines[#lines + 1] = line end
else
  lines = generated(tonumber(arg and arg[1]) or 2000)
end

local pool = go.pool{fn = classify_chunk, ordered = true}
go(function() -- producer: chunks of lines, in order
  for first = 1, #lines, CHUNK do
    pool:submit(table.move(lines, first, math.min(first + CHUNK - 1, #lines), 1, {}))
  end
  pool:close()
end)

local counts, seq = {}, 0
for _, classes, err in pool:results() do -- chunk results, in input order
  if err then error(err) end
  for _, class in ipairs(classes) do
    seq = seq + 1
    counts[class] = (counts[class] or 0) + 1
    print(string.format("%6d  %-12s  %s", seq, class, lines[seq]))
  end
end

local summary = {}
for _, class in ipairs(CLASSES) do
  summary[#summary + 1] = string.format("%s=%d", class, counts[class] or 0)
end
if counts.unparsed then summary[#summary + 1] = "unparsed=" .. counts.unparsed end
print(string.format("%d lines: %s", seq, table.concat(summary, " ")))
