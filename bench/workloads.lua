-- workloads.lua — the benchmark workloads W1..W8 of issue #6, one per run.
--
--   lua5.4 bench/workloads.lua W1|W2|W2t|W3|W4|W4base|W5|W6|W7|W7s|W8|W9|W10|W11 [scale]
--
-- Runs one workload once in this (fresh) process and prints
--   RESULT <name> <figure>      the figure, in the unit of bench/run.lua's table
--   PROCS <n>                   GOMAXPROCS the runtime ran with
-- and exits non-zero (an error) when the workload's checksum is wrong.
-- scale (default 1, or $BENCH_SCALE) multiplies every iteration count: 1 is
-- the size the issue defines, 0.01 the CI smoke size.
--
-- Where the issue does not say who drives a workload, the actors are
-- goroutines, as in the Go versions (bench/go/workloads.go), where main is a
-- goroutine too: the main Lua state is a plain thread outside the scheduler,
-- and a main thread that blocks per value would measure futex wakes, not
-- goro. W1, W5 and W8 spawn from the main state, in a loop, as a user would.
-- W4base runs the prime count of W4 in plain lua5.4, without goro.

local which = arg[1] or error("usage: workloads.lua W1..W8 [scale]")
local scale = tonumber(arg[2] or os.getenv("BENCH_SCALE") or "1")

local function size(n, min)
  local v = math.floor(n * scale + 0.5)
  if v < (min or 1) then v = min or 1 end
  return v
end

local function result(name, v)
  io.write(string.format("RESULT %s %.6g\n", name, v))
end

-- W4's CPU work: primes in [lo, hi) by trial division.
local function count_primes(lo, hi)
  local n = 0
  for x = lo, hi - 1 do
    if x >= 2 then
      local prime = true
      if x % 2 == 0 then
        prime = x == 2
      else
        local d = 3
        while d * d <= x do
          if x % d == 0 then prime = false; break end
          d = d + 2
        end
      end
      if prime then n = n + 1 end
    end
  end
  return n
end

-- The range is cut in blocks; worker k of `ways` takes blocks k, k+ways, ...
-- (interleaved, so the two halves cost the same). W4base runs every block.
local W4_BLOCK = 10000
local function prime_blocks(limit, k, ways)
  local n, nblocks = 0, (limit + W4_BLOCK - 1) // W4_BLOCK
  for b = k, nblocks - 1, ways do
    local hi = (b + 1) * W4_BLOCK
    if hi > limit then hi = limit end
    n = n + count_primes(b * W4_BLOCK, hi)
  end
  return n
end

local W4_LIMIT = size(3000000, 20000)
local PRIMES_BELOW_3M = 216816

if which == "W4base" then
  -- plain lua5.4: no goro loaded. os.clock is this thread's CPU time, which
  -- for one CPU-bound thread is its wall time.
  local t0 = os.clock()
  local n = prime_blocks(W4_LIMIT, 0, 1)
  local dt = os.clock() - t0
  if W4_LIMIT == 3000000 then assert(n == PRIMES_BELOW_3M, "W4base: wrong count " .. n) end
  io.write(string.format("COUNT %d\n", n))
  result("W4base", dt)
  return
end

local go = require "goro"
io.write("PROCS ", go.gomaxprocs(), "\n")

local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local W = {}

-- W1 spawn: N goroutines each send i*2 on a shared (unbuffered) channel;
-- main sums and checks. µs per goroutine, spawn to the last receive.
function W.W1()
  local N = size(100000, 100)
  local ch = go.chan()
  local t0 = go.now()
  for i = 1, N do
    go(function(c, v) c:send(v * 2) end, ch, i)
  end
  local sum = 0
  for _ = 1, N do sum = sum + ch:recv() end
  local dt = go.now() - t0
  assert(sum == N * (N + 1), "W1: wrong sum " .. sum)
  go.wait()
  result("W1", dt / N * 1e6)
end

