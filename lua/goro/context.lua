-- goro.context — Go's context package: cancellation, deadlines and
-- request-scoped values that travel with the work, across goroutines.
--
--   local context = go.context
--   local ctx, cancel = context.with_timeout(context.background(), 2)
--   go(worker, ctx)            -- the worker selects on ctx:done()
--   ...
--   cancel()                   -- or `local ctx <close> = ...`
--
-- A context is a small table (a handle) shared by copy; what every copy
-- must see lives in its node `n` (lua/lcontext.c), a goro object shared by
-- reference: the done channel, the error and cause, the children, the
-- deadline's timer, the functions after_func waits with. The nodes form the
-- cancellation tree in C, so cancel() has cancelled every descendant (err
-- set, done closed) before it returns, from any goroutine, as in Go; a
-- deadline fires from the timer heap; no context costs a goroutine. As in
-- Go, cancel what you derive (the returned cancel function, or `<close>`):
-- it unlinks the context from its parent and stops its timer.
--
-- Values: keys are compared with ==, so use strings (or other values that
-- stay equal when copied): a table key sent on its own to another goroutine
-- arrives as a different table. Values are looked up parent-ward in the
-- handle's chain, which is copied with it by the transfer rules.

local go = require "goro"
local core = go.__context

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

-- `local ctx <close> = context.with_cancel(parent)`: cancels at scope end.
-- (A value context only passes its parent's through: closing it does not
-- cancel the parent.)
M.__close = function(c)
  if rawget(c, "own") then c.n:cancel() end
end

-- ctx:done() -> a channel closed when ctx is cancelled, or nil for a
-- context that can never be cancelled (background), like Go's nil Done
-- channel: a nil case in go.select never fires.
-- ctx:err() -> nil while ctx is live, then "context canceled" or
-- "context deadline exceeded" (context.canceled / .deadline_exceeded).
-- ctx:cause() / context.cause(ctx) -> the cause given to the cancel of
-- with_cancel_cause (or of an ancestor's), else ctx:err().
-- Each asks the context's node in the shared tree (nil for background).
for _, name in ipairs{"done", "err", "cause"} do
  methods[name] = function(c)
    local n = c.n
    if n then return n[name](n) end
    return nil -- one value: {ctx:done(), "recv"} keeps its shape
  end
end

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

local function derive(parent, kind, deadline, cause)
  local n = core.new(parent.n, deadline and deadline - go.now(), cause)
  local c = setmetatable({kind = kind, parent = parent, own = true, n = n,
    dl = deadline or parent.dl}, M)
  return c, n
end

-- context.with_cancel(parent) -> ctx, cancel. ctx is done when cancel() is
-- called or parent is done, whichever happens first; cancel() returns once
-- ctx and every context derived from it are done. cancel may be called
-- many times, from any goroutine; only the first has an effect.
function M.with_cancel(parent)
  checkparent(parent, 2)
  local c, n = derive(parent, "cancel")
  return c, function() n:cancel() end
end

-- context.with_cancel_cause(parent) -> ctx, cancel(cause): as with_cancel;
-- cancel's cause (any value that can cross, copied) is what context.cause
-- returns for ctx and its descendants; ctx:err() is still "context
-- canceled".
function M.with_cancel_cause(parent)
  checkparent(parent, 2)
  local c, n = derive(parent, "cancel")
  return c, function(cause) n:cancel(cause) end
end

-- context.cause(ctx) -> ctx:cause() (Go's context.Cause).
function M.cause(c)
  checkparent(c, 2)
  return c:cause()
end

local function deadline(parent, t, cause, fn)
  checkparent(parent, 3)
  if type(t) ~= "number" or t ~= t then
    error("goro: " .. fn .. " needs a time (go.now() + seconds), got " .. tostring(t), 3)
  end
  local c, n
  if parent.dl and parent.dl <= t then
    c, n = derive(parent, "cancel")
  else
    c, n = derive(parent, "deadline", t, cause)
  end
  return c, function() n:cancel() end
end

local function timeout(parent, secs, cause, fn)
  checkparent(parent, 3)
  if type(secs) ~= "number" or secs ~= secs then
    error("goro: " .. fn .. " needs a number of seconds, got " .. tostring(secs), 3)
  end
  return deadline(parent, go.now() + secs, cause, fn)
end

-- context.with_deadline(parent, t) -> ctx, cancel. Like with_cancel, and
-- also done at time t (go.now()'s clock), with err "context deadline
-- exceeded". A parent with an earlier deadline keeps its own.
function M.with_deadline(parent, t) return deadline(parent, t, nil, "with_deadline") end

-- context.with_timeout(parent, secs) -> ctx, cancel:
-- with_deadline(parent, go.now() + secs).
function M.with_timeout(parent, secs) return timeout(parent, secs, nil, "with_timeout") end

-- context.with_deadline_cause(parent, t, cause) and
-- context.with_timeout_cause(parent, secs, cause): as with_deadline and
-- with_timeout; when the deadline passes, context.cause(ctx) is cause.
function M.with_deadline_cause(parent, t, cause)
  return deadline(parent, t, cause, "with_deadline_cause")
end
function M.with_timeout_cause(parent, secs, cause)
  return timeout(parent, secs, cause, "with_timeout_cause")
end

-- context.with_value(parent, key, val) -> ctx carrying key = val, cancelled
-- with its parent (it has no cancel of its own).
function M.with_value(parent, key, val)
  checkparent(parent, 2)
  if key == nil then error("goro: with_value: nil key", 2) end
  return setmetatable({kind = "value", parent = parent, key = key, val = val,
    n = parent.n, dl = parent.dl}, M)
end

-- context.after_func(ctx, f) -> stop. f (copied, as a goroutine's function)
-- runs in its own goroutine once ctx is done, at once if it is. stop() ->
-- true if it kept f from being started, false if f was started or stop was
-- called before. A context that can never be done never runs f.
function M.after_func(c, f)
  checkparent(c, 2)
  if type(f) ~= "function" then
    error("goro: context.after_func needs a function, got " .. type(f), 2)
  end
  local n = c.n
  if not n then
    local stopped = go.atomic(0)
    return function() return stopped:cas(0, 1) end
  end
  local id = n:after_func(f)
  return function() return id ~= 0 and n:stop_after(id) end
end

-- context.is_context(v) -> true if v is a context.
function M.is_context(v)
  return getmetatable(v) == M
end

return M
