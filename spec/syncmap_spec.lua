-- syncmap_spec.lua — go.syncmap (sync.Map): a table shared by reference
-- between goroutines; values copied in and out; update is a CAS loop, so
-- concurrent updates of one key lose nothing.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local for_procs = S.for_procs

function test_load_store_delete_as_sync_map()
  local m = go.syncmap()
  lu.assertEquals({m:load("a")}, {nil, false})
  m:store("a", {x = 1, y = {2, 3}})
  local v, ok = m:load("a")
  lu.assertTrue(ok)
  lu.assertEquals(v, {x = 1, y = {2, 3}})
  v.x = 99 -- a copy: the map keeps its own
  lu.assertEquals(m:load("a").x, 1)
  lu.assertEquals({m:load_or_store("a", 5)}, {{x = 1, y = {2, 3}}, true})
  lu.assertEquals({m:load_or_store("b", 5)}, {5, false})
  lu.assertEquals({m:swap("b", 6)}, {5, true})
  lu.assertEquals({m:swap("c", 7)}, {nil, false})
  lu.assertEquals({m:load_and_delete("c")}, {7, true})
  lu.assertEquals({m:load_and_delete("c")}, {nil, false})
  lu.assertEquals(m:len(), 2)
  lu.assertEquals(#m, 2)
  m:delete("a")
  m:delete("nope")
  m:store("b", nil) -- storing nil deletes, as in a Lua table
  lu.assertEquals(#m, 0)
end

function test_keys_are_strings_numbers_booleans_as_in_a_lua_table()
  local m = go.syncmap()
  m:store(1, "int")
  lu.assertEquals(m:load(1.0), "int", "1.0 and 1 are one key")
  m:store(1.5, "float")
  m:store(true, "yes")
  m:store(false, "no")
  m:store("1", "string")
  lu.assertEquals({m:load(1), m:load(1.5), m:load(true), m:load(false), (m:load("1"))},
    {"int", "float", "yes", "no", "string"})
  local keys = {}
  for k, v in m:range() do keys[#keys + 1] = {math.type(k) or type(k), v} end
  table.sort(keys, function(a, b) return a[2] < b[2] end)
  lu.assertEquals(keys, {{"float", "float"}, {"integer", "int"}, {"boolean", "no"},
    {"string", "string"}, {"boolean", "yes"}})
  for _, bad in ipairs{{}, print, 0 / 0} do
    local ok, err = pcall(m.store, m, bad, 1)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro: m:store: the key")
  end
  local ok, err = pcall(m.store, m, "f", io.stdout)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "the value stored")
  lu.assertEquals(#m, 5, "a refused store changes nothing")
end

function test_range_with_a_callback_stops_when_it_returns_false()
  local m = go.syncmap()
  for i = 1, 10 do m:store(i, i * i) end
  local n, sum = 0, 0
  m:range(function(k, v) n = n + 1; sum = sum + v; return n < 4 end)
  lu.assertEquals(n, 4)
  n, sum = 0, 0
  m:range(function(k, v)
    n, sum = n + 1, sum + v
    m:delete(k) -- the callback may change the map: range holds no lock
  end)
  lu.assertEquals({n, sum, #m}, {10, 385, 0})
  m:store("x", 1)
  local ok, err = pcall(m.range, m, function() error("stop here") end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "stop here")
end

-- N goroutines each m:update("n", +1) M times, with fn's body in between
-- (between(i)); the total must be exactly N*M. Returns how often fn ran.
local function updates(N, M, between)
  local m, calls, wg = go.syncmap(), go.atomic(), go.waitgroup()
  for _ = 1, N do
    wg:add(1)
    go(function()
      for i = 1, M do
        m:update("n", function(old)
          calls:add(1)
          between(i)
          return (old or 0) + 1
        end)
      end
      wg:done()
    end)
  end
  wg:wait()
  lu.assertEquals(m:load("n"), N * M)
  return calls:load()
end

for_procs("test_concurrent_updates_of_one_key_lose_nothing", {1, 2, 4}, function()
  updates(8, S.scaled(300, 50), function() end)
end)

for_procs("test_an_update_whose_fn_parks_is_retried_and_loses_nothing", {1, 2}, function()
  local N, M = 4, S.scaled(100, 20)
  -- go.yield: the others update meanwhile, so this result must not be stored
  local calls = updates(N, M, function() go.yield() end)
  lu.assertTrue(calls > N * M, "no update was retried: the test proves nothing")
end)

function test_range_and_update_callbacks_park_instead_of_blocking_the_thread()
  local m, ch, out = go.syncmap(), go.chan(), go.chan(1)
  for i = 1, 3 do m:store(i, i) end
  local before = go.stats().handoffs
  go(function()
    local sum = 0
    m:range(function(_, v) sum = sum + v + ch:recv() end)
    m:update("x", function() return ch:recv() end)
    out:send(sum + m:load("x"))
  end)
  for _ = 1, 4 do ch:send(10) end
  lu.assertEquals(S.recv(out), 46)
  lu.assertEquals(go.stats().handoffs, before, "a receive in the callback blocked its thread")
end

for_procs("test_goroutines_share_the_map_every_key_once", {1, 2, 4}, function()
  local N, M = 6, S.scaled(500, 50)
  local m, wg = go.syncmap(), go.waitgroup()
  for g = 1, N do
    wg:add(1)
    go(function()
      for i = 1, M do
        local _, loaded = m:load_or_store(i, g) -- each key claimed by one goroutine
        if not loaded then m:update("claims", function(c) return (c or 0) + 1 end) end
        m:store(("g%d.%d"):format(g, i), {g = g, i = i})
      end
      wg:done()
    end)
  end
  wg:wait()
  lu.assertEquals(m:load("claims"), M)
  lu.assertEquals(#m, M + 1 + N * M)
  local count = 0
  m:range(function(k, v)
    if type(k) == "string" and k:sub(1, 1) == "g" then
      lu.assertEquals(("g%d.%d"):format(v.g, v.i), k)
      count = count + 1
    end
  end)
  lu.assertEquals(count, N * M)
end)

function test_update_returns_the_new_value_and_nil_deletes()
  local m = go.syncmap()
  lu.assertEquals(m:update("k", function(old) lu.assertNil(old) return "v" end), "v")
  lu.assertNil(m:update("k", function(old) lu.assertEquals(old, "v") return nil end))
  lu.assertEquals({m:load("k")}, {nil, false})
  local ok, err = pcall(m.update, m, "k", function() error("boom") end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "boom")
  lu.assertEquals(#m, 0, "a failing fn stores nothing")
  lu.assertStrContains(select(2, pcall(m.update, m, "k", 1)), "goro: m:update: argument #3")
end

function test_channels_and_atomics_stored_are_shared_not_copied()
  local m = go.syncmap()
  local c = go.chan(1)
  m:store("c", c)
  m:store("a", go.atomic())
  go(function() m:load("c"):send("hi"); m:load("a"):add(3) end)
  lu.assertEquals(S.recv((m:load("c"))), "hi")
  go.wait()
  lu.assertTrue(rawequal(m:load("c"), c))
  lu.assertEquals(m:load("a"):load(), 3)
end

os.exit(lu.LuaUnit.run())
