-- demo.lua — goro's main job: CPU-bound Lua code in parallel on every core.
--
-- Counts the primes below a limit by trial division, split into chunks that
-- a pool of worker goroutines takes from a jobs channel. Runs the same work
-- once with a single worker and once with one worker per core, shows
-- progress while it works, and prints the speedup and the scheduler figures.
--
--   lua5.4 examples/demo.lua [limit]        (make demo runs it)

local go = require "goro"

local LIMIT = tonumber(arg and arg[1]) or 4000000
local CHUNK = 50000

-- The work: plain Lua, the kind a batch script does.
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

local isatty = os.getenv("TERM") and os.execute("test -t 2") == true

-- Runs the whole job with `workers` goroutines; returns (primes, seconds).
local function run(workers, label)
  local jobs, results = go.chan(64), go.chan(64)
  for _ = 1, workers do
    go(function()
      for job in jobs:range() do
        results:send({lo = job.lo, n = count_primes(job.lo, job.hi)})
      end
    end)
  end
  local njobs = 0
  for lo = 0, LIMIT - 1, CHUNK do njobs = njobs + 1 end
  -- a producer goroutine feeds the jobs while main collects the results
  go(function()
    for lo = 0, LIMIT - 1, CHUNK do
      jobs:send({lo = lo, hi = math.min(lo + CHUNK, LIMIT)})
    end
    jobs:close()
  end)
  local t0, total = go.now(), 0
  for done = 1, njobs do
    total = total + results:recv().n
    if isatty or done == njobs then
      local w = 30
      local fill = math.floor(w * done / njobs)
      io.stderr:write(string.format("\r%-10s [%s%s] %3d%%  %5.2f s", label,
        string.rep("#", fill), string.rep(".", w - fill), done * 100 // njobs,
        go.now() - t0))
      if done == njobs then io.stderr:write("\n") end
    end
  end
  return total, go.now() - t0
end

local procs = go.gomaxprocs()
print(string.format("goro demo: primes below %d, %d chunks, GOMAXPROCS=%d",
  LIMIT, (LIMIT + CHUNK - 1) // CHUNK, procs))
local n1, t1 = run(1, "1 worker")
local np, tp = run(procs, procs .. " workers")
assert(n1 == np, "the two runs disagree: " .. n1 .. " vs " .. np)
print(string.format("primes: %d", np))
print(string.format("1 goroutine: %.2f s   %d goroutines: %.2f s   speedup: %.2fx",
  t1, procs, tp, t1 / tp))
go.wait()
local st = go.stats()
print(string.format("scheduler: %d Ps, %d threads, %d goroutines spawned, %d steals, "
  .. "%d from the global queue, %d channel ops",
  st.procs, st.threads, st.spawned, st.steals, st.globalgets, st.chanops))
