-- spawn_spec.lua — go(fn, ...): goroutines run, exactly once, in parallel,
-- each in its own scrubbed state with the standard libraries, require and a
-- line-atomic print.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local with_procs, for_procs, run_lua, shq, scaled = S.with_procs, S.for_procs, S.run_lua, S.shq, S.scaled

-- STRESS_SCALE (set by the sanitizer runs) shrinks the stress counts.

---------------------------------------------------------------------------

for_procs("test_ten_thousand_goroutines_each_run_exactly_once", {1, 2, 4}, function()
  local n = scaled(10000, 500)
  local c = go.chan(256)
  for i = 1, n do
    go(function(k) c:send(k) end, i)
  end
  local seen, sum = {}, 0
  for _ = 1, n do
    local k, ok = recv(c)
    lu.assertTrue(ok)
    lu.assertNil(seen[k], "goroutine " .. tostring(k) .. " ran twice")
    seen[k] = true
    sum = sum + k
  end
  go.wait()
  lu.assertEquals(sum, n * (n + 1) // 2)
  for i = 1, n do lu.assertTrue(seen[i], "goroutine " .. i .. " never ran") end
  lu.assertEquals({c:tryrecv()}, {nil, false}, "a goroutine ran more than once")
end)

function test_spawn_passes_every_argument_in_order()
  local c = go.chan()
  go(function(...)
    c:send({n = select("#", ...), ...})
  end, 1, 2.5, "three", true, nil, false, {x = {y = "deep"}}, nil)
  local got = recv(c)
  lu.assertEquals(got.n, 8)
  lu.assertEquals(got[1], 1)
  lu.assertEquals(math.type(got[1]), "integer")
  lu.assertEquals(got[2], 2.5)
  lu.assertEquals(got[3], "three")
  lu.assertEquals(got[4], true)
  lu.assertNil(got[5])
  lu.assertEquals(got[6], false)
  lu.assertEquals(got[7], {x = {y = "deep"}})
  lu.assertNil(got[8])
  go.wait()
end

function test_spawn_with_no_arguments_and_the_spawn_alias()
  local c = go.chan(2)
  go(function(...) c:send(select("#", ...)) end)
  go.spawn(function(a) c:send(a) end, "alias")
  local got = {(recv(c)), (recv(c))}
  table.sort(got, function(a, b) return tostring(a) < tostring(b) end)
  lu.assertEquals(got, {0, "alias"})
  go.wait()
end

function test_spawn_needs_a_function()
  for _, bad in ipairs({42, "f", {}, true}) do
    local ok, err = pcall(go, bad)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro:")
    lu.assertStrContains(err, "function")
  end
  local ok, err = pcall(go.spawn)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro:")
end

for_procs("test_goroutines_spawn_goroutines", {1, 2}, function()
  -- a binary tree of goroutines, depth 8: 511 goroutines, each reports once
  local depth = 8
  local c = go.chan(64)
  local function node(d, id)
    c:send(id)
    if d < depth then
      go(node, d + 1, id * 2)
      go(node, d + 1, id * 2 + 1)
    end
  end
  go(node, 0, 1)
  local total = 2 ^ (depth + 1) - 1
  local seen, count = {}, 0
  for _ = 1, total do
    local id = recv(c)
    lu.assertNil(seen[id])
    seen[id] = true
    count = count + 1
  end
  go.wait()
  lu.assertEquals(count, total)
  for id = 1, total do lu.assertTrue(seen[id], "node " .. id .. " missing") end
end)

function test_goroutine_uses_the_go_module_it_captured()
  -- the usual style: `go` is an upvalue of the goroutine's function
  local c = go.chan()
  go(function()
    go.yield()
    local inner = go.chan()
    go(function() inner:send(go.id()) end)
    c:send(inner:recv())
  end)
  local id = recv(c)
  lu.assertEquals(math.type(id), "integer")
  lu.assertTrue(id > 0)
  go.wait()
end

function test_two_goroutines_are_busy_at_the_same_time()
  -- Each goroutine marks itself present (a token in its buffered channel),
  -- spins without yielding while it looks for the other's token, then takes
  -- its token back. Only two goroutines running at once on two threads can
  -- see each other: one P never runs two goroutines at the same time.
  -- Up to 3 tries: that they can overlap is the property, and a build whose
  -- threads start slowly (ThreadSanitizer) may miss it once.
  with_procs(2, function()
    local function try()
      local tokA, tokB, stop, res = go.chan(1), go.chan(1), go.chan(), go.chan(2)
      local function worker(mine, other)
        for _ = 1, 3000 do
          if stop:closed() then break end
          mine:send(true)
          local seen = false
          for _ = 1, 20000 do
            if #other > 0 then seen = true; break end
          end
          mine:recv()
          if seen then
            res:send(true)
            if not stop:closed() then pcall(stop.close, stop) end
            return
          end
          go.yield()
        end
        res:send(false)
      end
      go(worker, tokA, tokB)
      go(worker, tokB, tokA)
      local a, b = recv(res), recv(res)
      go.wait()
      return a or b
    end
    local overlapped = false
    for _ = 1, 3 do
      overlapped = try()
      if overlapped then break end
    end
    lu.assertTrue(overlapped, "the two goroutines never ran at the same time (3 tries)")
    lu.assertTrue(go.stats().threads >= 2, "fewer than 2 threads ran goroutines")
  end)
end

for_procs("test_waitgroup_waits_for_every_done", {1, 2}, function()
  local n = 200
  local wg, c = go.waitgroup(), go.chan(n)
  wg:wait() -- zero: returns at once
  for i = 1, n do
    wg:add(1)
    go(function()
      if i % 7 == 0 then go.yield() end
      c:send(i)
      wg:done()
    end)
  end
  wg:wait()
  lu.assertEquals(wg:count(), 0)
  lu.assertEquals(#c, n)
  -- several waiters, in goroutines too, all released by the last done
  wg:add(2)
  local released = go.chan(5)
  for _ = 1, 5 do go(function() wg:wait(); released:send(true) end) end
  lu.assertEquals({released:tryrecv()}, {nil, false})
  wg:done()
  wg:done()
  for _ = 1, 5 do lu.assertTrue(recv(released)) end
  -- reusable after reaching zero
  wg:add(1)
  go(function() wg:done() end)
  wg:wait()
  go.wait()
end)

function test_waitgroup_negative_counter_is_an_error()
  local wg = go.waitgroup()
  wg:add(2)
  wg:done()
  wg:done()
  local ok, err = pcall(wg.done, wg)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro:")
  lu.assertStrContains(err, "negative")
  lu.assertEquals(wg:count(), 0)
  ok = pcall(wg.add, wg, -1)
  lu.assertFalse(ok)
  lu.assertEquals(wg:count(), 0)
end

function test_gomaxprocs_reads_and_sets()
  local old = go.gomaxprocs()
  lu.assertEquals(math.type(old), "integer")
  lu.assertTrue(old >= 1)
  lu.assertEquals(go.gomaxprocs(3), old)
  lu.assertEquals(go.gomaxprocs(), 3)
  lu.assertEquals(go.stats().gomaxprocs, 3)
  -- goroutines still run after each change
  local c = go.chan()
  go(function() c:send("ran with 3") end)
  lu.assertEquals(recv(c), "ran with 3")
  lu.assertEquals(go.gomaxprocs(old), 3)
  lu.assertEquals(go.gomaxprocs(), old)
  go.wait()
end

function test_stats_reports_scheduler_figures()
  local before = go.stats().spawned
  local c = go.chan(10)
  for i = 1, 10 do go(function() c:send(i) end) end
  for _ = 1, 10 do recv(c) end
  go.wait()
  local st = go.stats()
  for _, k in ipairs({"gomaxprocs", "threads", "goroutines", "spawned", "steals", "handoffs",
                      "chanops", "preemptions"}) do
    lu.assertEquals(math.type(st[k]), "integer", "stats()." .. k)
  end
  lu.assertTrue(st.spawned >= before + 10)
  lu.assertEquals(st.goroutines, 0)
end

for_procs("test_a_spinning_goroutine_does_not_starve_the_others", {1}, function()
  -- one P; goroutine A spins in plain Lua (no goro call) until it sees B's
  -- token; only preemption lets B run
  local flag, res = go.chan(1), go.chan(2)
  go(function()
    local t = os.clock()
    while #flag == 0 and os.clock() - t < 5 do end
    res:send(#flag > 0)
  end)
  go(function() flag:send(true) end)
  lu.assertTrue(recv(res), "the spinning goroutine was never preempted")
  go.wait()
end)

for_procs("test_preemption_inside_a_user_coroutine_is_invisible", {1}, function()
  -- the goroutine spins inside a coroutine: preemption must not show up as
  -- a yield of that coroutine
  local flag, res = go.chan(1), go.chan()
  go(function()
    local co = coroutine.create(function()
      local t = os.clock()
      while #flag == 0 and os.clock() - t < 5 do end
      return "finished", #flag > 0
    end)
    res:send({coroutine.resume(co)})
  end)
  go(function() flag:send(true) end)
  lu.assertEquals(recv(res), {true, "finished", true})
  go.wait()
end)

function test_numgoroutine_counts_live_goroutines_and_returns_to_baseline()
  go.wait()
  local base = go.numgoroutine()
  local gate, started = go.chan(), go.chan(100)
  for _ = 1, 100 do
    go(function()
      started:send(true)
      gate:recv()
    end)
  end
  for _ = 1, 100 do recv(started) end
  lu.assertEquals(go.numgoroutine(), base + 100)
  gate:close()
  go.wait()
  lu.assertEquals(go.numgoroutine(), base)
end

function test_goroutine_ids_are_distinct_integers()
  local n = scaled(2000, 200)
  local c = go.chan(n)
  for _ = 1, n do go(function() c:send(go.id()) end) end
  local seen = {}
  for _ = 1, n do
    local id = recv(c)
    lu.assertEquals(math.type(id), "integer")
    lu.assertTrue(id > 0)
    lu.assertNil(seen[id], "id " .. tostring(id) .. " given twice")
    seen[id] = true
  end
  go.wait()
  lu.assertNil(seen[go.id()], "the main state has a goroutine's id")
end

function test_require_works_inside_goroutines()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shq(dir)))
  local mod = assert(io.open(dir .. "/goro_spec_mod.lua", "w"))
  mod:write([[
    local M = {answer = 42}
    function M.twice(x) return 2 * x end
    return M
  ]])
  mod:close()
  local rc, out, err = run_lua(string.format([[
    package.path = %q .. "/?.lua;" .. package.path
    local go = require "goro"
    local c = go.chan()
    go(function()
      local m = require "goro_spec_mod"
      local same = require "goro_spec_mod" == m
      c:send(string.format("%%d %%d %%s", m.answer, m.twice(21), tostring(same)))
    end)
    print(c:recv())
    go.wait()
  ]], dir))
  os.remove(dir .. "/goro_spec_mod.lua")
  os.remove(dir)
  lu.assertEquals(rc, 0, err)
  lu.assertStrContains(out, "42 42 true")
end

function test_require_in_goroutine_sees_package_path_set_after_require_goro()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shq(dir)))
  local mod = assert(io.open(dir .. "/goro_spec_late.lua", "w"))
  mod:write("return {late = 'yes'}\n")
  mod:close()
  -- goroutine states are pooled: let many of them open `package` first
  local c = go.chan(64)
  for _ = 1, 64 do go(function() c:send(pcall(require, "goro")) end) end
  for _ = 1, 64 do recv(c) end
  go.wait()
  local old = package.path
  package.path = dir .. "/?.lua;" .. package.path
  for _ = 1, 64 do
    go(function()
      local ok, m = pcall(require, "goro_spec_late")
      c:send(ok and m.late or tostring(m):match("[^\n]*"))
    end)
  end
  local got = {}
  for i = 1, 64 do got[i] = recv(c) end
  package.path = old
  go.wait()
  os.remove(dir .. "/goro_spec_late.lua")
  os.remove(dir)
  for i = 1, 64 do lu.assertEquals(got[i], "yes") end
