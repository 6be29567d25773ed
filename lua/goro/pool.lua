-- goro.pool — worker pools and the everyday channel patterns built on them:
--
--   go.pool{workers = n, fn = f}    a worker pool: submit jobs, read results
--   go.map(items, f, {workers = n}) parallel map, results in input order
--   go.pipeline(src, stage, ...)    stages joined by channels, fan-out per stage
--   go.merge(ch1, ch2, ...)         fan-in: many channels into one
--   go.generate(...)                values into a channel
--   go.limiter(rate, burst)         a token bucket
--   shard = true (pool and map)     keep this task's share of the jobs (goro.shard)
--
-- The pool is the jobs / workers / results anatomy of the reference
-- articles, with their pitfalls designed out:
--   * jobs go through a channel of `buffer` slots to `workers` goroutines;
--     close() (or wait()) ends the jobs, and workers drain what is queued
--     before they exit;
--   * a job that raises an error, or returns `nil, err`, gives a result
--     with that error: it never kills its worker or the pool;
--   * the results side never blocks the workers: a relay goroutine holds
--     the results until the consumer takes them, so the producer and the
--     consumer may be the same goroutine (the deadlock of the articles'
--     "main produces and consumes" story cannot happen), and no result is
--     dropped; with ordered = true it hands them over in submission order;
--   * each result carries the job's index: submit returns it, results()
--     yields it first.
-- The pool's handle is shared by copy like every goro object: a producer
-- goroutine may submit while the main state reads the results.

local go = require "goro"
local shard = require "goro.shard"

local M = {}

local classes = {}
M.__name = "goro.pool"
M.__index = function(o, k)
  local c = classes[rawget(o, "kind")]
  return c and c[k]
end
M.__tostring = function(o)
  return string.format("goro.%s: %p", rawget(o, "kind") or "?", o)
end

local function checkint(v, what, min, level)
  if math.type(v) ~= "integer" or v < min then
    error(string.format("goro: %s must be an integer >= %d, got %s", what, min,
      tostring(v)), level + 1)
  end
  return v
end

local CHAN_MT = getmetatable(go.chan())

local function is_chan(v)
  return getmetatable(v) == CHAN_MT
end

-- --------------------------------------------------------------- pool

local Pool = {}
classes.pool = Pool

-- A worker: runs jobs {i, x} until the jobs channel is closed and drained,
-- sends {i, value, err} for each, then `false` to tell the relay it left.
-- A job that calls go.exit() (runtime.Goexit) ends this worker's goroutine:
-- its <close> reports the job as one that returned nothing, and a new
-- worker takes the place of this one.
local function worker(jobs, out, fn, ctx)
  local cur -- the index of the job running, while fn runs
  local _ <close> = setmetatable({}, {__close = function()
    if cur then
      out:send({cur})
      go(worker, jobs, out, fn, ctx)
    end
  end})
  for job in jobs:range() do
    local i = job[1]
    local r
    local cerr = ctx and ctx:err()
    if cerr then
      r = {i, nil, cerr}
    else
      cur = i
      local ok, v, e = pcall(fn, job[2], i)
      cur = nil
      if not ok then
        r = {i, nil, v == nil and "goro: pool job raised nil" or v}
      elseif v == nil and e ~= nil then
        r = {i, nil, e}
      else
        r = {i, v}
      end
    end
    local sent, why = pcall(out.send, out, r)
    if not sent then
      out:send({i, nil, "goro: pool: the result of job " .. i .. " cannot be copied: "
        .. tostring(why)})
    end
  end
  out:send(false)
end

