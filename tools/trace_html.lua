-- trace_html.lua — turns a goro execution trace (GORO_TRACE=out.json) into
-- one self-contained HTML file with an SVG timeline: the goroutines on the
-- Ps over time (coloured by goroutine), then one row per goroutine with its
-- running, runnable and blocked stretches (hover for the reason), a legend
-- and an axis in ms. Plain Lua 5.4; nothing is fetched from anywhere. Exits
-- 1 (after drawing) when the trace fails tools/tracejson.lua's checks.
--
--   lua5.4 tools/trace_html.lua out.json [out.html]
local here = (arg and arg[0] or ""):match("^(.*)/") or "."
local T = dofile(here .. "/tracejson.lua")

local inpath, outpath = arg[1], arg[2]
if not inpath then
  io.stderr:write("usage: lua5.4 tools/trace_html.lua trace.json [out.html]\n")
  os.exit(2)
end
outpath = outpath or inpath:gsub("%.json$", "") .. ".html"
local trace = T.read(inpath)
local problems = T.check(trace)
for _, m in ipairs(problems) do io.stderr:write("trace_html: ", m, "\n") end
local ev = trace.traceEvents

-- tracks and their names
local names, order = {}, {}
for _, e in ipairs(ev) do
  if e.ph == "M" and e.name == "thread_name" then names[e.tid] = e.args.name end
  if e.ph == "M" and e.name == "thread_sort_index" then order[e.tid] = e.args.sort_index end
end

local t0, t1 = math.huge, -math.huge
local slices, used = {}, {}
local gs, gfn = {}, {}        -- goroutine id -> {runs, blocks, unblocks}
local function G(id)
  local g = gs[id]
  if not g then g = {id = id, runs = {}, blocks = {}, unblocks = {}}; gs[id] = g end
  return g
