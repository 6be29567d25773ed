-- singleflight.lua — "Concurrency patterns on Golang: Singleflight": 5
-- concurrent requests for the same key; the heavy operation runs once and
-- all five get its result (shared = true). go.singleflight is
-- golang.org/x/sync/singleflight: g:call(key, fn) -> result, err, shared.
--
--   lua5.4 examples/singleflight.lua
--   GORO_TIME_SCALE=0.1 lua5.4 examples/singleflight.lua   (10x faster)

local go = require "goro"

local SCALE = tonumber(os.getenv("GORO_TIME_SCALE")) or 1

local group = go.singleflight()
local wg = go.waitgroup()

local key = "user:123"
local requests = 5

-- simulating a heavy operation (a database call or an external API)
local function expensive_op()
  print("Heavy operation started (actually once)")
  go.sleep(2 * SCALE) -- simulating long work
  print("Heavy operation completed")
  return "data_for_" .. key, nil
end

-- launching 5 concurrent requests
for i = 0, requests - 1 do
  wg:add(1)
  go(function(req_id)
    local result, err, shared = group:call(key, expensive_op)
    if err then
      print(string.format("Request %d: error %s", req_id, err))
    else
      print(string.format("Request %d: result = %s (shared = %s)", req_id, result,
        tostring(shared)))
    end
    wg:done()
  end, i)
end

wg:wait()
