-- transfer_spec.lua — values crossing states (DESIGN.md "Transfer"):
-- copies of plain data, tables with their shape, functions with their
-- upvalues and globals, C functions, modules; goro objects by reference;
-- clear refusals for what cannot move.

-- A global the user defined before requiring goro: it is the user's too.
function defined_before_goro(x) return x + 1000 end

local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local recv = require("support").recv -- a receive with a watchdog: fails, never hangs

-- Sends each argument to a fresh goroutine (a spawn transfer), which sends
-- it back through a channel (a channel transfer); returns what main got.
local function roundtrip(...)
  local c = go.chan()
  go(function(...)
    c:send({n = select("#", ...), ...})
  end, ...)
  local r = recv(c)
  go.wait()
  return table.unpack(r, 1, r.n)
end

-- Runs fn(...) in a goroutine; returns its results, or raises its error.
local function run_in_goroutine(fn, ...)
  local c = go.chan()
  go(function(...)
    c:send(table.pack(pcall(fn, ...)))
  end, ...)
  local r = recv(c)
  go.wait()
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

local function refused(fn, ...)
  local before = go.numgoroutine()
  local ok, err = pcall(fn, ...)
  lu.assertFalse(ok, "the transfer was not refused")
  lu.assertEquals(type(err), "string")
  lu.assertStrContains(err, "goro:")
  lu.assertEquals(go.numgoroutine(), before, "a refused spawn started a goroutine")
  return err
end

---------------------------------------------------------------------------
-- plain data

function test_nil_booleans_numbers_and_strings_cross_unchanged()
  local vals = {n = 9, nil, true, false, 42, -7, 2.5, "text", "", nil}
  local back = table.pack(roundtrip(table.unpack(vals, 1, vals.n)))
  lu.assertEquals(back.n, vals.n)
  for i = 1, vals.n do
    lu.assertEquals(back[i], vals[i], "value " .. i)
    lu.assertEquals(math.type(back[i]), math.type(vals[i]), "subtype of value " .. i)
  end
end

function test_integers_stay_integers_and_floats_stay_floats()
  local vals = {1, 1.0, 0, 0.0, math.maxinteger, math.mininteger, 2 ^ 63, -2 ^ 63,
                1 << 62, 1e-300, math.huge, -math.huge}
  local back = {roundtrip(table.unpack(vals))}
  local nested = roundtrip({vals})[1]
  local seen_in_goroutine = run_in_goroutine(function(t)
    local types = {}
    for i, v in ipairs(t) do types[i] = math.type(v) end
    return types
  end, vals)
  for i, v in ipairs(vals) do
    lu.assertEquals(math.type(back[i]), math.type(v), "argument " .. tostring(v))
    lu.assertEquals(math.type(nested[i]), math.type(v), "table item " .. tostring(v))
    lu.assertEquals(seen_in_goroutine[i], math.type(v), "in goroutine " .. tostring(v))
    lu.assertEquals(back[i], v)
    lu.assertEquals(nested[i], v)
  end
  local nan = roundtrip(0 / 0)
  lu.assertTrue(nan ~= nan)
  lu.assertEquals(1 / roundtrip(-0.0), -math.huge)
end

