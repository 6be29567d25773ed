-- goro.context — Go's context package: cancellation, deadlines and
-- request-scoped values that travel with the work, across goroutines.
--
--   local context = go.context
--   local ctx, cancel = context.with_timeout(context.background(), 2)
--   go(worker, ctx)            -- the worker selects on ctx:done()
--   ...
--   cancel()                   -- or `local ctx <close> = ...`
--
-- A context is a small table (a handle) shared by copy: its cancellation
-- state lives in two channels, `dc` (ctx:done(), closed on cancel: usable
-- in go.select like Go's <-ctx.Done()) and `st` (a capacity-1 channel that
-- holds the error, false until cancelled, and serialises cancellation), so
-- every copy of a context, in any goroutine, sees the same cancellation.
--
-- Cancelling a parent cancels its children: a derived context whose parent
-- can be cancelled (or that has a deadline) gets a watcher goroutine that
-- waits for the parent's done, its own done or its timer, whichever comes
-- first, and then exits. So, as in Go, always cancel what you derive (the
-- returned cancel function, or `<close>`): a context never cancelled keeps
-- its watcher waiting, and go.wait() reports it as blocked forever.
--
-- Values: keys are compared with ==, so use strings (or other values that
-- stay equal when copied): a table key sent on its own to another goroutine
-- arrives as a different table.

local go = require "goro"

local M = {}

local CANCELED = "context canceled"
local DEADLINE = "context deadline exceeded"

-- The errors ctx:err() returns.
M.canceled = CANCELED
M.deadline_exceeded = DEADLINE

local methods = {}
M.__name = "goro.context"
M.__index = methods

local names = {background = "context.Background", todo = "context.TODO",
  cancel = "context.WithCancel", deadline = "context.WithDeadline",
  value = "context.WithValue"}
M.__tostring = function(c)
  return string.format("%s: %p", names[rawget(c, "kind")] or "context", c)
end

-- Cancels c with err unless it is already cancelled (the first error stays).
local function cancel(c, err)
  local e = c.st:recv()
  if not e then
    e = err
    c.dc:close()
  end
  c.st:send(e)
end

-- `local ctx <close> = context.with_cancel(parent)`: cancels at scope end.
-- (A value context only passes its parent's through: closing it does not
-- cancel the parent.)
M.__close = function(c)
  if rawget(c, "own") then cancel(c, CANCELED) end
end

-- ctx:done() -> a channel closed when ctx is cancelled, or nil for a
-- context that can never be cancelled (background), like Go's nil Done
-- channel: a nil case in go.select never fires.
function methods.done(c)
  return c.dc
end

-- ctx:err() -> nil while ctx is live, then "context canceled" or
-- "context deadline exceeded" (context.canceled / .deadline_exceeded).
local function errof(c)
  local d = c.dc
  if not d or not d:closed() then return nil end
  local e = c.st:recv()
  c.st:send(e)
  return e
end
methods.err = errof

-- ctx:deadline() -> t, true when ctx has a deadline (t on go.now()'s
-- clock), else nil, false.
function methods.deadline(c)
  return c.dl, c.dl ~= nil
end

-- ctx:value(key) -> the value of the nearest with_value(…, key, v) in ctx's
-- chain, or nil.
function methods.value(c, key)
  while c do
    if c.kind == "value" and c.key == key then return c.val end
    c = c.parent
  end
  return nil
end

local background = setmetatable({kind = "background"}, M)
local todo = setmetatable({kind = "todo"}, M)

-- context.background() -> the root context: never cancelled, no deadline,
-- no values.
function M.background() return background end

-- context.todo() -> like background, for code not yet given a context.
function M.todo() return todo end

local function checkparent(parent, level)
  if getmetatable(parent) ~= M then
    error("goro: cannot create a context from " .. (parent == nil and "a nil parent"
      or "a " .. type(parent)) .. ": pass context.background() or a derived context",
      level + 1)
  end
end

-- The watcher goroutine of a derived context (see the header).
local function watch(parent, c, secs)
  local t = secs and go.timer(secs)
  local i = go.select{{parent.dc, "recv"}, {c.dc, "recv"}, {t and t.c, "recv"}}
  if t then t:stop() end
  if i == 1 then
    cancel(c, errof(parent))
  elseif i == 3 then
    cancel(c, DEADLINE)
  end
end

local function derive(parent, kind, deadline)
  local c = setmetatable({kind = kind, parent = parent, own = true, dc = go.chan(),
    st = go.chan(1), dl = deadline or parent.dl}, M)
  c.st:send(false)
  local perr = errof(parent)
  -- one reading of the clock: a second one, later, could make the
  -- remaining time negative (go.timer refuses that)
  local left = deadline and deadline - go.now()
  if perr then
    cancel(c, perr)
  elseif left and left <= 0 then
    cancel(c, DEADLINE)
  elseif parent.dc or deadline then
    go(watch, parent, c, left)
  end
  return c, function() cancel(c, CANCELED) end
end

-- context.with_cancel(parent) -> ctx, cancel. ctx is done when cancel() is
-- called or parent is done, whichever happens first. cancel may be called
-- many times, from any goroutine; only the first has an effect.
function M.with_cancel(parent)
  checkparent(parent, 2)
  return derive(parent, "cancel")
end

-- context.with_deadline(parent, t) -> ctx, cancel. Like with_cancel, and
-- also done at time t (go.now()'s clock), with err "context deadline
-- exceeded". A parent with an earlier deadline keeps its own.
function M.with_deadline(parent, t)
  checkparent(parent, 2)
  if type(t) ~= "number" then
    error("goro: with_deadline needs a time (go.now() + seconds), got " .. type(t), 2)
  end
  if parent.dl and parent.dl <= t then
    return derive(parent, "cancel")
  end
  return derive(parent, "deadline", t)
end

-- context.with_timeout(parent, secs) -> ctx, cancel:
-- with_deadline(parent, go.now() + secs).
function M.with_timeout(parent, secs)
  checkparent(parent, 2)
  if type(secs) ~= "number" then
    error("goro: with_timeout needs a number of seconds, got " .. type(secs), 2)
  end
  return M.with_deadline(parent, go.now() + secs)
end

-- context.with_value(parent, key, val) -> ctx carrying key = val, cancelled
-- with its parent (it has no cancel of its own).
function M.with_value(parent, key, val)
  checkparent(parent, 2)
  if key == nil then error("goro: with_value: nil key", 2) end
  return setmetatable({kind = "value", parent = parent, key = key, val = val,
    dc = parent.dc, st = parent.st, dl = parent.dl}, M)
end

-- context.is_context(v) -> true if v is a context.
function M.is_context(v)
  return getmetatable(v) == M
end

return M