-- W2 ping-pong: two goroutines, an integer back and forth over two
-- unbuffered channels. µs per round trip.
local function pingpong()
  local N = size(200000, 1000)
  local ping, pong, done = go.chan(), go.chan(), go.chan(1)
  go(function(ping, pong)
    for v in ping:range() do pong:send(v + 1) end
    pong:close()
  end, ping, pong)
  go(function(ping, pong, done, n)
    local go = require "goro"
    local t0 = go.now()
    local v = 0
    for _ = 1, n do
      ping:send(v)
      v = pong:recv()
    end
    local dt = go.now() - t0
    ping:close()
    done:send({v = v, dt = dt})
  end, ping, pong, done, N)
  local r = done:recv()
  assert(r.v == N, "W2: wrong count " .. tostring(r.v))
  go.wait()
  return r.dt / N * 1e6
end
function W.W2() result("W2", pingpong()) end

-- W2t: W2 with the execution trace on (issue #16: at most 20 % slower).
-- µs per round trip; bench/run.lua pairs each run with a run of W2 and
-- reports the ratio.
function W.W2t()
  local path = os.tmpname()
  go.trace_start(path)
  local us = pingpong()
  go.trace_stop()
  local f = assert(io.open(path))
  local size = f:seek("end")
  f:close()
  os.remove(path)
  assert(size > 1000, "W2t: the trace is empty")
  result("W2t", us)
end

-- W3 worker pool: a producer feeds 1..N into jobs (cap 100), 4 workers send
-- v*2 to results (cap 100), a collector sums. M jobs/s.
function W.W3()
  local N = size(1000000, 1000)
  local jobs, results, done = go.chan(100), go.chan(100), go.chan(1)
  local t0 = go.now()
  go(function(jobs, n)
    for i = 1, n do jobs:send(i) end
    jobs:close()
  end, jobs, N)
  for _ = 1, 4 do
    go(function(jobs, results)
      for v in jobs:range() do results:send(v * 2) end
    end, jobs, results)
  end
  go(function(results, done, n)
    local sum = 0
    for _ = 1, n do sum = sum + results:recv() end
    done:send(sum)
  end, results, done, N)
  local sum = done:recv()
  local dt = go.now() - t0
  assert(sum == N * (N + 1), "W3: wrong sum " .. tostring(sum))
  go.wait()
  result("W3", N / dt / 1e6)
end

-- W4 parallel CPU: the prime count split across 2 goroutines. Prints the
-- seconds; run.lua divides W4base's median by this run's seconds.
function W.W4()
  local res = go.chan(2)
  local t0 = go.now()
  for k = 0, 1 do
    go(function(res, limit, k) res:send(prime_blocks(limit, k, 2)) end, res, W4_LIMIT, k)
  end
  local n = res:recv() + res:recv()
  local dt = go.now() - t0
  if W4_LIMIT == 3000000 then assert(n == PRIMES_BELOW_3M, "W4: wrong count " .. n) end
  io.write(string.format("COUNT %d\n", n))
  go.wait()
  result("W4", dt)
end

-- W5 memory: N goroutines blocked on a receive; KiB of RSS per goroutine,
-- VmRSS before the spawns and once every goroutine is parked.
function W.W5()
  local N = size(100000, 1000)
  local ch = go.chan()
  collectgarbage(); collectgarbage()
  local before = rss_kib()
  for _ = 1, N do go(function(c) c:recv() end, ch) end
  local t0 = go.now()
  while go.stats().waiting < N do
    assert(go.now() - t0 < 60, "W5: goroutines did not all block")
    go.sleep(0.002)
  end
  local after = rss_kib()
  ch:close()
  go.wait()
  result("W5", (after - before) / N)
end

-- W6 select: 4 producers (own channel each, cap 100), one consumer selecting
-- over the 4 until all are closed. M values/s.
function W.W6()
  local N = size(1000000, 1000)
  local per = N // 4
  local chans = {}
  for i = 1, 4 do chans[i] = go.chan(100) end
  local done = go.chan(1)
  local t0 = go.now()
  for i = 1, 4 do
    go(function(c, n)
      for v = 1, n do c:send(v) end
      c:close()
    end, chans[i], per)
  end
  go(function(c1, c2, c3, c4, done)
    local go = require "goro"
    local cases = {{c1, "recv"}, {c2, "recv"}, {c3, "recv"}, {c4, "recv"}}
    local open, sum, count = 4, 0, 0
    local select = go.select
    while open > 0 do
      local i, v, ok = select(cases)
      if ok then
        sum = sum + v
        count = count + 1
      else
        cases[i][1] = nil -- a nil channel never fires, as in Go
        open = open - 1
      end
    end
    done:send({sum = sum, count = count})
  end, chans[1], chans[2], chans[3], chans[4], done)
  local r = done:recv()
  local dt = go.now() - t0
  assert(r.count == 4 * per and r.sum == 4 * (per * (per + 1) // 2), "W6: wrong sum")
  go.wait()
  result("W6", 4 * per / dt / 1e6)
end

-- W7 transfer: a 10-field table (W7) or a 1 KB string (W7s) sent N times
-- through a buffered channel (cap 100) from one goroutine to another; the
-- receiver reads the value. µs per value (encode, channel, decode).
local function transfer(name, N, make, check)
  local ch, done = go.chan(100), go.chan(1)
  local t0 = go.now()
  go(function(ch, n, make)
    local v = make()
    for i = 1, n do
      if type(v) == "table" then v.id = i end
      ch:send(v)
    end
    ch:close()
  end, ch, N, make)
  go(function(ch, done, check)
    local n = 0
    for v in ch:range() do n = n + check(v) end
    done:send(n)
  end, ch, done, check)
  local n = done:recv()
  local dt = go.now() - t0
  assert(n == N, name .. ": wrong count " .. tostring(n))
  go.wait()
  result(name, dt / N * 1e6)
end

function W.W7()
  transfer("W7", size(200000, 1000), function()
    return {id = 0, name = "item", x = 1.5, y = -2.25, ok = true,
            a = 1, b = 2, c = 3, d = 4, e = "e"}
  end, function(t) return t.name == "item" and t.e == "e" and 1 or 0 end)
end

function W.W7s()
  transfer("W7s", size(200000, 1000), function()
    return string.rep("0123456789abcdef", 64) -- 1024 bytes
  end, function(s) return #s == 1024 and 1 or 0 end)
end

-- W8 spawn+finish: N short goroutines, each wg:done() at once, spawned in a
-- loop from main; main waits. µs per goroutine.
function W.W8()
  local N = size(1000000, 1000)
  local wg = go.waitgroup()
  local function f(wg) wg:done() end
  local t0 = go.now()
  wg:add(N)
  for _ = 1, N do go(f, wg) end
  wg:wait()
  local dt = go.now() - t0
  go.wait()
  result("W8", dt / N * 1e6)
end

-- W9 the main state receives N integers from one goroutine over an
-- unbuffered channel (issue #12). µs per receive.
function W.W9()
  local N = size(100000, 1000)
  local c = go.chan()
  go(function(c, n) for i = 1, n do c:send(i) end end, c, N)
  local t0 = go.now()
  local sum = 0
  for _ = 1, N do sum = sum + c:recv() end
  local dt = go.now() - t0
  assert(sum == N * (N + 1) // 2, "W9: wrong sum " .. sum)
  go.wait()
  result("W9", dt / N * 1e6)
end

-- W10 the main state selects over 2 unbuffered channels, each fed by its
-- own goroutine. µs per select.
function W.W10()
  local N = size(100000, 1000)
  local a, b = go.chan(), go.chan()
  local function feed(c, n, s) for i = 1, n do c:send(s * i) end end
  go(feed, a, N, 1)
  go(feed, b, N, -1)
  local t0 = go.now()
  local sum = 0
  local cases = {{a, "recv"}, {b, "recv"}}
  for _ = 1, 2 * N do
    local _, v = go.select(cases)
    sum = sum + v
  end
  local dt = go.now() - t0
  assert(sum == 0, "W10: wrong sum " .. sum)
  go.wait()
  result("W10", dt / (2 * N) * 1e6)
end

-- W11 start latency: main spawns one goroutine at a time while the Ps are
-- idle; the goroutine sends how long after the spawn it began. p99, µs.
function W.W11()
  local N = size(5000, 200)
  local c = go.chan()
  local lat = {}
  for i = 1, N do
    go(function(c, t0) c:send(go.now() - t0) end, c, go.now())
    lat[i] = c:recv()
  end
  go.wait()
  table.sort(lat)
  result("W11", lat[math.max(1, math.ceil(N * 0.99))] * 1e6)
end

local fn = W[which] or error("unknown workload " .. which)
fn()