end
for _, e in ipairs(ev) do
  if e.ph == "X" then
    t0 = math.min(t0, e.ts); t1 = math.max(t1, e.ts + e.dur)
    slices[#slices + 1] = e
    used[e.tid] = true
    if e.args and e.args.g then
      local g = G(e.args.g)
      g.runs[#g.runs + 1] = e
      gfn[e.args.g] = e.args.fn
    end
  elseif e.ph == "i" and e.args and e.args.g and e.args.g > 0 then
    if e.name == "block" then table.insert(G(e.args.g).blocks, e)
    elseif e.name == "unblock" then table.insert(G(e.args.g).unblocks, e)
    elseif e.name == "spawn" then G(e.args.g).spawn = e.ts; gfn[e.args.g] = gfn[e.args.g] or e.args.fn end
    t0 = math.min(t0, e.ts); t1 = math.max(t1, e.ts)
  end
end
if t0 == math.huge then t0, t1 = 0, 1 end
if t1 <= t0 then t1 = t0 + 1 end

local tracks = {}
for tid in pairs(used) do tracks[#tracks + 1] = tid end
table.sort(tracks, function(a, b) return (order[a] or a) < (order[b] or b) end)

local glist = {}
for id in pairs(gs) do glist[#glist + 1] = id end
table.sort(glist)
local MAXG = 40
local shown = {}
for i = 1, math.min(#glist, MAXG) do shown[#shown + 1] = glist[i] end

-- colours: one hue per goroutine (golden angle), grey for the main state
local function colour(g, light)
  if not g or g == 0 then return light and "#d8dee9" or "#7b8794" end
  local h = (g * 137.508) % 360
  return ("hsl(%.0f,%d%%,%d%%)"):format(h, light and 70 or 62, light and 86 or 52)
end

local W, LEFT, RIGHT, ROW, GAP = 1320, 210, 20, 30, 4
local plotw = W - LEFT - RIGHT
local function x(ts) return LEFT + (ts - t0) / (t1 - t0) * plotw end
local function esc(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;")) end
local function ms(us) return us / 1000 end

local out = {}
local function add(...) for _, s in ipairs{...} do out[#out + 1] = s end end

local y = 70
local svg = {}
local function s(fmt, ...) svg[#svg + 1] = fmt:format(...) end

-- the axis
local span = ms(t1 - t0)
local step = 10 ^ math.floor(math.log(span / 8, 10))
for _, m in ipairs{1, 2, 5, 10} do if span / (step * m) <= 10 then step = step * m; break end end
local function axis(ytop, ybot)
  for k = 0, math.floor(span / step) do
    local xx = x(t0 + k * step * 1000)
    s('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>', xx, ytop, xx, ybot)
    s('<text x="%.1f" y="%d" class="tick">%s ms</text>', xx, ytop - 6, (("%g"):format(k * step)))
  end
end

-- section 1: Ps and threads
s('<text x="%d" y="%d" class="h">Goroutines on processors</text>', 12, y - 36)
local ytop = y
for _, tid in ipairs(tracks) do
  s('<text x="%d" y="%d" class="lbl">%s</text>', LEFT - 10, y + ROW / 2 + 5, esc(names[tid] or ("track " .. tid)))
  s('<rect x="%d" y="%d" width="%d" height="%d" class="lane"/>', LEFT, y, plotw, ROW)
  y = y + ROW + GAP
end
local rowof = {}
for i, tid in ipairs(tracks) do rowof[tid] = ytop + (i - 1) * (ROW + GAP) end
-- slices, merged when they would be under half a pixel apart
table.sort(slices, function(a, b) return a.ts < b.ts end)
local last = {}
local function flushrect(tid)
  local r = last[tid]
  if not r then return end
  local x1, x2 = x(r.ts), x(r.te)
  local g = r.g
  if not g then -- the main state's waits
    s('<rect x="%.2f" y="%d" width="%.2f" height="%d" class="blocked"><title>main state waits: %s, %.3f ms%s</title></rect>',
      x1, rowof[tid] + 6, math.max(x2 - x1, 0.8), ROW - 12, esc(r.name), ms(r.te - r.ts),
      r.n > 1 and (" (" .. r.n .. " waits)") or "")
  else
    s('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" class="run"><title>G%d %s, %.3f ms%s</title></rect>',
      x1, rowof[tid] + 2, math.max(x2 - x1, 0.8), ROW - 4, colour(g), g, esc(r.fn or r.name),
      ms(r.te - r.ts), r.n > 1 and (" (" .. r.n .. " runs)") or "")
  end
  last[tid] = nil
end
local px = (t1 - t0) / plotw
for _, e in ipairs(slices) do
  local g = e.args and e.args.g
  local r = last[e.tid]
  if r and r.g == g and e.ts - r.te < px * 0.5 then
    r.te = math.max(r.te, e.ts + e.dur); r.n = r.n + 1
  else
    flushrect(e.tid)
    last[e.tid] = {ts = e.ts, te = e.ts + e.dur, g = g, fn = e.args and e.args.fn, name = e.name, n = 1}
  end
end
for tid in pairs(last) do flushrect(tid) end
axis(ytop - 4, y - GAP)

-- section 2: one row per goroutine
y = y + 56
s('<text x="%d" y="%d" class="h">Goroutines over time</text>', 12, y - 36)
local ytop2 = y
local GROW = math.max(14, math.min(30, 300 // math.max(#shown, 1)))
for _, id in ipairs(shown) do
  local g = gs[id]
  s('<text x="%d" y="%d" class="lbl">G%d %s</text>', LEFT - 10, y + GROW / 2 + 4, id, esc((gfn[id] or ""):gsub("^.*/", "")))
  s('<rect x="%d" y="%d" width="%d" height="%d" class="lane"/>', LEFT, y, plotw, GROW)
  table.sort(g.blocks, function(a, b) return a.ts < b.ts end)
  table.sort(g.unblocks, function(a, b) return a.ts < b.ts end)
  table.sort(g.runs, function(a, b) return a.ts < b.ts end)
  -- blocked: from each block to the matching unblock (or the end)
  for k, b in ipairs(g.blocks) do
    local u = g.unblocks[k]
    local te = u and u.ts or t1
    s('<rect x="%.2f" y="%d" width="%.2f" height="%d" class="blocked"><title>G%d blocked: %s, %.3f ms%s</title></rect>',
      x(b.ts), y + 5, math.max(x(te) - x(b.ts), 0.8), GROW - 10, id, esc(b.args.reason or "?"), ms(te - b.ts),
      u and u.args.by and u.args.by > 0 and (" (woken by G" .. u.args.by .. ")") or "")
  end
  -- runnable: from an unblock (or spawn) to the next run
  local ri = 1
  local function runnable(from)
    while g.runs[ri] and g.runs[ri].ts < from do ri = ri + 1 end
    local r = g.runs[ri]
    if r and r.ts > from then
      s('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" class="ready"><title>G%d runnable, %.3f ms</title></rect>',
        x(from), y + 3, math.max(x(r.ts) - x(from), 0.5), GROW - 6, colour(id, true), id, ms(r.ts - from))
    end
  end
  local from = {}
  if g.spawn then from[#from + 1] = g.spawn end
  for _, u in ipairs(g.unblocks) do from[#from + 1] = u.ts end
  for _, r in ipairs(g.runs) do -- preempted or yielded: runnable again at once
    if r.args["end"] == "yielded" then from[#from + 1] = r.ts + r.dur + 1e-6 end
  end
  table.sort(from)
  for _, t in ipairs(from) do runnable(t) end
  local lastx = -1
  for _, r in ipairs(g.runs) do
    local x1, x2 = x(r.ts), x(r.ts + r.dur)
    if x2 - lastx >= 0.5 then
      s('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s"><title>G%d running on %s, %.3f ms</title></rect>',
        x1, y + 1, math.max(x2 - x1, 0.8), GROW - 2, colour(id), id, esc(names[r.tid] or r.tid), ms(r.dur))
      lastx = x2
    end
  end
  y = y + GROW + 2
end
if #glist > MAXG then
  s('<text x="%d" y="%d" class="lbl2">… and %d more goroutines</text>', LEFT, y + 14, #glist - MAXG)
  y = y + 20
end
axis(ytop2 - 4, y)

-- legend
y = y + 30
local lx = LEFT
local function key(fill, cls, label)
  s('<rect x="%d" y="%d" width="16" height="12" %s/>', lx, y, cls and ('class="' .. cls .. '"') or ('fill="' .. fill .. '"'))
  s('<text x="%d" y="%d" class="key">%s</text>', lx + 22, y + 11, esc(label))
  lx = lx + 34 + #label * 7
end
key(colour(shown[1] or 1), nil, "running (colour: goroutine)")
key(colour(shown[1] or 1, true), nil, "runnable (waiting for a P)")
key(nil, "blocked", "blocked (channel, select, sleep, lock)")
y = y + 24
lx = LEFT
local fns, ids = {}, {}
for _, id in ipairs(shown) do
  local f = gfn[id] or "?"
  if not ids[f] then ids[f] = {}; fns[#fns + 1] = f end
  table.insert(ids[f], "G" .. id)
end
for i = 1, math.min(#fns, 6) do
  local l = ids[fns[i]]
  key(colour(tonumber(l[1]:sub(2))), nil, ("%s (%s)"):format(fns[i]:gsub("^.*/", ""),
    #l > 4 and (l[1] .. "…" .. l[#l]) or table.concat(l, ", ")))
end
y = y + 30

local total = 0
for _, e in ipairs(slices) do total = total + e.dur end
add('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>goro trace: ', esc(inpath), '</title>\n<style>\n',
  'body{font:13px system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px 20px;color:#1f2933;background:#fff}',
  'h1{font-size:18px;margin:0 0 4px}p{margin:0 0 8px;color:#52606d}',
  '.h{font-weight:600;font-size:14px;fill:#1f2933}.lbl{text-anchor:end;font-size:12px;fill:#323f4b}',
  '.lbl2{font-size:12px;fill:#7b8794}.tick{font-size:11px;fill:#7b8794;text-anchor:middle}',
  '.grid{stroke:#e4e7eb;stroke-width:1}.lane{fill:#f5f7fa}.key{font-size:12px;fill:#323f4b}',
  '.blocked{fill:url(#hatch);stroke:#9aa5b1;stroke-width:0.5}.run{stroke:rgba(0,0,0,.15);stroke-width:.5}',
  '\n</style></head><body>\n',
  ('<h1>goro execution trace</h1><p>%s · %.1f ms · %d goroutines · %d runs on %d tracks · busy %.1f ms</p>\n')
    :format(esc(inpath:gsub("^.*/", "")), span, #glist, #slices, #tracks, ms(total)),
  ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">\n'):format(W, y, W, y),
  '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">',
  '<rect width="6" height="6" fill="#eef0f3"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9aa5b1" stroke-width="2"/></pattern></defs>\n',
  table.concat(svg, "\n"), '\n</svg>\n</body></html>\n')

local f = assert(io.open(outpath, "w"))
f:write(table.concat(out))
f:close()
print(("trace_html: %s (%d runs, %d goroutines, %.1f ms)"):format(outpath, #slices, #glist, span))
if #problems > 0 then os.exit(1) end -- drawn anyway, but the trace is not consistent
