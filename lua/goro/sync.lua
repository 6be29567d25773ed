-- goro.sync — Go's sync primitives (and x/sync's semaphore, singleflight,
-- and time.AfterFunc, built the same way) for goroutines that live in
-- different lua_States.
--
-- A value that crosses goroutines is copied; only goro objects (channels,
-- waitgroups, timers) are shared. So every object here is a small plain
-- table (a handle) whose state lives in channels: copies of a handle, in any
-- goroutine or in the main state, share that state. The handles' metatable
-- is this module's table, which transfer moves by name (the receiver
-- requires "goro.sync"), so sending a mutex costs a few bytes.
--
-- The building blocks:
--   * a channel of capacity 1 is a lock: send takes it, a receive frees it.
--     Its waiting senders queue in FIFO order and a receive hands the slot
--     straight to the first of them, so no newcomer barges (Go's starvation
--     mode, always on).
--   * shared state sits in a capacity-1 channel: receive it (the lock),
--     change it, send it back. Small states are integers (no allocation).
--   * FIFO wait queues (semaphore, cond) are linked lists whose links are
--     channels: each waiter record carries `nextc`, into which the next
--     waiter's record is sent when it queues up (under the state lock), so
--     the state itself stays small (head, tail) however long the queue is.
--
-- go.waitgroup is in C (goro.c); it is re-exported here.

local go = require "goro"

local M = {}

local classes = {} -- kind -> methods

M.__name = "goro.sync"
M.__index = function(o, k)
  local c = classes[rawget(o, "kind")]
  return c and c[k]
end
M.__close = function(o, e)
  local c = classes[rawget(o, "kind")]
  local f = c and c.__close
  if f then f(o, e) end
end
M.__tostring = function(o)
  return string.format("goro.%s: %p", rawget(o, "kind") or "?", o)
end

local function new(kind, t)
  t.kind = kind
  return setmetatable(t, M)
end

local function checkcount(n, what, level)
  if n == nil then return 1 end
  if math.type(n) ~= "integer" or n < 0 then
    error(string.format("goro: %s: bad weight %s: use a non-negative integer",
      what, tostring(n)), level + 1)
  end
  return n
end