function test_binary_strings_arrive_byte_exact()
  local all = {}
  for b = 0, 255 do all[#all + 1] = string.char(b) end
  local s = table.concat(all)
  lu.assertEquals(roundtrip(s), s)
  lu.assertEquals(roundtrip({s = s}).s, s)
end

function test_large_strings_arrive_intact()
  local parts = {}
  for i = 1, 1024 * 1024 / 16 do parts[i] = string.format("%015d\n", i) end
  local big = table.concat(parts)
  lu.assertEquals(#big, 1024 * 1024)
  local back, len, head, tail = run_in_goroutine(function(s)
    return s, #s, s:sub(1, 16), s:sub(-16)
  end, big)
  lu.assertEquals(len, #big)
  lu.assertEquals(head, "000000000000001\n")
  lu.assertEquals(tail, "000000000065536\n")
  lu.assertTrue(back == big, "the 1 MB string changed on the way")
  -- through a buffered channel, inside a table, several at once
  local c = go.chan(4)
  c:send(big)
  c:send({big, big})
  lu.assertTrue(recv(c) == big)
  local t = recv(c)
  lu.assertTrue(t[1] == big and t[2] == big)
end

---------------------------------------------------------------------------
-- tables

function test_nested_tables_arrive_as_deep_copies()
  local orig = {a = 1, b = {c = {d = {"x", "y", {z = true}}}}, [10] = "ten", [2.5] = "float key",
                [true] = "bool key", list = {1, 2, 3, nil, 5}}
  local copy = roundtrip(orig)
  lu.assertEquals(copy, orig)
  lu.assertFalse(rawequal(copy, orig))
  lu.assertFalse(rawequal(copy.b, orig.b))
  copy.b.c.d[1] = "changed"
  lu.assertEquals(orig.b.c.d[1], "x", "the copy shares storage with the original")
  lu.assertEquals(copy[2.5], "float key")
  lu.assertEquals(copy[true], "bool key")
  lu.assertEquals(copy.list[5], 5)
end

function test_table_keys_that_are_tables_are_copied_too()
  local k1, k2 = {name = "k1"}, {name = "k2"}
  local t = {[k1] = 1, [k2] = 2, ref = k1}
  local copy = roundtrip(t)
  local found = {}
  for k, v in pairs(copy) do
    if type(k) == "table" then found[k.name] = v end
  end
  lu.assertEquals(found, {k1 = 1, k2 = 2})
  lu.assertEquals(copy[copy.ref], 1, "a key and a value that are one table became two")
end

function test_cycles_are_preserved()
  local t = {name = "root"}
  t.self = t
  t.child = {parent = t}
  t.child.child = t.child
  local copy = roundtrip(t)
  lu.assertTrue(rawequal(copy.self, copy))
  lu.assertTrue(rawequal(copy.child.parent, copy))
  lu.assertTrue(rawequal(copy.child.child, copy.child))
  lu.assertEquals(copy.name, "root")
  -- a goroutine sees the cycle too
  lu.assertTrue(run_in_goroutine(function(x) return rawequal(x.self.self, x) end, t))
end

function test_shared_subtables_stay_shared_within_one_message()
  local shared = {v = 1}
  local t = {a = shared, b = shared, list = {shared, shared}}
  local copy = roundtrip(t)
  lu.assertTrue(rawequal(copy.a, copy.b))
  lu.assertTrue(rawequal(copy.a, copy.list[1]))
  lu.assertTrue(rawequal(copy.list[1], copy.list[2]))
  lu.assertFalse(rawequal(copy.a, shared))
  -- across arguments of one spawn as well
  local x, y = roundtrip(shared, shared)
  lu.assertTrue(rawequal(x, y), "one table passed twice became two")
  -- separate messages are separate copies
  local c = go.chan(2)
  c:send(shared)
  c:send(shared)
  lu.assertFalse(rawequal(recv(c), recv(c)))
end

function test_metatables_are_preserved()
  local Point = {}
  Point.__index = Point
  function Point.new(x, y) return setmetatable({x = x, y = y}, Point) end
  function Point:len2() return self.x * self.x + self.y * self.y end
  Point.__tostring = function(p) return "(" .. p.x .. "," .. p.y .. ")" end
  Point.__add = function(a, b) return Point.new(a.x + b.x, a.y + b.y) end
  Point.__eq = function(a, b) return a.x == b.x and a.y == b.y end
  local a, b = Point.new(1, 2), Point.new(3, 4)
  local s, len2, eq, samemt, sameup = run_in_goroutine(function(p, q)
    local r = p + q
    return tostring(r), r:len2(), r == Point.new(4, 6),
           getmetatable(p) == getmetatable(q), getmetatable(p) == Point
  end, a, b)
  lu.assertEquals(s, "(4,6)")
  lu.assertEquals(len2, 52)
  lu.assertTrue(eq)
  lu.assertTrue(samemt, "two values with one metatable got two metatables")
  lu.assertTrue(sameup, "the metatable and the upvalue Point became two tables")
  local back = roundtrip(a)
  lu.assertEquals(tostring(back), "(1,2)")
  lu.assertEquals(back:len2(), 5)
  lu.assertTrue(back == Point.new(1, 2))
end

function test_metatable_with_index_table_and_call()
  local defaults = {color = "red"}
  local obj = setmetatable({}, {__index = defaults, __call = function(self, x) return x * 3 end})
  local color, called = run_in_goroutine(function(o) return o.color, o(14) end, obj)
  lu.assertEquals(color, "red")
  lu.assertEquals(called, 42)
end

function test_nesting_within_the_limit_is_fine()
  local t = {}
  for i = 1, 150 do t = {t, i} end
  local depth, n = run_in_goroutine(function(x)
    local d = 0
    while x[1] do x = x[1]; d = d + 1 end
    return d
  end, t)
  lu.assertEquals(depth, 150)
end

function test_tables_nested_beyond_the_limit_give_a_clear_error()
  local t = {}
  for _ = 1, 250 do t = {t} end
  local err = refused(go.spawn, function() end, t)
  lu.assertStrContains(err, "nesting is too deep")
  lu.assertStrContains(err, "200")
  lu.assertStrContains(err, "argument 2")
  local c = go.chan(1)
  local ok, err2 = pcall(c.send, c, t)
  lu.assertFalse(ok)
  lu.assertStrContains(err2, "nesting is too deep")
  lu.assertEquals(#c, 0, "a refused send left something in the channel")
  -- and the runtime still works
  c:send("after")
  lu.assertEquals(recv(c), "after")
end

---------------------------------------------------------------------------
-- functions

function test_closures_carry_copies_of_their_upvalues()
  local n = 10
  local prefix = "n="
  local function counter() n = n + 1; return prefix .. n end
  local a, b, c = run_in_goroutine(function(f) return f(), f(), f() end, counter)
  lu.assertEquals({a, b, c}, {"n=11", "n=12", "n=13"})
  lu.assertEquals(n, 10, "the goroutine changed main's upvalue")
  -- as an upvalue of the goroutine's function instead of an argument
  local r = run_in_goroutine(function() return counter() end)
  lu.assertEquals(r, "n=11")
end

function test_closures_that_share_an_upvalue_still_share_it()
  local count = 0
  local function inc() count = count + 1 end
  local function get() return count end
  local got = run_in_goroutine(function(i, g)
    i(); i(); i()
    return g()
  end, inc, get)
  lu.assertEquals(got, 3, "inc and get no longer share their upvalue")
  -- through a table of methods too
  local obj = {inc = inc, get = get}
  got = run_in_goroutine(function(o) o.inc(); o.inc(); return o.get() end, obj)
  lu.assertEquals(got, 2)
end

function test_functions_keep_upvalue_tables_and_nested_closures()
  local cfg = {factor = 6, names = {"a", "b"}}
  local function make_mul(k) return function(x) return x * k * cfg.factor end end
  local mul = make_mul(7)
  lu.assertEquals(run_in_goroutine(function() return mul(1) end), 42)
  local function adder(base) return function(x) return base + x end end
  local fns = {adder(1), adder(100)}
  local r1, r2 = run_in_goroutine(function(t) return t[1](1), t[2](1) end, fns)
  lu.assertEquals({r1, r2}, {2, 101})
end

function test_recursive_local_function_works_in_a_goroutine()
  local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
  lu.assertEquals(run_in_goroutine(function() return fib(20) end), 6765)
  lu.assertEquals(run_in_goroutine(function(f) return f(15) end, fib), 610)
end

function test_function_using_globals_uses_the_goroutines_globals()
  -- _ENV maps to the destination: print, string, math, tostring work there
  local function describe(x)
    return string.format("%s|%d|%s", type(x), math.floor(x), tostring(x > 1))
  end
  lu.assertEquals(run_in_goroutine(describe, 3.7), "number|3|true")
  lu.assertEquals(run_in_goroutine(function()
    print("(a line printed by a transferred function)")
    return select("#", 1, 2, 3) + #("abc"):rep(2)
  end), 9)
end

function test_functions_sent_back_to_main_run_in_main()
  local c = go.chan()
  go(function()
    local secret = 41
    c:send(function(k) secret = secret + k; return secret, type(go) end)
  end)
  local f = recv(c)
  local v, gotype = f(1)
  lu.assertEquals(v, 42)
  lu.assertEquals(gotype, "table")
  go.wait()
end

function test_transferred_functions_keep_debug_info()
  local function where() return debug.getinfo(1, "S").short_src, debug.getinfo(1, "l").currentline end
  local src, line = run_in_goroutine(where)
  local msrc, mline = where()
  lu.assertEquals(src, msrc)
  lu.assertEquals(line, mline)
  local ok, err = pcall(run_in_goroutine, function() error("located") end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "transfer_spec.lua:")
  lu.assertStrContains(err, "located")
end

function test_c_functions_transfer_by_value()
  local fmt, ins, mx, same_fmt, same_ins = run_in_goroutine(function(f, insert, max)
    local t = {}
    insert(t, "a")
    insert(t, 1, "b")
    return f("%d-%s", 5, table.concat(t)), #t, max(3, 9, 4), f == string.format,
           insert == table.insert
  end, string.format, table.insert, math.max)
  lu.assertEquals(fmt, "5-ba")
  lu.assertEquals(ins, 2)
  lu.assertEquals(mx, 9)
  lu.assertTrue(same_fmt, "string.format did not arrive as the goroutine's string.format")
  lu.assertTrue(same_ins)
  -- through a channel into the same state: the very same function
  local c = go.chan(3)
  c:send(string.format)
  c:send(print)
  c:send(io.write)
  lu.assertTrue(rawequal(recv(c), string.format))
  lu.assertTrue(rawequal(recv(c), print))
  lu.assertTrue(rawequal(recv(c), io.write))
end

function test_c_functions_in_tables_and_upvalues()
  local ops = {upper = string.upper, rep = string.rep}
  local up = string.upper
  lu.assertEquals(run_in_goroutine(function() return ops.rep(up("ab"), 2) end), "ABAB")
end

function test_io_functions_work_in_the_goroutine()
  -- io.write needs its state's io library: it must be re-resolved there
  local path = os.tmpname()
  run_in_goroutine(function(open, p)
    local f = open(p, "w")
    f:write("written in a goroutine")
    f:close()
  end, io.open, path)
  local f = assert(io.open(path))
  lu.assertEquals(f:read("a"), "written in a goroutine")
  f:close()
  os.remove(path)
end

function test_module_tables_arrive_as_the_destinations_modules()
  local same_string, same_table, same_math, fmt = run_in_goroutine(function(s, t, m)
    return s == string, t == table, m == math, s.format("%03d", 7)
  end, string, table, math)
  lu.assertTrue(same_string, "string arrived as a copy, not the goroutine's string")
  lu.assertTrue(same_table)
  lu.assertTrue(same_math)
  lu.assertEquals(fmt, "007")
  -- the goro module itself
  local same_go, works = run_in_goroutine(function(g)
    local c = g.chan(1)
    c:send("ok")
    return g == require "goro", c:recv()
  end, go)
  lu.assertTrue(same_go, "goro arrived as a copy, not the goroutine's module")
  lu.assertEquals(works, "ok")
  -- and back into main: the very same module tables
  local s, g = run_in_goroutine(function() return string, require "goro" end)
  lu.assertTrue(rawequal(s, string))
  lu.assertTrue(rawequal(g, go))
end

function test_module_in_a_table_field_and_as_upvalue()
  local lib = {str = string, tag = "x"}
  local r1, r2 = run_in_goroutine(function()
    return lib.str == string, go == require "goro"
  end)
  lu.assertTrue(r1)
  lu.assertTrue(r2)
end

---------------------------------------------------------------------------
-- goro objects: by reference

function test_a_channel_sent_through_a_channel_is_the_same_channel()
  local c, box = go.chan(1), go.chan()
  go(function(ch)
    box:send(ch)   -- back to main
  end, c)
  local back = recv(box)
  lu.assertTrue(rawequal(back, c), "a channel came back as another object")
  -- and it is the same underlying channel in the goroutine
  local res = go.chan()
  go(function(ch) ch:send("from goroutine"); res:send(#ch) end, c)
  lu.assertEquals(recv(res), 1)
  lu.assertEquals(recv(c), "from goroutine")
  go.wait()
end

function test_channels_inside_tables_keep_identity()
  local c = go.chan()
  local t = {c, c, inner = {c}}
  local copy = roundtrip(t)
  lu.assertTrue(rawequal(copy[1], c))
  lu.assertTrue(rawequal(copy[2], c))
  lu.assertTrue(rawequal(copy.inner[1], c))
end

function test_a_waitgroup_is_shared_by_reference()
  local wg = go.waitgroup()
  wg:add(10)
  for _ = 1, 10 do
    go(function(w) w:done() end, wg)
  end
  wg:wait()
  lu.assertEquals(wg:count(), 0)
  -- as an upvalue, and counted from a goroutine
  local res = go.chan()
  go(function()
    wg:add(3)
    res:send(wg:count())
  end)
  lu.assertEquals(recv(res), 3)
  lu.assertEquals(wg:count(), 3)
  wg:add(-3)
  go.wait()
end

---------------------------------------------------------------------------
-- refusals

function test_a_file_handle_argument_is_refused_naming_type_and_position()
  local err = refused(go.spawn, function(x, f) end, 1, io.stdout)
  lu.assertStrContains(err, "argument 3")
  lu.assertStrContains(err, "FILE*")
  err = refused(go, function(f) end, io.stdout)
  lu.assertStrContains(err, "argument 2")
  lu.assertStrContains(err, "FILE*")
end

function test_a_coroutine_is_refused()
  local co = coroutine.create(function() end)
  local err = refused(go, function(c) end, co)
  lu.assertStrContains(err, "argument 2")
  lu.assertTrue(err:find("thread", 1, true) ~= nil or err:find("coroutine", 1, true) ~= nil,
    "the error does not name the coroutine: " .. err)
end

function test_a_function_with_a_file_handle_upvalue_is_refused()
  local f = io.stdout
  local err = refused(go, function() f:write("x") end)
  lu.assertStrContains(err, "upvalue 'f'")
  lu.assertStrContains(err, "FILE*")
end

function test_a_file_handle_in_a_table_field_is_refused_with_its_path()
  local err = refused(go, function(t) end, {cfg = {out = io.stderr}})
  lu.assertStrContains(err, "argument 2")
  lu.assertStrContains(err, "field 'cfg.out'")
  lu.assertStrContains(err, "FILE*")
  local c = go.chan(1)
  local ok, err2 = pcall(c.send, c, {cfg = {out = io.stderr}})
  lu.assertFalse(ok)
  lu.assertStrContains(err2, "field 'cfg.out'")
  lu.assertEquals(#c, 0, "a refused send left a value in the channel")
end

function test_a_c_closure_is_refused()
  local it = string.gmatch("a b", "%a")
  local err = refused(go, function(f) end, it)
  lu.assertStrContains(err, "argument 2")
  lu.assertStrContains(err, "function")
end

function test_refused_select_send_leaves_everything_usable()
  local c = go.chan(1)
  local ok, err = pcall(go.select, {{c, "send", {io.stdout}}})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "FILE*")
  lu.assertEquals(#c, 0)
  lu.assertEquals(go.select{{c, "send", "fine"}}, 1)
  lu.assertEquals(recv(c), "fine")
end

function test_runtime_stays_usable_after_refusals()
  for _ = 1, 100 do
    pcall(go, function() end, io.stdout)
    pcall(go, function() end, {deep = {deeper = coroutine.create(print)}})
  end
  lu.assertEquals(roundtrip("still", "works"), "still")
end

---------------------------------------------------------------------------
-- globals

function global_double(x) return x * 2 end
GLOBAL_CONFIG = {scale = 3, name = "cfg"}

-- Runs a goroutine whose own function names the globals, as a user writes
-- go(function() ... end); returns what it sends.
local function direct(fn)
  local c = go.chan()
  go(function() c:send(table.pack(pcall(fn))) end)
  local r = recv(c)
  go.wait()
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

function test_global_function_defined_in_main_is_copied()
  local c = go.chan()
  go(function() c:send(global_double(21)) end)
  lu.assertEquals(recv(c), 42)
  go.wait()
end

function test_global_table_defined_in_main_is_copied()
  local c = go.chan()
  go(function() c:send({GLOBAL_CONFIG.scale, GLOBAL_CONFIG.name}) end)
  lu.assertEquals(recv(c), {3, "cfg"})
  go.wait()
end

function test_global_defined_before_require_goro_is_copied()
  local c = go.chan()
  go(function() c:send(defined_before_goro(1)) end)
  lu.assertEquals(recv(c), 1001)
  go.wait()
end

function test_globals_used_by_a_function_passed_to_a_goroutine_are_copied()
  -- the function is an argument (or upvalue) of the goroutine's function,
  -- and both were made in this chunk (they share its _ENV)
  lu.assertEquals(run_in_goroutine(function() return global_double(21) end), 42)
  lu.assertEquals(direct(function() return GLOBAL_CONFIG.scale end), 3)
end

function global_a(x) return x + 1 end
function global_b(x) return global_a(x) * 10 end

function test_global_function_calling_another_global_function()
  -- global_b's own globals (global_a) must travel with it
  local c = go.chan()
  go(function() c:send(table.pack(pcall(global_b, 1))) end)
  local r = recv(c)
  go.wait()
  lu.assertTrue(r[1], r[2])
  lu.assertEquals(r[2], 20)
end

-- Receives from c; a goroutine error raised meanwhile becomes a failure.
local function recv_or_fail(c)
  local ok, v = pcall(c.recv, c)
  lu.assertTrue(ok, tostring(v))
  return v
end

function test_global_function_passed_as_argument_brings_its_globals()
  -- the goroutine's own function names no global: only global_b does
  local c = go.chan()
  go(function(f, out) out:send(f(2)) end, global_b, c)
  lu.assertEquals(recv_or_fail(c), 30)
  go.wait()
end

function global_fact(n) if n <= 1 then return 1 end return n * global_fact(n - 1) end

function test_recursive_global_function()
  local c = go.chan()
  go(function() c:send(global_fact(10)) end)
  lu.assertEquals(recv(c), 3628800)
  -- passed as a value: it names itself as a global
  go(function(f, out) out:send(f(5)) end, global_fact, c)
  lu.assertEquals(recv_or_fail(c), 120)
  go.wait()
end

function test_globals_are_copied_at_spawn_time()
  snapshot_value = "first"
  local c, go_on = go.chan(), go.chan()
  go(function()
    go_on:recv()
    c:send(snapshot_value)
  end)
  snapshot_value = "second"
  go_on:send(true)
  lu.assertEquals(recv(c), "first")
  snapshot_value = nil
  go.wait()
end

function test_globals_set_in_a_goroutine_stay_there()
  run_in_goroutine(function()
    set_by_goroutine = 1
    global_double = function() return "replaced" end
  end)
  lu.assertNil(set_by_goroutine)
  lu.assertEquals(global_double(2), 4)
end

os.exit(lu.LuaUnit.run())