end

function test_require_goro_inside_a_goroutine_gives_a_working_module()
  local c = go.chan()
  go(function()
    local g = require "goro"
    local inner = g.chan(1)
    g.spawn(function() inner:send("from grandchild") end)
    c:send(inner:recv())
  end)
  lu.assertEquals(recv(c), "from grandchild")
  go.wait()
end

function test_require_of_standard_library_names_works_in_goroutines()
  -- `local string = require "string"` is common in modules
  local names = {"string", "table", "math", "io", "os", "coroutine", "utf8", "debug", "package"}
  local c = go.chan()
  go(function()
    local r = {}
    for i, name in ipairs(names) do
      local ok, m = pcall(require, name)
      r[i] = ok and (m == _G[name]) and type(m) == "table" or tostring(m):match("[^\n]*")
    end
    c:send(r)
  end)
  local r = recv(c)
  go.wait()
  for i, name in ipairs(names) do
    lu.assertEquals(r[i], true, "require '" .. name .. "' in a goroutine: " .. tostring(r[i]))
  end
end

function test_standard_libraries_work_inside_goroutines()
  local path = os.tmpname()
  local c = go.chan()
  go(function(p)
    local r = {}
    r.upper = ("abc"):upper()                      -- string methods on literals
    r.rep = ("ab"):rep(3, "-")
    r.fmt = string.format("%05.2f|%d|%s", 3.14159, 42, "x")
    r.gsub = ("hello world"):gsub("o", "0")
    local t = {5, 3, 9, 1}
    table.sort(t)
    r.concat = table.concat(t, ",")
    r.unpack = select("#", table.unpack({1, 2, 3}))
    r.floor = math.floor(3.7)
    r.mtype = math.type(math.floor(3.7))
    r.maxint = math.maxinteger
    r.time = type(os.time())
    r.clock = type(os.clock())
    r.env = os.getenv("HOME") == nil and "nil" or "string"
    r.utf8 = utf8.char(72, 228, 8364)
    local f = assert(io.open(p, "w"))
    f:write("line one\nline two\n")
    f:close()
    local lines = {}
    for l in io.lines(p) do lines[#lines + 1] = l end
    r.io = table.concat(lines, "|")
    local co = coroutine.wrap(function() coroutine.yield(1); coroutine.yield(2) end)
    r.co = co() + co()
    r.pcall = select(2, pcall(error, "e", 0))
    r.load = load("return 6 * 7")()
    r.tostring = tostring(12) .. tostring(1.5)
    c:send(r)
  end, path)
  local r = recv(c)
  os.remove(path)
  go.wait()
  lu.assertEquals(r.upper, "ABC")
  lu.assertEquals(r.rep, "ab-ab-ab")
  lu.assertEquals(r.fmt, "03.14|42|x")
  lu.assertEquals(r.gsub, "hell0 w0rld")
  lu.assertEquals(r.concat, "1,3,5,9")
  lu.assertEquals(r.unpack, 3)
  lu.assertEquals(r.floor, 3)
  lu.assertEquals(r.mtype, "integer")
  lu.assertEquals(r.maxint, math.maxinteger)
  lu.assertEquals(r.time, "number")
  lu.assertEquals(r.clock, "number")
  lu.assertEquals(r.env, os.getenv("HOME") == nil and "nil" or "string")
  lu.assertEquals(r.utf8, "H\u{e4}\u{20ac}")
  lu.assertEquals(r.io, "line one|line two")
  lu.assertEquals(r.co, 3)
  lu.assertEquals(r.pcall, "e")
  lu.assertEquals(r.load, 42)
  lu.assertEquals(r.tostring, "121.5")
end

for_procs("test_globals_of_a_goroutine_do_not_leak_to_the_next", {1, 2}, function()
  -- States are pooled: run many short goroutines one after the other, so
  -- later ones run in states that earlier ones used.
  local c = go.chan()
  for round = 1, scaled(200, 50) do
    go(function(r)
      local before = leaked_global
      leaked_global = r
      _G.leaked_via_G = r
      rawset(_G, "leaked_raw", r)
      c:send({before, leaked_via_G, leaked_raw})
    end, round)
    local got = recv(c)
    lu.assertNil(got[1], "round " .. round .. " saw a global of an earlier goroutine")
    lu.assertEquals(got[2], round)
    lu.assertEquals(got[3], round)
    go.wait()
  end
  lu.assertNil(leaked_global, "a goroutine's global reached the main state")
  lu.assertNil(leaked_via_G)
  lu.assertNil(leaked_raw)
end)

function test_goroutine_cannot_overwrite_a_standard_global_for_others()
  local c = go.chan()
  for _ = 1, 50 do
    go(function()
      local was = tostring(1)
      tostring = function() return "hacked" end -- only this goroutine's globals
      c:send(was)
    end)
    lu.assertEquals(recv(c), "1")
    go.wait()
  end
end

function test_print_from_goroutines_is_line_atomic()
  local rc, out, err = run_lua([[
    local go = require "goro"
    local wg = go.waitgroup()
    for g = 1, 8 do
      wg:add(1)
      go(function()
        local body = string.rep(string.char(64 + g), 5000)
        for i = 1, 150 do print("g" .. g, i, body) end
        wg:done()
      end)
    end
    local body = string.rep("M", 5000)
    for i = 1, 150 do print("g0", i, body) end
    wg:wait()
  ]])
  lu.assertEquals(rc, 0, err)
  local count, seen = 0, {}
  for line in out:gmatch("[^\n]*\n") do
    local g, i, body = line:match("^g(%d)\t(%d+)\t(%u+)\n$")
    lu.assertNotNil(g, "torn line: " .. line:sub(1, 60) .. "...")
    local ch = g == "0" and "M" or string.char(64 + tonumber(g))
    lu.assertEquals(#body, 5000, "torn line from g" .. g)
    lu.assertEquals(body, string.rep(ch, 5000), "mixed line from g" .. g)
    local key = g .. ":" .. i
    lu.assertNil(seen[key], "line printed twice: " .. key)
    seen[key] = true
    count = count + 1
  end
  lu.assertEquals(count, 9 * 150)
end

os.exit(lu.LuaUnit.run())
