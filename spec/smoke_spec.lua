-- A quick end-to-end check that the installed module loads and runs a
-- goroutine; the area specs go deeper.
local lu = require "luaunit"
local go = require "goro"

function test_goroutine_sends_to_main()
  local ch = go.chan()
  go(function(x) ch:send(x * 2) end, 21)
  lu.assertEquals(ch:recv(), 42)
end

os.exit(lu.LuaUnit.run())
