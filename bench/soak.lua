-- soak.lua — does a goroutine leave nothing behind? (issue #13; make soak)
--
--   lua5.4 bench/soak.lua [big|load|waves ...]     SOAK_SCALE=0.1 for a short run
--
-- Each test prints RSS per wave and one TAP line: "ok" when memory did not
-- grow past its bound, "not ok" with the figures otherwise; "N passed, N
-- failed" last. Not part of `make test`: the full run takes minutes and
-- its bounds are about the process, not about one behaviour.
--
--   big    8 goroutines each build 2 M small tables and finish: RSS 1 s
--          later is at most 150 MB (scaled) and a quarter of the peak's growth.
--   load   spawn load(src) with the same source, 1 M times in 10 waves
--          (1000 in flight):
--          RSS after the last wave at most 1.1x (+ 2 MB) after the first
--          (or second, the larger).
--   waves  100 000 goroutines blocked on a channel, then released, 6 waves:
--          the peak RSS of wave 5 at most 1.1x that of wave 1.
local go = require "goro"

local scale = tonumber(os.getenv("SOAK_SCALE") or "1")
local function size(n, min) return math.max(min or 1, math.floor(n * scale + 0.5)) end

local function status(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)")) or 0
end
local function rss_mb() return status("VmRSS") / 1024 end

local pass, fail, n = 0, 0, 0
local function check(name, ok, detail)
  n = n + 1
  if ok then pass = pass + 1 else fail = fail + 1 end
  print(string.format("%s %d - %s: %s", ok and "ok" or "not ok", n, name, detail))
end

local function settle()
  collectgarbage(); collectgarbage()
end

local T = {}

function T.big()
  local N, G = size(2000000, 10000), 8
  settle()
  local before = rss_mb()
  local wg = go.waitgroup()
  local peak = before
  local done = go.chan(G)
  for _ = 1, G do
    wg:add(1)
    go(function(n, wg, done)
      local t = {}
      for i = 1, n do t[i] = {i} end
      local f = io.open("/proc/self/status")
      local s = f:read("a")
      f:close()
      done:send(tonumber(s:match("VmRSS:%s*(%d+)")) / 1024)
      wg:done()
    end, N, wg, done)
  end
  wg:wait()
  for _ = 1, G do peak = math.max(peak, (done:recv())) end
  go.sleep(1)
  local after = rss_mb()
  local bound = math.max(before + 150 * scale, 150 * math.min(scale, 1))
  print(string.format("# big: RSS before %.1f MB, peak seen %.1f MB, 1 s after %.1f MB",
    before, peak, after))
  check("big goroutines' memory goes back", after <= bound and after - before <= 0.25 * (peak - before),
    string.format("%.1f MB 1 s after (bound %.1f MB)", after, bound))
end

function T.load()
  local waves, per = 10, size(100000, 2000)
  local src = "local ch = ... ; ch:send(1)"
  local window = 1000 -- goroutines in flight: RSS follows leaks, not a burst
  local ch = go.chan(window)
  local first, last
  for w = 1, waves do
    local t0 = go.now()
    for i = 1, per do
      go(load(src), ch)
      if i > window then ch:recv() end
    end
    for _ = 1, math.min(per, window) do ch:recv() end
    go.wait()
    settle()
    local r = rss_mb()
    print(string.format("# load: wave %d: %d spawns, RSS %.1f MB, %.2f us per spawn",
      w, w * per, r, (go.now() - t0) / per * 1e6))
    if w <= 2 then first = math.max(first or 0, r) end
    last = r
  end
  -- the reference: the larger of waves 1 and 2 (at SOAK_SCALE < 1 the
  -- first wave is too short to reach the steady state); 2 MB of slack for
  -- the main state's own malloc heap, which short runs see
  check("load() and spawn stays flat", last <= 1.1 * first + 2,
    string.format("RSS %.1f MB after waves 1-2, %.1f MB after wave %d (%.2fx)", first, last, waves, last / first))
end

function T.waves()
  local waves, N = 6, size(100000, 2000)
  local peaks = {}
  for w = 1, waves do
    local ch = go.chan()
    for _ = 1, N do go(function(c) c:recv() end, ch) end
    local t0 = go.now()
    while go.stats().waiting < N do
      assert(go.now() - t0 < 120, "soak: goroutines did not all block")
      go.sleep(0.005)
    end
    peaks[w] = rss_mb()
    ch:close()
    go.wait()
    settle()
    print(string.format("# waves: wave %d: %d blocked, RSS %.1f MB, after release %.1f MB",
      w, N, peaks[w], rss_mb()))
  end
  check("blocked-then-released waves stay flat", peaks[5] <= 1.1 * peaks[1],
    string.format("peak %.1f MB in wave 1, %.1f MB in wave 5 (%.2fx)", peaks[1], peaks[5], peaks[5] / peaks[1]))
end

local which = #arg > 0 and arg or {"big", "load", "waves"}
for _, name in ipairs(which) do
  local f = T[name] or error("soak: unknown test " .. name .. " (big, load, waves)")
  f()
end
print(string.format("%d passed, %d failed", pass, fail))
os.exit(fail == 0 and 0 or 1)