-- Progress display on stderr: a bar, the count, the rate and an ETA.
-- total: the jobs submitted so far, or the pool's known total (closed is
-- then true: the count is final, so the bar and the ETA mean something).
local function draw(t0, done, total, closed, final)
  local el = go.now() - t0
  local rate = el > 0 and done / el or 0
  local w = 30
  local fill = total > 0 and math.floor(w * done / total) or 0
  local eta = ""
  if closed and rate > 0 and done < total then
    eta = string.format("  ETA %ds", math.ceil((total - done) / rate))
  end
  io.stderr:write(string.format("\r[%s%s] %d/%s%d  %.1f/s%s\27[K", string.rep("#", fill),
    string.rep(".", w - fill), done, closed and "" or ">=", total, rate, eta),
    final and "\n" or "")
end

-- The relay: takes results from the workers as soon as they come, keeps
-- them (in a FIFO, or by index when ordered) and hands them to whoever
-- reads p.res; closes p.res after the last worker left and the last result
-- was taken.
-- Under shard = true, the indices this task runs are first, first + step, ...
-- total: the number of jobs, when known (go.pool{total = n}, go.map).
local function relay(out, res, workers, ordered, cnt, jobs, first, step, total)
  local q, qh, qt = {}, 1, 0
  local nexti = first
  local live, done = workers, 0
  local t0, last = go.now(), -1
  local recv = {out, "recv"}
  local send = {res, "send"}
  local cases = {recv, send}
  while true do
    local head
    if ordered then head = q[nexti] else head = q[qh] end
    if not head and live == 0 then break end
    recv[1] = live > 0 and out or nil
    send[1] = head and res or nil
    send[3] = head
    local i, r = go.select(cases)
    if i == 1 then
      if r == false then
        live = live - 1
      else
        done = done + 1
        if ordered then
          q[r[1]] = r
        else
          qt = qt + 1
          q[qt] = r
        end
        if cnt and (go.now() - last >= 0.1 or live == 0) then
          last = go.now()
          local n = cnt:recv()
          cnt:send(n)
          if total then draw(t0, done, math.max(total, n), true, false)
          else draw(t0, done, n, jobs:closed(), false) end
        end
      end
    elseif ordered then
      q[nexti] = nil
      nexti = nexti + step
    else
      q[qh] = nil
      qh = qh + 1
    end
  end
  if cnt then
    local n = cnt:recv()
    cnt:send(n)
    draw(t0, done, n, true, true)
  end
  res:close()
end

local function stderr_is_tty()
  local term = os.getenv("TERM")
  if not term or term == "dumb" then return false end
  return os.execute("test -t 2") == true
end

