-- print_spec.lua — goro's print (line-atomic, errors.c) prints what Lua's
-- print prints, whatever the lengths of its values: the separators fall
-- where its buffer grows (a first value of 2048 bytes once crashed it).
local lu = require "luaunit"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local run_lua = S.run_lua

-- The script prints, for each length n of the list, the line
-- ("x" * n) TAB "y" TAB 3, from the main state and from a goroutine.
local SCRIPT = [[
  local go = require "goro"
  local lens = {1, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, 8192}
  local function lines()
    for _, n in ipairs(lens) do print(string.rep("x", n), "y", 3) end
  end
  lines()
  local done = go.chan()
  go(function() lines(); done:send(true) end)
  done:recv()
]]

function test_print_writes_every_value_at_buffer_growth_boundaries()
  local rc, out, err = run_lua(SCRIPT)
  lu.assertEquals(rc, 0, err)
  local lens = {1, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, 8192}
  local want = {}
  for _ = 1, 2 do -- main, then the goroutine
    for _, n in ipairs(lens) do want[#want + 1] = string.rep("x", n) .. "\ty\t3\n" end
  end
  lu.assertEquals(out, table.concat(want))
end

function test_print_of_nothing_writes_an_empty_line()
  local rc, out, err = run_lua([[
    local go = require "goro"
    print()
    local done = go.chan()
    go(function() print(); print(nil, false); done:send(true) end)
    done:recv()
  ]])
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "\n\nnil\tfalse\n")
end

os.exit(lu.LuaUnit.run())
