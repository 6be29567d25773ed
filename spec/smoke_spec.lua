-- A quick end-to-end check that the installed module loads and runs a
-- goroutine; the area specs go deeper.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local recv = require("support").recv -- with a watchdog

function test_goroutine_sends_to_main()
  local ch = go.chan()
  go(function(x) ch:send(x * 2) end, 21)
  lu.assertEquals(recv(ch), 42)
end

os.exit(lu.LuaUnit.run())