-- go.pool{fn = f, workers = n, buffer = b, ordered = bool, progress = bool, total = n,
-- ctx = ctx} -> p. Starts n workers (default: go.gomaxprocs()) that call
-- f(job, i) for each submitted job; f returns the job's value, or nil and
-- an error. buffer (default n) is the number of jobs that may wait for a
-- worker before submit blocks. ordered: results() and wait() hand results
-- over in submission order (else as they finish). progress: draw a
-- progress bar on stderr when stderr is a terminal; total: how many jobs
-- will be submitted, so the bar and its ETA are right from the start (else
-- the bar counts what was submitted so far; go.map passes its own). ctx: once it is done,
-- jobs not yet started are not run and get ctx:err() as their error.
-- shard: this task of n (go.shard's environment) runs only the jobs whose
-- index is its own (i, i + n, ...); submit still numbers every job and
-- returns nil for another task's, so the n tasks together run each job
-- once and results keep the indices of one unsharded run.
-- The pool owns its goroutines; the caller owns closing it (close or wait).
function M.pool(opts)
  if type(opts) ~= "table" then
    error("goro: pool needs a table of options {fn = ..., workers = n}", 2)
  end
  local fn = opts.fn or opts[1]
  if type(fn) ~= "function" then
    error("goro: pool needs fn, the function that runs a job, got " .. type(fn), 2)
  end
  local workers = checkint(opts.workers or go.gomaxprocs(), "pool workers", 1, 2)
  local buffer = checkint(opts.buffer or workers, "pool buffer", 0, 2)
  local total = opts.total and checkint(opts.total, "pool total", 0, 2)
  local si, sn = 1, 1
  if opts.shard then si, sn = shard.from_env(2) end
  local p = setmetatable({kind = "pool", jobs = go.chan(buffer), res = go.chan(64),
    seq = go.chan(1), si = si, sn = sn}, M)
  p.seq:send(1)
  if opts.progress and stderr_is_tty() then
    p.cnt = go.chan(1)
    p.cnt:send(0)
  end
  local out = go.chan(workers)
  for _ = 1, workers do go(worker, p.jobs, out, fn, opts.ctx) end
  if total and sn > 1 then total = total >= si and (total - si) // sn + 1 or 0 end -- this task's share
  go(relay, out, p.res, workers, opts.ordered and true or false, p.cnt, p.jobs, si, sn, total)
  return p
end

-- p:submit(job) -> i, the job's index (1, 2, ... in submission order), or
-- nil under shard = true when the job is another task's (it does not run).
-- Blocks while the jobs buffer is full. The job is copied to a worker.
-- Submitting to a closed pool is an error. (As in Go, a job that submits to
-- its own pool can deadlock it once every worker waits for buffer space.)
function Pool.submit(p, job)
  local i = p.seq:recv() -- held while sending: indices follow send order
  if (i - p.si) % p.sn ~= 0 then -- another task's job
    if p.jobs:closed() then
      p.seq:send(i)
      error("goro: submit on a closed pool: submit every job before close/wait", 2)
    end
    p.seq:send(i + 1)
    return nil
  end
  local ok, err = pcall(p.jobs.send, p.jobs, {i, job})
  if not ok then
    p.seq:send(i)
    if p.jobs:closed() then
      error("goro: submit on a closed pool: submit every job before close/wait", 2)
    end
    error(err, 2)
  end
  p.seq:send(i + 1)
  if p.cnt then
    local n = p.cnt:recv()
    p.cnt:send(n + 1)
  end
  return i
end

-- p:close(): no more jobs. Workers finish the queued jobs, then exit.
-- Closing twice is harmless.
function Pool.close(p)
  pcall(p.jobs.close, p.jobs)
end

-- p:results() -> iterator of i, value, err, one per job, until the pool is
-- closed and every result has been taken. Blocks waiting for results, so
-- someone must close the pool (see the examples).
function Pool.results(p)
  local res = p.res
  return function()
    local r, ok = res:recv()
    if not ok then return nil end
    return r[1], r[2], r[3]
  end
end

-- p:wait() -> values, errs. Closes the pool, waits for every job, and
-- returns the results not taken yet: values[i] and errs[i] by job index
-- (errs is nil when no job failed).
function Pool.wait(p)
  p:close()
  local values, errs = {}, nil
  for i, v, err in p:results() do
    values[i] = v
    if err ~= nil then
      errs = errs or {}
      errs[i] = err
    end
  end
  return values, errs
end

-- --------------------------------------------------------------- map

-- Runs fn over one chunk of items (the pool's job in go.map).
local function mapchunk(fn, chunk)
  local vals, errs = {}, nil
  local base = chunk.base
  for j = 1, chunk.n do
    local ok, v, e = pcall(fn, chunk[j], base + j)
    if not ok then
      errs = errs or {}
      errs[j] = v == nil and "goro: map function raised nil" or v
    elseif v == nil and e ~= nil then
      errs = errs or {}
      errs[j] = e
    else
      vals[j] = v
    end
  end
  return {vals, errs}
end

-- go.map(items, fn, {workers = n, chunk = k, progress = bool, ctx = ctx})
-- -> values, errs. Calls fn(item, i) for each item of the array `items` in
-- a pool of n workers (default go.gomaxprocs()) and returns values[i] in
-- input order; errs[i] holds the error of each item that raised or returned
-- nil, err (errs is nil when none failed). Items travel in chunks of k
-- (default: small enough to balance the load, large enough that copying
-- does not dominate tiny jobs). shard = true: only this task's share,
-- exactly as go.map(go.shard(items), fn, opts) (values and errs are indexed
-- by position in the share).
function M.map(items, fn, opts)
  if type(items) ~= "table" then
    error("goro: map needs an array of items, got " .. type(items), 2)
  end
  if type(fn) ~= "function" then
    error("goro: map needs a function, got " .. type(fn), 2)
  end
  opts = opts or {}
  if opts.shard then items = shard.shard(items, shard.from_env(2)) end
  local n = #items
  if n == 0 then return {}, nil end
  local workers = checkint(opts.workers or go.gomaxprocs(), "map workers", 1, 2)
  local chunk = opts.chunk or math.max(1, math.min(64, n // (workers * 16)))
  checkint(chunk, "map chunk", 1, 2)
  local p = M.pool{workers = math.min(workers, (n + chunk - 1) // chunk),
    progress = opts.progress, ctx = opts.ctx, total = (n + chunk - 1) // chunk,
    fn = function(c) return mapchunk(fn, c) end}
  for base = 0, n - 1, chunk do
    local c = {base = base, n = math.min(chunk, n - base)}
    for j = 1, c.n do c[j] = items[base + j] end
    p:submit(c)
  end
  local values, errs = {}, nil
  local out, perrs = p:wait()
  for ci, r in pairs(out) do
    local base = (ci - 1) * chunk
    for j, v in pairs(r[1]) do values[base + j] = v end
    if r[2] then
      errs = errs or {}
      for j, e in pairs(r[2]) do errs[base + j] = e end
    end
  end
  if perrs then -- a chunk that could not run (its context ended)
    errs = errs or {}
    for ci, e in pairs(perrs) do
      local base = (ci - 1) * chunk
      for j = 1, math.min(chunk, n - base) do errs[base + j] = e end
    end
  end
  return values, errs
end

-- --------------------------------------------------------------- generate, merge

local function generator(out, vals)
  for i = 1, vals.n do out:send(vals[i]) end
  out:close()
end

-- go.generate(...) -> a channel that receives each argument in order and
-- is then closed (Go's `gen`). (A nil value would end a range loop early.)
function M.generate(...)
  local out = go.chan()
  go(generator, out, table.pack(...))
  return out
end

local function merger(out, chans)
  local cases, live = {}, 0
  for i = 1, chans.n do
    if chans[i] ~= nil then live = live + 1 end
    cases[i] = {chans[i], "recv"}
  end
  while live > 0 do
    local i, v, ok = go.select(cases)
    if ok then
      out:send(v)
    else
      cases[i][1] = nil
      live = live - 1
    end
  end
  out:close()
end

-- go.merge(ch1, ch2, ...) -> a channel that receives every value of every
-- input channel (fan-in), and is closed once they all are. Values of one
-- input keep their order; inputs interleave as they come.
function M.merge(...)
  local chans = table.pack(...)
  for i = 1, chans.n do
    if chans[i] ~= nil and not is_chan(chans[i]) then
      error("goro: merge argument " .. i .. " is not a channel (" .. type(chans[i]) .. ")", 2)
    end
  end
  local out = go.chan()
  go(merger, out, chans)
  return out
end

-- --------------------------------------------------------------- pipeline

local function stage_worker(inp, out, fn, live)
  for v in inp:range() do
    local r = fn(v)
    if r ~= nil then out:send(r) end
  end
  local n = live:recv()
  live:send(n - 1)
  if n == 1 then out:close() end
end

local function source_fn(out, fn)
  fn(function(v) out:send(v) end)
  out:close()
end

-- go.pipeline(source, stage, ...) -> the last stage's output channel.
-- source: a channel, an array (its items are generated), or a function
-- called in a goroutine as source(emit) (the channel closes when it
-- returns). A stage is a function v -> w (a nil w drops the value: a
-- filter) or {fn = f, workers = n, buffer = b}: n goroutines share the
-- stage's input (fan-out) and send into one output (fan-in), so with n > 1
-- the stage's output order is not its input order. Each stage's output is
-- closed when its input is closed and drained. An error raised in a stage
-- is a goroutine error (it stops the program, as a panic in Go): catch it
-- in the stage to carry it as a value.
function M.pipeline(source, ...)
  local ch
  if is_chan(source) then
    ch = source
  elseif type(source) == "table" then
    ch = M.generate(table.unpack(source, 1, #source))
  elseif type(source) == "function" then
    ch = go.chan()
    go(source_fn, ch, source)
  else
    error("goro: pipeline source must be a channel, an array or a function, got "
      .. type(source), 2)
  end
  for k = 1, select("#", ...) do
    local st = select(k, ...)
    local fn, workers, buffer
    if type(st) == "function" then
      fn, workers, buffer = st, 1, 0
    elseif type(st) == "table" then
      fn = st.fn or st[1]
      workers = checkint(st.workers or 1, "pipeline stage " .. k .. " workers", 1, 2)
      buffer = checkint(st.buffer or 0, "pipeline stage " .. k .. " buffer", 0, 2)
    end
    if type(fn) ~= "function" then
      error("goro: pipeline stage " .. k .. " must be a function or {fn = f, workers = n}", 2)
    end
    local out = go.chan(buffer)
    local live = go.chan(1)
    live:send(workers)
    for _ = 1, workers do go(stage_worker, ch, out, fn, live) end
    ch = out
  end
  return ch
end

-- --------------------------------------------------------------- limiter
-- GCRA, the token bucket as one number: tat, the theoretical arrival time
-- of the next request, in a capacity-1 channel. With T = 1/rate, a request
-- at `now` is within the bucket when max(tat, now) + T - now <= burst * T.

local Limiter = {}
classes.limiter = Limiter

-- go.limiter(rate, burst) -> l: allows `rate` events per second on
-- average, with bursts of up to `burst` (default 1) at once. Starts full.
-- Shared by copy: every goroutine's copy draws from the same bucket.
function M.limiter(rate, burst)
  if type(rate) ~= "number" or not (rate > 0) then
    error("goro: limiter rate must be a positive number of events per second, got "
      .. tostring(rate), 2)
  end
  burst = checkint(burst or 1, "limiter burst", 1, 2)
  local T = rate == math.huge and 0.0 or 1.0 / rate
  local l = setmetatable({kind = "limiter", T = T, tau = burst * T, st = go.chan(1)}, M)
  l.st:send(0.0)
  return l
end

-- l:allow() -> true if an event may happen now (and counts it), false if
-- the bucket is empty. Never blocks.
function Limiter.allow(l)
  local tat = l.st:recv()
  local now = go.now()
  local t = math.max(tat, now) + l.T
  if t - now <= l.tau then
    l.st:send(t)
    return true
  end
  l.st:send(tat)
  return false
end

-- l:wait([ctx]) -> true when the event may happen, after sleeping as long
-- as needed; waiters are served in the order they called. With ctx: nil
-- and ctx:err() if ctx is done before that (the reservation is returned).
function Limiter.wait(l, ctx)
  local tat = l.st:recv()
  local now = go.now()
  local t = math.max(tat, now) + l.T
  local delay = t - now - l.tau
  l.st:send(t)
  if delay <= 0 then return true end
  if not ctx then
    go.sleep(delay)
    return true
  end
  local tm = go.timer(delay)
  local i = go.select{{tm.c, "recv"}, {ctx:done(), "recv"}}
  if i == 1 then return true end
  tm:stop()
  tat = l.st:recv()
  if tat == t then tat = t - l.T end -- nobody reserved after us: give it back
  l.st:send(tat)
  return nil, ctx:err()
end

return M
