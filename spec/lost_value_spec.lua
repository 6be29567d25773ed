-- lost_value_spec.lua — nothing a channel carries vanishes silently (#14
-- item 3). What the receiver could never rebuild is refused at send time
-- (a module `require` cannot find by name); what fails for a reason of the
-- receiver's own (its memory limit, a module file gone since) says plainly
-- that the value was taken and is lost, with a goro: error, and the next
-- receive gets the next value.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv
io.stdout:setvbuf("line")

-- Writes module file <name>.lua (source src) in a new folder put first on
-- package.path, requires it, and returns the module and a function that
-- removes the file and restores package.path.
local function module_file(name, src)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. S.shq(dir)))
  local file = dir .. "/" .. name .. ".lua"
  local f = assert(io.open(file, "w"))
  f:write(src)
  f:close()
  local saved = package.path
  package.path = dir .. "/?.lua;" .. package.path
  local m = require(name)
  return m, function()
    package.path, package.loaded[name] = saved, nil
    os.remove(file)
    os.remove(dir)
  end
end

function test_a_module_set_by_hand_is_refused_at_send()
  package.loaded["fake.mod"] = {answer = 42}
  local c = go.chan(2)
  local ok, err = pcall(c.send, c, {mod = require "fake.mod"})
  package.loaded["fake.mod"] = nil
  lu.assertFalse(ok, "the send of a module no goroutine can require succeeded")
  err = tostring(err)
  lu.assertStrContains(err, "goro: ")
  lu.assertStrContains(err, "field 'mod'")
  lu.assertStrContains(err, "module 'fake.mod'")
  lu.assertStrContains(err, "send a plain copy")
  lu.assertEquals(#c, 0, "a refused value must not be in the channel")
  -- the channel still works
  c:send("next")
  lu.assertEquals(c:recv(), "next")
end

function test_a_preloaded_module_is_refused_too()
  package.preload["pre.mod"] = function() return {x = 1} end
  local m = require "pre.mod"
  local ok, err = pcall(go, function() return m.x end)
  package.loaded["pre.mod"], package.preload["pre.mod"] = nil, nil
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "upvalue 'm'")
  lu.assertStrContains(tostring(err), "module 'pre.mod'")
end

function test_a_module_file_still_travels_by_name()
  local m, cleanup = module_file("lv_mod", "return {tag = 'loaded in ' .. (require 'goro').id()}\n")
  local c, out = go.chan(1), go.chan(1)
  go(function() local v = c:recv(); out:send(v.m.tag) end)
  c:send({m = m})
  local tag = recv(out)
  cleanup()
  lu.assertNotEquals(tag, m.tag, "the receiver should require its own copy")
end

function test_a_value_over_the_receivers_memory_limit_is_reported_lost()
  local c, out = go.chan(4), go.chan(3)
  c:send(string.rep("x", 4e6))
  c:send("after")
  go.spawn({limit = 5e5}, function()
    local ok, err = pcall(c.recv, c)
    out:send(ok)
    out:send(tostring(err))
    out:send((c:recv()))
  end)
  lu.assertFalse(recv(out), "a 4 MB string fit in a 500 kB goroutine")
  local err = recv(out)
  lu.assertStrContains(err, "goro: ")
  lu.assertStrContains(err, "is lost")
  lu.assertStrContains(err, "memory limit")
  lu.assertEquals(recv(out), "after")
  lu.assertEquals(#c, 0)
end

function test_a_module_the_receiver_cannot_load_any_more_is_reported_lost()
  local m, cleanup = module_file("lv_gone", "return {x = 1}\n")
  local c, out = go.chan(2), go.chan(2)
  c:send({m = m}) -- checked here: the file is there
  cleanup() -- and now it is gone
  c:send("next")
  go(function()
    local ok, err = pcall(c.recv, c)
    out:send(tostring(err))
    out:send((c:recv()))
  end)
  local err = recv(out)
  lu.assertStrContains(err, "goro: ")
  lu.assertStrContains(err, "module 'lv_gone'")
  lu.assertStrContains(err, "is lost")
  lu.assertNil(err:find("\n"), "the whole search list: " .. err)
  lu.assertEquals(recv(out), "next")
end

function test_a_C_function_a_host_registered_travels_by_pointer()
  -- a C function in the main state's globals under a name of its own (what
  -- a host's lua_register does; here ipairs' iterator, a light C function
  -- no module exports) is not in a goroutine's globals: it crosses as a
  -- pointer, not as the name "_G.my_cfn" (which arrived as nil)
  my_cfn = ipairs({})
  local f = my_cfn
  local out = go.chan(1)
  go(function() out:send(select(2, f({"v"}, 0))) end)
  local ok, got = pcall(recv, out)
  my_cfn = nil
  lu.assertTrue(ok, got)
  lu.assertEquals(got, "v")
end

os.exit(lu.LuaUnit.run())
