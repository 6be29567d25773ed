-- run.lua — the benchmark driver, run by bench/run.sh with plain lua5.4.
--
-- Runs every workload of bench/workloads.lua in a fresh process, BENCH_RUNS
-- (default 5) times per GOMAXPROCS value of BENCH_PROCS, and the Go versions
-- (bench/go/workloads.go, built by run.sh into $BENCH_GO) beside them;
-- prints one table per GOMAXPROCS value (median, min-max, unit, target,
-- PASS/MISS, Go's median, goro vs Go), the scaling across BENCH_PROCS, and
-- writes the same report to bench/RESULTS.md.
--
-- BENCH_SMOKE=1: every workload once at 1% size; exits 1 if one fails.
-- BENCH_FULL=1: every workload at the size the issue defines (see SCALE).
-- BENCH_SCALE=x: multiplies every size (after SCALE).
-- BENCH_ONLY="W2 W4": only those workloads.
-- BENCH_LOAD=n: run.sh runs n CPU hogs beside every run; the report says
-- so and goes to bench/RESULTS-load.md (RESULTS.md keeps the quiet figures).

local LUA = os.getenv("LUA") or "lua5.4"
local GO = os.getenv("BENCH_GO") or ""
local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local SMOKE = (os.getenv("BENCH_SMOKE") or "") ~= "" and os.getenv("BENCH_SMOKE") ~= "0"
local FULL = (os.getenv("BENCH_FULL") or "") ~= "" and os.getenv("BENCH_FULL") ~= "0"
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 5
local LOAD = tonumber(os.getenv("BENCH_LOAD") or "") or 0
local RESULTS = LOAD > 0 and "RESULTS-load.md" or "RESULTS.md"
local XSCALE = tonumber(os.getenv("BENCH_SCALE") or "") or 1
local TIMEOUT = tonumber(os.getenv("BENCH_TIMEOUT") or "") or (SMOKE and 20 or 120) -- s per run
-- After BUDGET seconds, the remaining figures get one run each, so that
-- even BENCH_PROCS="1 2 4 8" on a slow build stays within 10 minutes.
local BUDGET = tonumber(os.getenv("BENCH_BUDGET") or "") or 480
if RUNS < 1 then RUNS = 1 end

-- The workloads, in table order. better: "low" (time, memory) or "high".
local WL = {
  {id = "W1", what = "spawn 100 000, each sends once", unit = "µs/goroutine",
   target = 6, better = "low"},
  {id = "W2", what = "ping-pong, 200 000 round trips", unit = "µs/round trip",
   target = 0.5, better = "low"},
  {id = "W2t", what = "W2 with the execution trace on", unit = "× W2 (paired runs)",
   target = 1.2, better = "low", base = "W2", ratio = "over", nogo = true},
  {id = "W3", what = "worker pool 4, 1 M jobs", unit = "M jobs/s",
   target = 4, better = "high"},
  {id = "W4", what = "primes < 3 M on 2 goroutines", unit = "× plain lua5.4",
   target = 1.9, better = "high", base = "W4base"},
  {id = "W5", what = "100 000 blocked goroutines", unit = "KiB RSS/goroutine",
   target = 8, better = "low"},
  {id = "W6", what = "select over 4 producers, 1 M", unit = "M values/s",
   target = 2, better = "high"},
  {id = "W7", what = "transfer a 10-field table", unit = "µs/value",
   target = 1, better = "low"},
  {id = "W7s", what = "transfer a 1 KB string", unit = "µs/value",
   better = "low"},
  {id = "W8", what = "spawn+finish 1 M short goroutines", unit = "µs/goroutine",
   target = 0.5, better = "low"},
  {id = "W9", what = "main receives unbuffered, 100 000", unit = "µs/receive",
   target = 1, better = "low"},
  {id = "W10", what = "main select over 2, 200 000", unit = "µs/select",
   target = 1.5, better = "low"},
  {id = "W11", what = "start latency p99, 5 000 spawns", unit = "µs",
   target = 100, better = "low"},
}

-- BENCH_ONLY="W2 W4": only those workloads (a partial report).
do
  local only = {}
  for id in (os.getenv("BENCH_ONLY") or ""):gmatch("W%w+") do only[id] = true end
  if next(only) then
    local keep = {}
    for _, w in ipairs(WL) do if only[w.id] then keep[#keep + 1] = w end end
    WL = keep
  end
end

-- Default sizes, as a fraction of the issue's definition, where a workload
-- is too slow to run 5 times within the 10-minute budget on 2 cores (with
-- the reason, printed in the report). Empty: every workload at full size.
local SCALE = {}
local SCALE_WHY = {}

local function scale_of(id)
  if SMOKE then return 0.01 * XSCALE end
  return (FULL and 1 or (SCALE[id] or 1)) * XSCALE
end

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function readfile(p)
  local f = io.open(p)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function cmd_out(c)
  local f = io.popen(c .. " 2>/dev/null")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- CPU accounting, to tell how much of the machine other processes took while
-- we measured: /proc/stat's busy ticks minus those of our children (cutime
-- and cstime count every waited-for descendant).
local function cpu_snap()
  local st = readfile("/proc/stat") or ""
  local f = {}
  for n in (st:match("^cpu%s+([%d%s]+)\n") or ""):gmatch("%d+") do f[#f + 1] = tonumber(n) end
  local ps = readfile("/proc/self/stat") or ""
  local rest = ps:match("%) (.*)$") or ""
  local g = {}
  for x in rest:gmatch("%S+") do g[#g + 1] = x end -- g[1] is field 3
  local mine = (tonumber(g[12]) or 0) + (tonumber(g[13]) or 0) -- utime, stime
             + (tonumber(g[14]) or 0) + (tonumber(g[15]) or 0) -- cutime, cstime
  local total = 0
  for i = 1, math.min(#f, 8) do total = total + f[i] end
  local idle = (f[4] or 0) + (f[5] or 0)
  return {busy = total - idle - (f[8] or 0), steal = f[8] or 0, total = total, mine = mine}
end

-- Cores' worth of CPU used by others (and stolen by the hypervisor) between
-- two snapshots, given the number of CPUs.
local function other_load(a, b, ncpu)
  local wall = (b.total - a.total) / ncpu
  if wall <= 0 then return 0, 0 end
  local other = ((b.busy - a.busy) - (b.mine - a.mine)) / wall
  return math.max(0, other), (b.steal - a.steal) / wall
end

local have_timeout = os.execute("command -v timeout >/dev/null 2>&1")

-- Runs one workload once; returns the table of RESULT figures, PROCS, or
-- nil and the output.
local function run_one(prog, id, scale, procs)
  local c = {}
  if procs then c[#c + 1] = "GOMAXPROCS=" .. procs end
  if have_timeout then c[#c + 1] = "timeout " .. TIMEOUT end
  c[#c + 1] = prog
  c[#c + 1] = id
  c[#c + 1] = string.format("%.6g", scale)
  local f = assert(io.popen(table.concat(c, " ") .. " 2>&1"))
  local out = f:read("a")
  local ok, how, code = f:close()
  local res, p = {}, nil
  for k, v in out:gmatch("RESULT (%S+) (%S+)") do res[k] = tonumber(v) end
  p = tonumber(out:match("PROCS (%d+)"))
  if not ok or not res[id] then
    return nil, string.format("%s (%s %s)", out, tostring(how), tostring(code))
  end
  return res[id], p
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function fmt(v)
  if v == nil then return "—" end
  local a = math.abs(v)
  if a >= 100 then return string.format("%.0f", v) end
  if a >= 10 then return string.format("%.1f", v) end
  if a >= 1 then return string.format("%.2f", v) end
  return string.format("%.3f", v)
end

local function status(w, m)
  if m == nil then return "FAIL" end
  if not w.target then return "—" end
  if w.better == "low" then return m <= w.target and "PASS" or "MISS" end
  return m >= w.target and "PASS" or "MISS"
end

local function target_s(w)
  if not w.target then return "—" end
  return (w.better == "low" and "≤ " or "≥ ") .. fmt(w.target)
end

local function vs_go(w, m, g)
  if not m or not g or g == 0 or m == 0 then return "—" end
  if w.id == "W4" then return string.format("%.2f× Go's speedup", m / g) end
  if w.id == "W5" then return string.format("%.1f× Go's RSS", m / g) end
  local r = w.better == "low" and m / g or g / m -- > 1: goro is slower
  if r >= 1 then return string.format("%.1f× slower", r) end
  return string.format("%.1f× faster", 1 / r)
end

-- ---------------------------------------------------------------- machine
local cpuinfo = readfile("/proc/cpuinfo") or ""
local cpu_model = cpuinfo:match("model name%s*:%s*([^\n]+)") or "unknown CPU"
local cores = 0
for _ in cpuinfo:gmatch("\nprocessor%s*:") do cores = cores + 1 end
if cpuinfo:match("^processor%s*:") then cores = cores + 1 end
local nproc = tonumber(cmd_out("nproc") or "") or cores
local loadavg = (readfile("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)") or "?"
local kernel = (cmd_out("uname -sr") or ""):gsub("%s+$", "")
local luav = (cmd_out(LUA .. " -v") or ""):match("Lua %S+") or LUA
local rev = (cmd_out("git -C " .. sh_quote(here) .. " rev-parse --short HEAD") or ""):gsub("%s+$", "")
local dirty = (cmd_out("git -C " .. sh_quote(here) .. " status --porcelain -- ../core ../lua") or "") ~= ""
local gov = GO ~= "" and (cmd_out("go version") or ""):gsub("%s+$", "") or nil

local procs_list = {}
for p in (os.getenv("BENCH_PROCS") or ""):gmatch("%d+") do procs_list[#procs_list + 1] = p end
local default_procs = #procs_list == 0
if default_procs then procs_list = {false} end

local t_start = os.time()
local lua_prog = sh_quote(LUA) .. " " .. sh_quote(here .. "/workloads.lua")
local go_prog = GO ~= "" and sh_quote(GO) or nil

-- ------------------------------------------------------------------ smoke
if SMOKE then
  io.write("goro bench smoke: every workload once at 1% size\n")
  local failed = 0
  local ids = {"W4base"}
  for _, w in ipairs(WL) do ids[#ids + 1] = w.id end
  for _, id in ipairs(ids) do
    local t0 = os.time()
    local v, info = run_one(lua_prog, id, scale_of(id), nil)
    if v then
      io.write(string.format("  %-7s ok   %s\n", id, fmt(v)))
    else
      failed = failed + 1
      io.write(string.format("  %-7s FAIL\n%s\n", id, info))
    end
    io.flush()
    if os.time() - t0 > 20 then io.write("  (slow: " .. (os.time() - t0) .. " s)\n") end
  end
  io.write(string.format("smoke: %d of %d failed, %d s\n", failed, #ids, os.time() - t_start))
  os.exit(failed == 0 and 0 or 1)
end

-- ------------------------------------------------------------------ full
local lines = {} -- the report, also written to RESULTS.md
local function out(s)
  io.write(s, "\n")
  io.flush()
  lines[#lines + 1] = s
end
local function progress(s)
  io.stderr:write(s)
  io.stderr:flush()
end

out("# goro benchmarks")
out("")
out(string.format("- date: %s", os.date("!%Y-%m-%d %H:%M UTC")))
out(string.format("- machine: %s, %d cores (nproc %d), %s, load average at start %s",
                  cpu_model, cores, nproc, kernel, loadavg))
out(string.format("- %s%s", luav, gov and ("; " .. gov) or "; Go: not installed (no Go column)"))
out(string.format("- goro: commit %s%s; module %s (copied at start)", rev ~= "" and rev or "?",
                  dirty and " + uncommitted changes in core/ or lua/" or "",
                  os.getenv("BENCH_MODULE") or "from LUA_CPATH"))
out(string.format("- runs: %d per figure, each in a fresh process; median and min–max", RUNS))
local scaled = {}
for _, w in ipairs(WL) do
  local s = (FULL and 1 or (SCALE[w.id] or 1))
  if s ~= 1 then
    scaled[#scaled + 1] = string.format("%s at %g× the issue's size (%s)", w.id, s,
                                        SCALE_WHY[w.id] or "")
  end
end
if XSCALE ~= 1 then
  scaled[#scaled + 1] = string.format("every size × %g (BENCH_SCALE)", XSCALE)
end
if #scaled > 0 then
  out("- SCALED: " .. table.concat(scaled, "; ") .. ". BENCH_FULL=1 runs the reference sizes.")
else
  out("- sizes: as the issue defines them (no scaling)")
end
out("- targets are defined for 2 cores / GOMAXPROCS 2 (issue #6)")
if LOAD > 0 then
  out(string.format("- UNDER LOAD: %d CPU hogs (busy shell loops) ran beside every run "
                    .. "(BENCH_LOAD=%d); compare with RESULTS.md, the quiet figures", LOAD, LOAD))
end

local over_budget = false

-- Runs prog's workload id `runs` times; with base (another workload id), each
-- run of id follows a run of base, and the figure is base's figure over id's
-- (W4: plain lua5.4's seconds over goro's), or id's over base's with over
-- (W2t: traced W2 over W2): the same machine state for both halves of the
-- ratio, as this VM's speed drifts by 10% over minutes. Returns the
-- figures, PROCS, the other load and base's median.
local function collect(prog, id, procs, label, base, over)
  local vals, bvals, p, err = {}, {}, nil, nil
  local runs = RUNS
  if os.time() - t_start > BUDGET then
    runs = 1
    over_budget = true
  end
  local snap0 = cpu_snap()
  progress(string.format("  %-4s %-7s", label, id))
  for _ = 1, runs do
    local b, v, info
    if base then
      b, info = run_one(prog, base, scale_of(id), procs)
      if b then v, info = run_one(prog, id, scale_of(id), procs) end
    else
      v, info = run_one(prog, id, scale_of(id), procs)
    end
    if not v then
      err = info
      progress(" FAIL\n")
      io.stderr:write(info, "\n")
      break
    end
    p = info
    if base then
      bvals[#bvals + 1] = b
      v = over and v / b or b / v
    end
    vals[#vals + 1] = v
    progress(" " .. fmt(v))
  end
  local other, steal = other_load(snap0, cpu_snap(), nproc)
  progress(string.format("   (other load %.2f cores%s)\n", other,
                         steal > 0.05 and string.format(", steal %.2f", steal) or ""))
  return (not err) and vals or nil, p, other, median(bvals)
end

local summary = {} -- summary[procs_label][id] = {goro=, go=}
local plabels = {}
local any_fail = false
local noisy = false

for _, procs in ipairs(procs_list) do
  local plabel
  progress(string.format("GOMAXPROCS=%s:\n", procs or "default"))
  local rows = {}
  local eff_procs, base_med, gobase_med
  for _, w in ipairs(WL) do
    -- W4: each run of the 2 goroutines follows a run of the same prime
    -- count in plain lua5.4 (W4base, no goro; Go: on one goroutine)
    local base, over = w.base, w.ratio == "over"
    local vals, p, other, bmed = collect(lua_prog, w.id,
                                         procs or nil, "goro", base, over)
    eff_procs = eff_procs or p
    local gvals, gbmed
    if go_prog and not w.nogo then
      local _
      gvals, _, _, gbmed = collect(go_prog, w.id, procs or nil, "go", base, over)
    end
    if w.id == "W4" then base_med, gobase_med = bmed, gbmed end
    rows[#rows + 1] = {w = w, vals = vals, gvals = gvals, other = other}
  end
  plabel = procs or (tostring(eff_procs or "?") .. " (default)")
  plabels[#plabels + 1] = plabel
  summary[plabel] = {}
  out("")
  out(string.format("## GOMAXPROCS %s", plabel))
  out("")
  if go_prog then
    out("| workload | | goro median | min–max | unit | target | | Go median | goro vs Go | other load |")
    out("| --- | --- | ---: | --- | --- | --- | --- | ---: | --- | ---: |")
  else
    out("| workload | | goro median | min–max | unit | target | | other load |")
    out("| --- | --- | ---: | --- | --- | --- | --- | ---: |")
  end
  for _, r in ipairs(rows) do
    local w = r.w
    local m = r.vals and median(r.vals)
    local lo, hi
    if r.vals then
      lo, hi = math.huge, -math.huge
      for _, v in ipairs(r.vals) do lo = math.min(lo, v); hi = math.max(hi, v) end
    end
    local g = r.gvals and median(r.gvals)
    local st = status(w, m)
    if st == "FAIL" then any_fail = true end
    summary[plabel][w.id] = {goro = m, go = g}
    local cells = {w.id, w.what, fmt(m), r.vals and (fmt(lo) .. "–" .. fmt(hi)) or "failed",
                   w.unit, target_s(w), st}
    if go_prog then
      cells[#cells + 1] = fmt(g)
      cells[#cells + 1] = vs_go(w, m, g)
    end
    cells[#cells + 1] = string.format("%.2f", r.other or 0)
    if (r.other or 0) > 0.25 then noisy = true end
    out("| " .. table.concat(cells, " | ") .. " |")
  end
  out("")
  out("other load: cores' worth of CPU that other processes (or the hypervisor) used while "
      .. "goro's runs of that row ran.")
  out(string.format("W4: each 2-goroutine run follows a run of the same count in plain lua5.4 "
                    .. "(median %s s, CPU time)%s; the figure is their ratio.", fmt(base_med),
                    gobase_med and string.format(" / Go on one goroutine (median %s s)",
                                                 fmt(gobase_med)) or ""))
end

if #plabels > 1 then
  out("")
  out("## Scaling (medians by GOMAXPROCS" .. (go_prog and "; goro / Go" or "") .. ")")
  out("")
  local head = {"workload", "unit"}
  local sep = {"---", "---"}
  for _, p in ipairs(plabels) do head[#head + 1] = "P=" .. p; sep[#sep + 1] = "---:" end
  out("| " .. table.concat(head, " | ") .. " |")
  out("| " .. table.concat(sep, " | ") .. " |")
  for _, w in ipairs(WL) do
    local cells = {w.id, w.unit}
    for _, p in ipairs(plabels) do
      local s = summary[p][w.id]
      cells[#cells + 1] = go_prog and (fmt(s.goro) .. " / " .. fmt(s.go)) or fmt(s.goro)
    end
    out("| " .. table.concat(cells, " | ") .. " |")
  end
end

if over_budget then
  out("")
  out(string.format("NOTE: past the %d s budget, later figures are from a single run.", BUDGET))
end
if noisy and LOAD == 0 then
  out("")
  out("WARNING: other processes used more than a quarter of a core during some rows: "
      .. "those figures are not reliable; rerun on a quiet machine.")
end
out("")
out(string.format("Total bench time: %d s.", os.time() - t_start))

local partial = (os.getenv("BENCH_ONLY") or "") ~= ""
local f = not partial and io.open(here .. "/" .. RESULTS, "w")
if partial then
  io.write("BENCH_ONLY: a partial run; bench/", RESULTS, " left as it was\n")
elseif f then
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  io.write("written: ", here, "/", RESULTS, "\n")
else
  io.stderr:write("cannot write ", here, "/", RESULTS, "\n")
end
-- Missed targets are the bench's findings, not its failure: exit 0 unless
-- a workload failed (crashed, wrong checksum, timed out).
if any_fail then
  io.stderr:write("bench: a workload FAILED (see above)\n")
  os.exit(1)
end
