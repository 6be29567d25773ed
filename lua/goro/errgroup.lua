-- goro.errgroup — golang.org/x/sync/errgroup: run a group of goroutines,
-- wait for them all, get the first error, and cancel the others' context
-- as soon as one fails.
--
--   local g, ctx = go.errgroup(parent_ctx)   -- parent optional
--   g:go(function() ... return err end)      -- or error(...) / return nil, err
--   local err = g:wait()
--
-- A task fails when it raises an error or returns an error value: its first
-- result, unless that is nil, false or true, or its second result when the
-- first is nil/false (Lua's `return nil, err`). A raised string error comes
-- back with the failing goroutine's traceback appended; other error values
-- come back as they are. The group is a handle whose state lives in a
-- waitgroup and channels, so g may be copied into the goroutines it runs
-- (to start more tasks from inside them).

local go = require "goro"
local context = require "goro.context"

local M = {}

local methods = {}
M.__name = "goro.errgroup"
M.__index = methods
M.__tostring = function(g) return string.format("goro.errgroup: %p", g) end

local function traceback(e)
  if type(e) == "string" then return debug.traceback(e, 2) end
  return e
end

-- The body of every task's goroutine.
-- Releases a task's slot and marks it done, however the task ends: also
-- when it ends with go.exit() (runtime.Goexit), which skips the code after
-- the call but runs <close> variables, as Go's errgroup runs its defers.
local function finisher(g)
  return setmetatable({}, {__close = function()
    if g.sem then g.sem:tryrecv() end
    g.wg:done()
  end})
end

local function run(g, fn, ...)
  local _ <close> = finisher(g)
  local ok, a, b = xpcall(fn, traceback, ...)
  local err
  if not ok then
    err = a
    if err == nil then err = "goro: errgroup task raised nil" end
  elseif a ~= nil and a ~= false and a ~= true then
    err = a
  elseif not a and b ~= nil then
    err = b
  end
  if err ~= nil then
    local sent, first = pcall(g.errc.trysend, g.errc, err)
    if not sent then -- an error value that cannot be copied: keep its text
      first = g.errc:trysend("goro: errgroup: " .. tostring(err))
    end
    if first then g.cancel() end
  end
end

-- go.errgroup([ctx]) -> g, gctx. gctx derives from ctx (default
-- context.background()) and is cancelled by the first failing task or when
-- wait returns, whichever comes first.
function M.errgroup(ctx)
  ctx = ctx or context.background()
  local gctx, cancel = context.with_cancel(ctx)
  local g = setmetatable({wg = go.waitgroup(), errc = go.chan(1), ctx = gctx,
    cancel = cancel}, M)
  return g, gctx
end
M.new = M.errgroup

local function checkfn(fn, what)
  if type(fn) ~= "function" then
    error("goro: errgroup " .. what .. " needs a function, got " .. type(fn), 3)
  end
end

-- g:go(fn, ...): runs fn(...) in a new goroutine of the group (fn and the
-- arguments are copied there). With a limit set, blocks until fewer than
-- that many tasks are running. Under a limit of 0 no task can ever start:
-- Go's Go blocks forever there; this raises instead (the bug at once,
-- not as a hang).
function methods.go(g, fn, ...)
  checkfn(fn, "go")
  if g.zero then
    error("goro: errgroup go: the limit is 0, so no task can ever start: set_limit(n) "
      .. "with n > 0, or -1 for no limit (try_go returns false under 0)", 2)
  end
  if g.sem then g.sem:send(true) end
  g.wg:add(1)
  go(run, g, fn, ...)
end

-- g:try_go(fn, ...) -> true if it started fn, false (and fn does not run)
-- if the limit is reached (always, under a limit of 0).
function methods.try_go(g, fn, ...)
  checkfn(fn, "try_go")
  if g.zero or g.sem and not g.sem:trysend(true) then return false end
  g.wg:add(1)
  go(run, g, fn, ...)
  return true
end

-- g:set_limit(n): at most n tasks run at once (n < 0: no limit; 0: none
-- may start, as Go's SetLimit(0)). As in Go, the limit may not change
-- while tasks run, and must be set before g is copied to other goroutines.
function methods.set_limit(g, n)
  if math.type(n) ~= "integer" then
    error("goro: errgroup limit must be an integer (negative for none), got "
      .. tostring(n), 2)
  end
  if g.sem and #g.sem > 0 then
    error(string.format("goro: errgroup: modify limit while %d goroutines in the group "
      .. "are still active", #g.sem), 2)
  end
  g.sem = n > 0 and go.chan(n) or nil
  g.zero = n == 0 or nil
end

-- g:wait() -> the first error, or nil. Blocks until every task has
-- returned, then cancels the group's context.
function methods.wait(g)
  g.wg:wait()
  g.cancel()
  local err, ok = g.errc:tryrecv()
  if ok then
    g.errc:trysend(err) -- keep it for later waits
    return err
  end
  return nil
end

-- g:context() -> the group's context.
function methods.context(g)
  return g.ctx
end

return M
