-- Errors a new user meets first say where and what to do: a method called
-- with a dot (`c.send(1)`) says to use a colon, and a value that cannot
-- cross between goroutines is reported at the line of the user's call
-- (send, spawn, select, a buffered send), not inside goro.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local lu = require "luaunit"
local go = require "goro"

local THIS = debug.getinfo(1, "S").short_src

-- The error f(...) raises (it must raise).
local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  lu.assertFalse(ok, "the call should have failed")
  return tostring(e)
end

function test_a_method_called_with_a_dot_says_to_use_a_colon()
  local c = go.chan(1)
  local calls = {
    send = function() c.send(1) end, recv = function() c.recv(1) end,
    trysend = function() c.trysend(1) end, tryrecv = function() c.tryrecv(1) end,
    close = function() c.close(1) end,
  }
  for m, f in pairs(calls) do
    local ok, e = pcall(f)
    lu.assertFalse(ok, m)
    lu.assertStrContains(e, "goro: bad argument #1 to '" .. m .. "': channel expected, got number")
    lu.assertStrContains(e, "with a colon (x:" .. m .. "(...), not x." .. m .. "(...))")
  end
  -- a method looked up by a computed name: the hint without the name
  local name = "send"
  local ok0, e0 = pcall(function() c[name](1) end)
  lu.assertFalse(ok0)
  lu.assertStrContains(e0, "call it as a method, with a colon (x:method(...), not x.method(...))")
  local wg = go.waitgroup()
  local ok, e = pcall(function() wg.add(1) end)
  lu.assertFalse(ok)
  lu.assertStrContains(e, "waitgroup expected, got number: call it as a method, with a colon")
  -- called right, nothing changes
  c:send(7)
  lu.assertEquals(c:recv(), 7)
end

function test_a_wrong_object_called_with_a_colon_has_no_colon_hint()
  local c, wg = go.chan(1), go.waitgroup()
  local ok, e = pcall(function() c.send(wg, 1) end)
  lu.assertFalse(ok)
  lu.assertStrContains(e, "channel expected, got waitgroup")
  local ok2, e2 = pcall(c.send, 5)
  lu.assertFalse(ok2)
  lu.assertStrContains(e2, "goro: bad argument #1: channel expected, got number")
  lu.assertNotStrContains(e2, "colon")
end

function test_a_transfer_error_names_the_line_of_the_users_call()
  local co = coroutine.create(print)
  local c = go.chan(1)
  local cases = {
    {"send", function() c:send({co = co}) end},
    {"trysend", function() c:trysend(co) end},
    {"spawn", function() go(function() return co end) end},
    {"spawn argument", function() go(print, co) end},
    {"select send", function() go.select{{c, "send", co}} end},
  }
  for _, case in ipairs(cases) do
    local line = debug.getinfo(case[2], "S").linedefined
    local e = err_of(case[2])
    lu.assertStrContains(e, THIS .. ":" .. line .. ": goro: cannot transfer", false,
                         case[1] .. ": " .. e)
  end
  lu.assertEquals(#c, 0, "nothing was sent")
end

os.exit(lu.LuaUnit.run())