-- --------------------------------------------------------------- errors
-- A blocking channel operation in this file can fail: main waits on a lock
-- nobody will free (the deadlock error), or a goroutine's error is raised
-- again in main while it waits. The C error names the position of the
-- operation, a line of this file; waited() moves it to the first caller
-- outside this file (`mu:lock()` in the user's code), as error(msg, 2)
-- would. Other errors (a goroutine's, re-raised) pass through unchanged.

local HERE = debug.getinfo(1, "S").short_src

local function reraise(e)
  if type(e) ~= "string" or e:sub(1, #HERE + 1) ~= HERE .. ":" then error(e, 0) end
  local level = 2 -- 1 is reraise; error's levels count as debug.getinfo's
  while true do
    local info = debug.getinfo(level, "S")
    if not info or info.short_src ~= HERE then break end
    level = level + 1
  end
  error((e:sub(#HERE + 2):gsub("^%d+: ", "", 1)), level)
end

-- waited(pcall(send, ch, v)): the results of a blocking operation. The
-- operations are called from these Lua functions (not as tail calls), so
-- that the C error names a line of this file.
local function waited(ok, ...)
  if not ok then reraise((...)) end
  return ...
end

local function send(c, v)
  c:send(v)
end

local function recv(c)
  local v, ok = c:recv()
  return v, ok
end

local function select1(cases)
  local i, v, ok = go.select(cases)
  return i, v, ok
end

-- --------------------------------------------------------------- queues
-- Waiter records: {id = n, ready = chan(1), nextc = chan(1), ...}. The
-- queue's state (under its owner's lock) is {head = rec, tail = rec, nid}.

local function enqueue(s, rec)
  rec.id = s.nid
  s.nid = s.nid + 1
  if s.tail then s.tail.nextc:send(rec) else s.head = rec end
  s.tail = rec
end

-- Removes the head (s.head must exist); returns it.
local function dequeue(s)
  local h = s.head
  if h.id == s.tail.id then
    s.head, s.tail = nil, nil
  else
    s.head = h.nextc:recv() -- sent when the successor queued: never blocks
  end
  return h
end

-- --------------------------------------------------------------- mutex

local Mutex = {}
classes.mutex = Mutex

-- go.mutex() -> a mutual exclusion lock, unlocked. Any goroutine (or the
-- main state) holding a copy may lock it; as in Go, a mutex is not tied to
-- the goroutine that locked it. Waiters get the lock in FIFO order.
function M.mutex()
  return new("mutex", {c = go.chan(1)})
end

-- mu:lock() -> mu. Blocks until the lock is free. Returns the mutex so that
-- `local _ <close> = mu:lock()` unlocks at the end of the scope.
function Mutex.lock(self)
  local c = self.c
  -- trysend first: the fast path pays no pcall, and barges nobody (while
  -- senders queue, the slot is full and goes from one to the next)
  if not c:trysend(true) then waited(pcall(send, c, true)) end
  return self
end

-- mu:trylock() -> true if it took the lock, false if it is held.
function Mutex.trylock(self)
  return self.c:trysend(true)
end

-- mu:unlock(). Unlocking an unlocked mutex is an error (Go: fatal error).
function Mutex.unlock(self)
  local _, ok = self.c:tryrecv()
  if not ok then
    error("goro: unlock of unlocked mutex: call unlock once per lock", 2)
  end
end

Mutex.__close = Mutex.unlock

-- --------------------------------------------------------------- rwmutex
-- w: a capacity-1 channel, the gate: a writer holds it for its whole
-- critical section; a reader holds it only while it registers, so a
-- waiting writer stops new readers (Go's writer preference). n: the number
-- of readers inside (an integer under its own lock). drained: a token that
-- the last reader out leaves for a writer waiting at the gate.

local RW = {}
classes.rwmutex = RW

-- go.rwmutex() -> a reader/writer lock: many readers or one writer. A
-- writer waiting for the lock blocks new readers, so writers are not
-- starved; as in Go, a reader must not rlock again while it holds a read
-- lock (a writer queued in between would deadlock them).
function M.rwmutex()
  local rw = new("rwmutex", {w = go.chan(1), n = go.chan(1), drained = go.chan(1)})
  rw.n:send(0)
  return rw
end

-- rw:lock() -> rw. Takes the write lock; `<close>` on the result unlocks.
local function rw_lock(self)
  self.w:send(true)
  while true do
    local n = self.n:recv()
    self.n:send(n)
    if n == 0 then return self end
    self.drained:recv()
  end
end

function RW.lock(self)
  return waited(pcall(rw_lock, self))
end

-- rw:trylock() -> true if it took the write lock without waiting.
function RW.trylock(self)
  if not self.w:trysend(true) then return false end
  local n = self.n:recv()
  self.n:send(n)
  if n == 0 then return true end
  self.w:tryrecv()
  return false
end

-- rw:unlock(): releases the write lock (an error if it is not held).
function RW.unlock(self)
  local _, ok = self.w:tryrecv()
  if not ok then
    error("goro: unlock of unlocked RWMutex: call unlock once per lock", 2)
  end
end

RW.__close = RW.unlock

-- The guard rlock returns: closing it (or guard:unlock()) is rw:runlock().
local RGuard = {}
classes.rguard = RGuard
function RGuard.unlock(g) g.rw:runlock() end
RGuard.runlock = RGuard.unlock
RGuard.__close = RGuard.unlock

-- rw:rlock() -> guard. Takes a read lock; `local _ <close> = rw:rlock()`
-- releases it at the end of the scope (as does guard:unlock()).
function RW.rlock(self)
  local w = self.w
  if not w:trysend(true) then waited(pcall(send, w, true)) end
  local n = self.n:recv()
  self.n:send(n + 1)
  self.w:tryrecv()
  return new("rguard", {rw = self})
end

-- rw:tryrlock() -> true if it took a read lock without waiting.
function RW.tryrlock(self)
  if not self.w:trysend(true) then return false end
  local n = self.n:recv()
  self.n:send(n + 1)
  self.w:tryrecv()
  return true
end

-- rw:runlock(): releases a read lock (an error if no reader holds one).
function RW.runlock(self)
  local n = self.n:recv()
  if n == 0 then
    self.n:send(0)
    error("goro: runlock of unlocked RWMutex: call runlock once per rlock", 2)
  end
  self.n:send(n - 1)
  if n == 1 then self.drained:trysend(true) end
end

-- rw:rlocker() -> an object whose lock/unlock are rw's rlock/runlock (Go's
-- RLocker), e.g. for go.cond(rw:rlocker()).
function RW.rlocker(self)
  return new("rlocker", {rw = self})
end

local RLocker = {}
classes.rlocker = RLocker
function RLocker.lock(l) l.rw:rlock(); return l end
function RLocker.unlock(l) l.rw:runlock() end
RLocker.__close = RLocker.unlock

-- --------------------------------------------------------------- once

local Once = {}
classes.once = Once

-- go.once() -> an object that runs one function once. o:call(fn, ...)
-- (also o["do"]) runs fn the first time it is called; every other call,
-- concurrent or later, waits until that first one has returned and then
-- returns without calling fn. If fn raises, the error goes to its caller
-- and the once still counts as done (Go: a panicking f is "returned").
function M.once()
  return new("once", {fin = go.chan(), gate = go.chan(1)})
end

function Once.call(self, fn, ...)
  if self.fin:closed() then return end
  waited(pcall(send, self.gate, true))
  if self.fin:closed() then
    self.gate:tryrecv()
    return
  end
  local ok, err = pcall(fn, ...)
  self.fin:close()
  self.gate:tryrecv()
  if not ok then error(err, 0) end
end
Once["do"] = Once.call

-- o:done() -> true once fn has run (returned or raised).
function Once.done(self)
  return self.fin:closed()
end

-- --------------------------------------------------------------- cond

local Cond = {}
classes.cond = Cond

-- go.cond(mu) -> a condition variable tied to mu (a mutex, an rwmutex, or
-- any object with lock/unlock). c:wait() must be called with mu locked: it
-- unlocks mu, sleeps until signal/broadcast, and locks mu again before it
-- returns; so, as in Go, wait in a loop that re-checks the condition.
-- Waiters wake in FIFO order. signal/broadcast need not hold mu.
function M.cond(mu)
  if type(mu) ~= "table" or not mu.lock or not mu.unlock then
    error("goro: cond needs a lock (go.mutex() or go.rwmutex()), got "
      .. (mu == nil and "nothing" or type(mu)), 2)
  end
  local c = new("cond", {l = mu, st = go.chan(1)})
  c.st:send({nid = 1})
  return c
end

function Cond.wait(self)
  local s = self.st:recv()
  local rec = {ready = go.chan(1), nextc = go.chan(1)}
  enqueue(s, rec)
  self.st:send(s)
  local ok, err = pcall(self.l.unlock, self.l)
  if not ok then
    -- not locked (Go: fatal "unlock of unlocked mutex"): leave the queue
    -- marked dead so signal skips this record, and report it here
    rec.ready:close()
    reraise(err)
  end
  waited(pcall(recv, rec.ready))
  self.l:lock()
end

-- Wakes the first live waiter of s; returns true if there was one.
local function wake_one(s)
  while s.head do
    local h = dequeue(s)
    if not h.ready:closed() then
      h.ready:send(true)
      return true
    end
  end
  return false
end

-- c:signal(): wakes one waiting goroutine, if any.
function Cond.signal(self)
  local s = self.st:recv()
  wake_one(s)
  self.st:send(s)
end

-- c:broadcast(): wakes every waiting goroutine.
function Cond.broadcast(self)
  local s = self.st:recv()
  while wake_one(s) do end
  self.st:send(s)
end

-- --------------------------------------------------------------- semaphore
-- state: an integer (tokens held, nobody waiting) or, while goroutines
-- wait, {cur = held, head, tail, nid} with waiter records {n, ready, nextc}.
-- A waiter that gives up (its context ended) closes its ready channel: the
-- record stays in the queue, dead, and is skipped.

local Sem = {}
classes.semaphore = Sem

-- go.semaphore(n) -> a weighted semaphore of size n, like
-- golang.org/x/sync/semaphore: acquire(k) takes k tokens, waiting in FIFO
-- order (a large request at the head is not overtaken by small ones);
-- release(k) gives them back. Tokens are not owned: any goroutine may
-- release, but releasing more than is held is an error.
function M.semaphore(n)
  if math.type(n) ~= "integer" or n < 1 then
    error("goro: semaphore size must be a positive integer, got " .. tostring(n), 2)
  end
  local s = new("semaphore", {size = n, st = go.chan(1)})
  s.st:send(0)
  return s
end

-- Grants tokens to the waiters at the head that fit; returns the state in
-- its shortest form.
local function sem_notify(self, s)
  while s.head do
    local h = s.head
    if not h.ready:closed() then
      if self.size - s.cur < h.n then break end
      s.cur = s.cur + h.n
      h.ready:send(true)
    end
    dequeue(s)
  end
  if not s.head then return s.cur end
  return s
end

-- sem:acquire([k [, ctx]]) -> true, or false and ctx:err() if ctx ended
-- first (then nothing is held). Blocks until k (default 1) tokens are
-- available and every earlier waiter has been served. Go's order,
-- sem:acquire(ctx [, k]), works too. As x/sync's Acquire (>= 0.5):
--   * a ctx already done fails, even when the tokens are free, and a ctx
--     that ends while the tokens arrive fails too (they go back);
--   * a request larger than the size can never succeed: it waits for ctx
--     to end without queueing, so it blocks nobody else. Without a ctx
--     that can end, Go would block forever; here it is an error instead,
--     the same program bug said at once rather than as a hang.
function Sem.acquire(self, k, ctx)
  if type(k) == "table" then k, ctx = ctx, k end
  k = checkcount(k, "semaphore acquire", 2)
  local done = ctx and ctx:done()
  if done and done:closed() then return false, ctx:err() end
  if k > self.size then
    if not done then
      -- (spec/errpos_spec.lua pins this text to its end)
      error(string.format("goro: semaphore acquire of %d exceeds its size %d: it can never "
        .. "succeed (acquire at most %d, or pass a ctx to wait for its end, as Go does)",
        k, self.size, self.size), 2)
    end
    waited(pcall(recv, done))
    return false, ctx:err()
  end
  local s = self.st:recv()
  if type(s) == "number" then
    if self.size - s >= k then
      self.st:send(s + k)
      return true
    end
    s = {cur = s, nid = 1}
  end
  local rec = {n = k, ready = go.chan(1), nextc = go.chan(1)}
  enqueue(s, rec)
  self.st:send(s)
  if not done then
    waited(pcall(recv, rec.ready))
    return true
  end
  local i = waited(pcall(select1, {{rec.ready, "recv"}, {done, "recv"}}))
  if i == 1 then
    if not done:closed() then return true end
    -- ctx ended as the tokens came: Go gives them back and fails
    self:release(k)
    return false, ctx:err()
  end
  -- the context ended: leave the queue, unless the tokens came meanwhile
  s = self.st:recv()
  local _, got = rec.ready:tryrecv()
  if type(s) == "number" then s = {cur = s, nid = 1} end
  if got then s.cur = s.cur - k end -- give them back (Go does the same)
  rec.ready:close()
  self.st:send(sem_notify(self, s))
  return false, ctx:err()
end

-- sem:try_acquire([k]) -> true if it took k tokens without waiting (only
-- when nobody is queued, as x/sync's TryAcquire).
function Sem.try_acquire(self, k)
  k = checkcount(k, "semaphore try_acquire", 2)
  local s = self.st:recv()
  if type(s) == "number" and self.size - s >= k then
    self.st:send(s + k)
    return true
  end
  self.st:send(s)
  return false
end

-- sem:release([k]): gives back k tokens (default 1) and wakes the waiters
-- they satisfy. Releasing more than is held is an error.
function Sem.release(self, k)
  k = checkcount(k, "semaphore release", 2)
  local s = self.st:recv()
  local cur = type(s) == "number" and s or s.cur
  if cur - k < 0 then
    self.st:send(s)
    error(string.format("goro: semaphore: released %d but only %d held", k, cur), 2)
  end
  if type(s) == "number" then
    self.st:send(s - k)
  else
    s.cur = cur - k
    self.st:send(sem_notify(self, s))
  end
end

-- sem:held() -> the number of tokens held now (a snapshot, for tests and
-- progress displays).
function Sem.held(self)
  local s = self.st:recv()
  self.st:send(s)
  return type(s) == "number" and s or s.cur
end

-- --------------------------------------------------------------- singleflight
-- state: {calls = {[key] = rec}, forgotten = {[id] = rec} or nil, nid},
-- rec = {id, dups, waits, res, chans}: dups counts the callers that joined
-- (Go's dups), waits those of them waiting in call; res is a capacity-1
-- channel where the runner leaves the outcome for those (each takes it
-- and puts it back), chans the capacity-1 channels of do_chan's callers,
-- each sent one result table.
-- A forgotten execution moves from calls to forgotten, so that the next
-- call runs fn again while this one still finds its waiters at the end.

local SF = {}
classes.singleflight = SF

-- go.singleflight() -> a group that collapses concurrent calls with the
-- same key into one execution (golang.org/x/sync/singleflight).
function M.singleflight()
  local g = new("singleflight", {st = go.chan(1)})
  g.st:send({calls = {}, nid = 1})
  return g
end

-- Joins the execution running for key, if any: adds a caller (and its
-- do_chan channel) to it. Called with the state s held.
local function sf_join(s, key, ch)
  local c = s.calls[key]
  if not c then return nil end
  c.dups = c.dups + 1
  if ch then c.chans[#c.chans + 1] = ch else c.waits = c.waits + 1 end
  return c
end

-- Registers a new execution for key in the held state s.
local function sf_start(s, key, ch)
  local id = s.nid
  s.nid = id + 1
  local c = {id = id, dups = 0, waits = 0, res = go.chan(1), chans = {ch}}
  s.calls[key] = c
  return c
end

local function uncopyable(key)
  return "goro: singleflight: the result of '" .. tostring(key)
    .. "' cannot be copied to the other callers: return strings, numbers or tables"
end

-- The end of execution c: takes it out of the state, then hands the
-- outcome to everybody who joined. ok, v, err: pcall(fn)'s results.
-- Returns whether the outcome was shared.
local function sf_finish(self, key, c, ok, v, err)
  local s = self.st:recv()
  local cur = s.calls[key]
  if cur and cur.id == c.id then
    c = cur
    s.calls[key] = nil
  elseif s.forgotten and s.forgotten[c.id] then
    c = s.forgotten[c.id]
    s.forgotten[c.id] = nil
    if next(s.forgotten) == nil then s.forgotten = nil end
  end
  self.st:send(s)
  local shared = c.dups > 0
  if c.waits > 0 then
    local r = ok and {ok = true, v = v, err = err} or {ok = false, err = v}
    if not pcall(c.res.send, c.res, r) then c.res:send({ok = false, err = uncopyable(key)}) end
  end
  for _, ch in ipairs(c.chans) do
    local r = ok and {val = v, err = err, shared = shared} or {err = v, shared = shared}
    if not pcall(ch.send, ch, r) then ch:send({err = uncopyable(key), shared = shared}) end
  end
  return shared
end

-- g:call(key, fn, ...) -> v, err, shared. If no call for key is running,
-- runs fn(...) here and returns its first two results (Lua's `v, err`);
-- otherwise waits for the running one and returns a copy of its results.
-- shared is true when more than one caller received them. If fn raises,
-- every caller of that execution raises the same error (do_chan's callers
-- receive it as err).
function SF.call(self, key, fn, ...)
  if key == nil then error("goro: singleflight key must not be nil", 2) end
  local s = self.st:recv()
  local c = sf_join(s, key)
  if c then
    self.st:send(s)
    local r = waited(pcall(recv, c.res))
    c.res:send(r) -- put it back for the other waiters (capacity 1: no wait)
    if not r.ok then error(r.err, 0) end
    return r.v, r.err, true
  end
  c = sf_start(s, key)
  self.st:send(s)
  local ok, v, err = pcall(fn, ...)
  local shared = sf_finish(self, key, c, ok, v, err)
  if not ok then error(v, 0) end
  return v, err, shared
end
SF["do"] = SF.call

-- The goroutine of an execution do_chan started.
local function sf_run(self, key, c, fn, ...)
  sf_finish(self, key, c, pcall(fn, ...))
end

-- g:call_chan(key, fn, ...) (also g:do_chan) -> a channel that receives
-- one table {val = v, err = err, shared = bool} when the execution for key
-- ends: the running one if there is one, else fn(...) started in a new
-- goroutine (fn and the arguments are copied there). Use it in go.select
-- to stop waiting (a timeout, a ctx) while the execution goes on. If fn
-- raises, err is the error (Go's DoChan would crash the program).
function SF.call_chan(self, key, fn, ...)
  if key == nil then error("goro: singleflight key must not be nil", 2) end
  if type(fn) ~= "function" then
    error("goro: singleflight do_chan needs a function, got " .. type(fn), 2)
  end
  local ch = go.chan(1)
  local s = self.st:recv()
  if sf_join(s, key, ch) then
    self.st:send(s)
    return ch
  end
  local c = sf_start(s, key, ch)
  -- spawn while holding the state: the goroutine cannot finish before it
  -- is sent back, and a spawn that fails (arguments that cannot be
  -- copied) leaves the state as it was
  local ok, err = pcall(go, sf_run, self, key, c, fn, ...)
  if not ok then
    s.calls[key] = nil
    s.nid = s.nid - 1
    self.st:send(s)
    error(err, 2)
  end
  self.st:send(s)
  return ch
end
SF.do_chan = SF.call_chan

-- g:forget(key): the next call for key runs fn again instead of joining
-- the one in flight (whose callers still get its result).
function SF.forget(self, key)
  local s = self.st:recv()
  local c = s.calls[key]
  if c then
    s.calls[key] = nil
    s.forgotten = s.forgotten or {}
    s.forgotten[c.id] = c
  end
  self.st:send(s)
end

-- --------------------------------------------------------------- after_func
-- Go's time.AfterFunc. Each arming is a generation {claim, stop}: a
-- goroutine waits for its timer or for stop to close; claim holds one
-- token, and whoever takes it decides: the goroutine when the timer fires
-- (then it runs fn), or stop/reset (then fn never runs, and the goroutine,
-- woken by stop's close, exits). A token is taken once, so a stop racing
-- with the firing gives exactly one of: fn runs, or stop returns true. The
-- handle's st (capacity 1) holds the current generation, so every copy of
-- the handle stops and resets the same timer.
-- (A C timer could start the goroutine only when it fires; this one is
-- parked meanwhile, one goroutine per pending after_func.)

local AF = {}
classes.afterfunc = AF

local function af_wait(t, gen, fn, ...)
  local i = go.select{{t.c, "recv"}, {gen.stop, "recv"}}
  if i == 1 then
    local _, won = gen.claim:tryrecv()
    if won then return fn(...) end
  else
    t:stop()
  end
end

-- Arms a generation: the goroutine and its timer.
local function af_arm(self, sec)
  local gen = {claim = go.chan(1), stop = go.chan()}
  gen.claim:send(true)
  local t = go.timer(sec)
  local ok, err = pcall(go, af_wait, t, gen, self.fn, table.unpack(self.args, 1, self.args.n))
  if not ok then
    t:stop()
    error(err, 3)
  end
  return gen
end

-- Takes gen's token (and wakes its goroutine to exit): true if fn had
-- neither run nor been stopped.
local function af_disarm(gen)
  local _, won = gen.claim:tryrecv()
  if won then gen.stop:close() end
  return won
end

local function checksec(sec, what, arg)
  if type(sec) ~= "number" then
    error(string.format("goro: %s: argument #%d must be a number of seconds, got %s",
      what, arg, type(sec)), 3)
  end
  if sec ~= sec then error("goro: " .. what .. ": the duration is NaN: pass a number of seconds", 3) end
  return sec > 0 and sec or 0 -- as Go: a duration <= 0 fires at once
end

-- go.after_func(sec, fn, ...) -> t. Calls fn(...) in its own goroutine
-- after sec seconds (fn and the arguments are copied there; sec <= 0:
-- at once). t:stop() -> true if that stopped fn from being called, false
-- if it had already started or been stopped (Go: it does not wait for fn
-- to return). t:reset(sec) -> true if fn was pending: it now runs sec
-- seconds from now; false if it had run or been stopped: it is scheduled
-- to run again. An error fn raises is a goroutine's error (Go: a panic).
function M.after_func(sec, fn, ...)
  sec = checksec(sec, "go.after_func", 1)
  if type(fn) ~= "function" then
    error("goro: go.after_func needs a function, got " .. type(fn), 2)
  end
  local self = new("afterfunc", {fn = fn, args = table.pack(...), st = go.chan(1)})
  self.st:send(af_arm(self, sec))
  return self
end

function AF.stop(self)
  local gen = self.st:recv()
  local won = af_disarm(gen)
  self.st:send(gen)
  return won
end

function AF.reset(self, sec)
  sec = checksec(sec, "t:reset", 2)
  local gen = self.st:recv()
  local won = af_disarm(gen)
  local ok, nextgen = pcall(af_arm, self, sec)
  self.st:send(ok and nextgen or gen)
  if not ok then error(nextgen, 0) end
  return won
end

M.waitgroup = go.waitgroup

return M
