-- errgroup.lua — "Concurrency patterns on Golang: ErrGroup": three
-- goroutines in a group; the second fails after 0.5 s, which cancels the
-- group's context, so the first (1 s) and the third (3 s) stop early.
-- g:wait() returns the first error.
--
--   lua5.4 examples/errgroup.lua
--   GORO_TIME_SCALE=0.1 lua5.4 examples/errgroup.lua   (10x faster)

local go = require "goro"
local context = go.context

local SCALE = tonumber(os.getenv("GORO_TIME_SCALE")) or 1

-- create an errgroup with a context
local g, ctx = go.errgroup(context.background())

-- a goroutine that would complete successfully
g:go(function()
  local case = go.select{{go.after(1 * SCALE), "recv"}, {ctx:done(), "recv"}}
  if case == 1 then
    print("Goroutine 1: success")
    return nil
  end
  print("Goroutine 1: canceled")
  return ctx:err()
end)

-- a goroutine that fails with an error
g:go(function()
  local case = go.select{{go.after(0.5 * SCALE), "recv"}, {ctx:done(), "recv"}}
  if case == 1 then
    print("Goroutine 2: error!")
    return "something went wrong in goroutine 2"
  end
  print("Goroutine 2: canceled")
  return ctx:err()
end)

-- a goroutine that should be cancelled
g:go(function()
  local case = go.select{{go.after(3 * SCALE), "recv"}, {ctx:done(), "recv"}}
  if case == 1 then
    print("Goroutine 3: success (but this won't happen)")
    return nil
  end
  print("Goroutine 3: canceled")
  return ctx:err() -- "context canceled"
end)

-- wait for all goroutines to complete and get the first error
local err = g:wait()
if err then
  print("Error: " .. tostring(err))
else
  print("All successful")
end

go.sleep(1 * SCALE) -- give time to see the output
