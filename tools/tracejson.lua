-- tracejson.lua — reads a goro execution trace (Chrome trace-event JSON,
-- as GORO_TRACE writes it) and checks it. Plain Lua 5.4, no modules:
-- shared by tools/trace_html.lua and spec/trace_spec.lua.
--
--   local T = dofile "tools/tracejson.lua"
--   local trace = T.read(path)          -- the decoded JSON object
--   local problems = T.check(trace)     -- {} when the trace is consistent
local T = {}

-- A small JSON decoder (objects, arrays, strings with escapes, numbers,
-- true/false/null); errors name the offset.
function T.decode(s)
  local pos = 1
  local function fail(what) error(("tracejson: %s at byte %d"):format(what, pos), 0) end
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    local out, i = {}, pos + 1
    while true do
      local j = s:find('["\\]', i)
      if not j then fail("unterminated string") end
      out[#out + 1] = s:sub(i, j - 1)
      if s:sub(j, j) == '"' then pos = j + 1; break end
      local c = s:sub(j + 1, j + 1)
      local map = {b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}
      if c == "u" then
        out[#out + 1] = utf8.char(tonumber(s:sub(j + 2, j + 5), 16))
        i = j + 6
      else
        out[#out + 1] = map[c] or c
        i = j + 2
      end
    end
    return table.concat(out)
  end
  -- the items of an object or array up to `close`, after its opening bracket
  local function seq(close, item)
    ws()
    if s:sub(pos, pos) == close then pos = pos + 1; return end
    while true do
      item()
      ws()
      local d = s:sub(pos, pos)
      pos = pos + 1
      if d == close then return end
      if d ~= "," then fail("expected ',' or '" .. close .. "'") end
    end
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      seq("}", function()
        ws()
        if s:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value()
      end)
      return t
    elseif c == "[" then
      local t = {}
      pos = pos + 1
      seq("]", function() t[#t + 1] = value() end)
      return t
    elseif c == '"' then
      return str()
    elseif s:find("^true", pos) then pos = pos + 4; return true
    elseif s:find("^false", pos) then pos = pos + 5; return false
    elseif s:find("^null", pos) then pos = pos + 4; return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then fail("unexpected character '" .. c .. "'") end
      pos = pos + #num
      return tonumber(num)
    end
  end
  local v = value()
  ws()
  if pos <= #s then fail("trailing characters") end
  return v
end

function T.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return T.decode(s)
end

-- The checks of issue #16: every slice closed (B/E pairs, X with a
-- duration), no two slices overlapping on one track, every unblock of a
-- goroutine after a block of it. Returns a list of problems (strings).
function T.check(trace)
  local problems = {}
  local function bad(fmt, ...)
    if #problems < 20 then problems[#problems + 1] = fmt:format(...) end
  end
  local ev = trace.traceEvents
  if type(ev) ~= "table" then return {"no traceEvents array"} end
  local slices, open, blocks, unblocks = {}, {}, {}, {}
  for i, e in ipairs(ev) do
    if type(e.ph) ~= "string" then bad("event %d has no ph", i) end
    if e.ph ~= "M" and type(e.ts) ~= "number" then bad("event %d (%s) has no ts", i, e.ph) end
    local tid = e.tid or 0
    if e.ph == "X" then
      if type(e.dur) ~= "number" or e.dur < 0 then bad("slice %d has no duration", i) end
      slices[tid] = slices[tid] or {}
      table.insert(slices[tid], e)
    elseif e.ph == "B" then
      open[tid] = open[tid] or {}
      table.insert(open[tid], e)
    elseif e.ph == "E" then
      if not open[tid] or #open[tid] == 0 then bad("E without B on track %s", tid)
      else table.remove(open[tid]) end
    elseif e.ph == "i" and e.args and e.args.g then
      local list = e.name == "block" and blocks or e.name == "unblock" and unblocks
      if list then
        list[e.args.g] = list[e.args.g] or {}
        table.insert(list[e.args.g], e.ts)
      end
    end
  end
  for tid, l in pairs(open) do
    if #l > 0 then bad("%d slices never closed on track %s", #l, tid) end
  end
  for tid, l in pairs(slices) do
    table.sort(l, function(a, b) return a.ts < b.ts end)
    for k = 2, #l do
      local prev, e = l[k - 1], l[k]
      if e.ts < prev.ts + prev.dur - 0.002 then
        bad("slices overlap on track %s: %s at %.3f (+%.3f) and %s at %.3f", tid, prev.name,
          prev.ts, prev.dur, e.name, e.ts)
      end
    end
  end
  for g, l in pairs(unblocks) do
    local b = blocks[g] or {}
    table.sort(l)
    table.sort(b)
    for k, ts in ipairs(l) do
      if not b[k] or b[k] > ts + 0.002 then
        bad("goroutine %s unblocked at %.3f before its block #%d", g, ts, k)
        break
      end
    end
  end
  return problems
end

-- Summary figures: slices per track, goroutines seen, time span (us).
function T.summary(trace)
  local s = {tracks = {}, goroutines = {}, t0 = math.huge, t1 = -math.huge, slices = 0}
  for _, e in ipairs(trace.traceEvents) do
    if e.ph == "X" then
      s.slices = s.slices + 1
      s.tracks[e.tid] = (s.tracks[e.tid] or 0) + 1
      if e.args and e.args.g then s.goroutines[e.args.g] = true end
      s.t0 = math.min(s.t0, e.ts)
      s.t1 = math.max(s.t1, e.ts + e.dur)
    end
  end
  return s
end

return T
