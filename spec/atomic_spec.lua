-- atomic_spec.lua — go.atomic (sync/atomic): one integer shared by
-- reference by every goroutine that holds it; each operation is atomic, so
-- N goroutines x M adds give exactly N*M, and a CAS loop loses nothing.
-- go.atomic_value (atomic.Value): any value, copied in and out; its CAS
-- compares simple values by value.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local for_procs = S.for_procs

function test_operations_return_what_go_returns()
  local a = go.atomic()
  lu.assertEquals(a:load(), 0)
  a:store(5)
  lu.assertEquals(a:add(3), 8, "add returns the new value")
  lu.assertEquals(a:add(), 9, "add() adds 1")
  lu.assertEquals(a:add(-9), 0)
  lu.assertEquals(a:swap(7), 0, "swap returns the old value")
  lu.assertTrue(a:cas(7, 10))
  lu.assertFalse(a:cas(7, 11), "cas fails when the value is not old")
  lu.assertTrue(a:compare_and_swap(10, 12))
  lu.assertEquals(a:load(), 12)
  lu.assertEquals(math.type(a:load()), "integer")
  lu.assertEquals(go.atomic(math.maxinteger):add(1), math.mininteger, "wraps as Lua integers")
  lu.assertStrContains(tostring(a), "goro.atomic(12)")
end

function test_bad_arguments_are_goro_errors()
  local a = go.atomic(1)
  for _, f in ipairs{function() go.atomic(1.5) end, function() go.atomic("x") end,
                     function() a:store() end, function() a:store(0.5) end,
                     function() a:cas(1) end, function() a:add("x") end,
                     function() a.load(go.chan()) end} do
    local ok, err = pcall(f)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro:")
  end
  lu.assertStrContains(select(2, pcall(a.load, go.chan())), "atomic expected, got channel")
end

for_procs("test_concurrent_adds_are_never_lost", {1, 2, 4}, function()
  local N, M = 8, S.scaled(2000, 200)
  local a, wg = go.atomic(), go.waitgroup()
  for _ = 1, N do
    wg:add(1)
    go(function()
      for _ = 1, M do a:add(1) end
      wg:done()
    end)
  end
  wg:wait()
  lu.assertEquals(a:load(), N * M)
end)

for_procs("test_a_cas_loop_loses_nothing_and_swap_hands_out_each_value_once",
  {1, 2, 4}, function()
  local N, M = 6, S.scaled(1000, 100)
  local a, ticket, wg = go.atomic(), go.atomic(), go.waitgroup()
  local seen = go.chan(N * M)
  for _ = 1, N do
    wg:add(1)
    go(function()
      for _ = 1, M do
        repeat local v = a:load() until a:cas(v, v + 2)
        seen:send(ticket:add(1)) -- each ticket number exactly once
      end
      wg:done()
    end)
  end
  wg:wait()
  lu.assertEquals(a:load(), 2 * N * M)
  seen:close()
  local got = {}
  for v in seen:range() do
    lu.assertNil(got[v], "ticket " .. v .. " given twice")
    got[v] = true
  end
  for i = 1, N * M do lu.assertTrue(got[i], "ticket " .. i .. " lost") end
end)

function test_an_atomic_inside_a_table_is_the_same_object_in_a_goroutine()
  local cfg = {hits = go.atomic()}
  local out = go.chan(1)
  go(function() cfg.hits:add(5); out:send(cfg.hits) end)
  local back = S.recv(out)
  lu.assertTrue(rawequal(back, cfg.hits), "one userdata per object in a state")
  lu.assertEquals(cfg.hits:load(), 5)
end

function test_atomic_value_load_store_swap_cas()
  local v = go.atomic_value()
  lu.assertNil(v:load())
  lu.assertTrue(v:cas(nil, "a"), "nil is the empty value")
  lu.assertFalse(v:cas("b", 1))
  lu.assertTrue(v:cas("a", {x = 1}))
  local t = v:load()
  lu.assertEquals(t, {x = 1})
  t.x = 2 -- a copy
  lu.assertEquals(v:load().x, 1)
  lu.assertFalse(v:cas(nil, 0), "a table equals no simple old")
  lu.assertEquals(v:swap(3), {x = 1})
  lu.assertTrue(v:cas(3.0, true), "numbers compare as Lua's ==")
  lu.assertTrue(v:compare_and_swap(true, 0 / 0))
  lu.assertFalse(v:cas(0 / 0, 1), "NaN equals nothing")
  v:store("s")
  lu.assertEquals(go.atomic_value(5):load(), 5)
  local ok, err = pcall(v.cas, v, {}, 1)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro: av:cas: old must be nil, a boolean, a number or a string")
  ok, err = pcall(v.store, v, io.stdout)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "the value stored")
  lu.assertEquals(v:load(), "s", "a refused store changes nothing")
end

for_procs("test_atomic_value_cas_loop_on_strings_loses_nothing", {1, 2, 4}, function()
  local N, M = 6, S.scaled(300, 50)
  local v, wg = go.atomic_value(""), go.waitgroup()
  for g = 1, N do
    wg:add(1)
    go(function()
      local c = string.char(64 + g)
      for _ = 1, M do
        repeat local old = v:load() until v:cas(old, old .. c)
      end
      wg:done()
    end)
  end
  wg:wait()
  local s = v:load()
  lu.assertEquals(#s, N * M)
  for g = 1, N do
    local _, n = s:gsub(string.char(64 + g), "")
    lu.assertEquals(n, M, "goroutine " .. g .. "'s appends")
  end
end)

os.exit(lu.LuaUnit.run())
