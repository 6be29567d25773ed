-- misuse_spec.lua — every bad input gets an error that says "goro:" and
-- leaves the runtime usable: after each misuse a value makes a round trip
-- through a goroutine and no goroutine is left behind. Cases that could
-- crash or hang the process (os.exit, exit-time finalizers, known bugs) run
-- in a child process with a time limit, so one failure cannot take the
-- whole file down.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local SLOW, clean, recv = S.SLOW, S.clean, S.recv
io.stdout:setvbuf("line") -- a hang shows which test it is in

local TSAN = os.getenv("GORO_TSAN") ~= nil

-- ------------------------------------------------------------------ helpers

-- fn(...) must fail with a goro error; returns the message.
local function goro_error(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then lu.fail("expected a goro: error, the call succeeded") end
  err = tostring(err)
  if not err:match("^[^\n]-goro: ") then lu.fail("not a goro: error: " .. err) end
  return err
end

-- fn(...) must fail (any message); returns the message. The "goro:" prefix
-- of argument-type errors is checked once, by
-- test_wrong_argument_types_get_goro_errors, so that the other tests check
-- the rest of the behaviour.
local function fails(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then lu.fail("expected an error, the call succeeded") end
  return tostring(err)
end

-- The runtime still works: a value goes to a goroutine and back, through a
-- buffered and an unbuffered channel, and nothing is left running.
local function usable()
  local c, d = go.chan(), go.chan(1)
  go(function(x) local y = d:recv(); c:send(x + y) end, 40)
  d:send(2)
  lu.assertEquals(recv(c), 42)
  go.wait()
  lu.assertEquals(go.numgoroutine(), 0)
end

-- Runs fn in a goroutine; returns what it returned (one value).
local function in_goroutine(fn, ...)
  local c = go.chan(1)
  go(function(...) c:send(fn(...)) end, ...)
  return recv(c)
end

-- A child process: the interpreter running this spec (S.LUA: the one the
-- suite was given) on a script. Returns status, stdout, stderr, seconds.
-- Children get 10 s (times SLOW) unless a test says otherwise.
local function run_lua(src, limit, env) return S.run_lua(src, limit or 10, env) end

-- No sanitizer report and no crash in a child's stderr.
local PRELUDE = 'local go = require "goro"\n'

-- ------------------------------------------------------------ channels

function test_send_on_a_closed_channel_is_a_goro_error_in_main_and_goroutines()
  local c = go.chan(1)
  c:close()
  lu.assertStrContains(goro_error(c.send, c, 1), "send on closed channel")
  lu.assertStrContains(goro_error(c.trysend, c, 1), "send on closed channel")
  lu.assertStrContains(goro_error(go.select, {{c, "send", 1}}), "send on closed channel")
  lu.assertStrContains(goro_error(go.select, {{c, "send", {1, 2}}, default = true}),
    "send on closed channel")
  -- in a goroutine
  local e = in_goroutine(function()
    local ok, err = pcall(c.send, c, "x")
    return err
  end)
  lu.assertStrContains(e, "goro: ")
  lu.assertStrContains(e, "send on closed channel")
  usable()
end

-- A sender parked on an unbuffered channel when it is closed.
function test_close_fails_a_parked_sender()
  local d, ready, res = go.chan(), go.chan(), go.chan(1)
  go(function()
    ready:send(true)
    local ok, err = pcall(d.send, d, {big = ("x"):rep(100)})
    res:send(err)
  end)
  recv(ready)
  d:close()
  local err = recv(res)
  lu.assertStrContains(err, "goro: ")
  lu.assertStrContains(err, "send on closed channel")
  usable()
end

function test_close_of_a_closed_channel_is_an_error_and_receives_still_work()
  local c = go.chan()
  c:close()
  lu.assertStrContains(goro_error(c.close, c), "close of closed channel")
  local e = in_goroutine(function()
    local ok, err = pcall(c.close, c)
    return err
  end)
  lu.assertStrContains(e, "goro: ")
  lu.assertStrContains(e, "close of closed channel")
  -- a closed channel still answers receives (its own recv: cannot block)
  local v, ok = c:recv()
  lu.assertNil(v)
  lu.assertFalse(ok)
  usable()
end

function test_methods_called_on_the_wrong_object_say_what_they_expected()
  local ch = go.chan(1)
  local wg = go.waitgroup()
  local tm = go.timer(60)
  local methods = getmetatable(ch).__index
  local wrong = {{}, 1, "x", true, io.stdout, wg, tm, print, coroutine.create(print)}
  for _, name in ipairs{"send", "recv", "trysend", "tryrecv", "close", "len", "cap",
                        "closed", "range"} do
    lu.assertNotNil(methods[name], name)
    lu.assertStrContains(goro_error(methods[name], nil), "channel expected")
    for _, w in ipairs(wrong) do
      lu.assertStrContains(goro_error(methods[name], w, 1), "channel expected")
    end
  end
  local wgm = getmetatable(wg).__index
  for _, name in ipairs{"add", "done", "wait", "count"} do
    lu.assertStrContains(goro_error(wgm[name], ch), "waitgroup expected")
    lu.assertStrContains(goro_error(wgm[name], {}), "waitgroup expected")
  end
  lu.assertStrContains(goro_error(tm.stop, ch), "timer expected")
  lu.assertStrContains(goro_error(tm.reset, {}, 1), "timer expected")
  lu.assertTrue(tm:stop())
  usable()
end

-- "recv on nil": a nil channel never fires in select (as in Go); waiting on
-- nothing but nil channels is a deadlock in the main state.
function test_nil_channels_never_fire_and_waiting_only_on_them_is_a_deadlock()
  local methods = getmetatable(go.chan()).__index
  lu.assertStrContains(goro_error(methods.recv, nil), "channel expected")
  lu.assertStrContains(goro_error(methods.send, nil, 1), "channel expected")
  lu.assertNil(go.select{{nil, "recv"}, {nil, "send", 1}, default = true})
  lu.assertStrContains(goro_error(go.select, {{nil, "recv"}}), "deadlock")
  local c = go.chan(1)
  c:send("ready")
  local i, v = go.select{{nil, "recv"}, {c, "recv"}, {nil, "send", 3}}
  lu.assertEquals(i, 2)
  lu.assertEquals(v, "ready")
  usable()
end

-- ------------------------------------------------------------ arguments

function test_bad_channel_capacities_are_refused()
  for _, bad in ipairs{"x", 1.5, {}, 0 / 0} do fails(go.chan, bad) end
  for _, bad in ipairs{-1, 2 ^ 40, math.huge, -math.huge, (1 << 24) + 1} do
    lu.assertStrContains(goro_error(go.chan, bad), "capacity")
  end
  usable()
end

-- Every wrong argument type gets a "goro:" error (luaL_check* alone says
-- "bad argument #1 to 'goro.chan' (...)", without the prefix). One list,
-- so that a failure names every offender.
function test_wrong_argument_types_get_goro_errors()
  local ch, wg, tm = go.chan(1), go.waitgroup(), go.timer(60)
  local calls = {
    {"go.chan('x')", go.chan, "x"}, {"go.chan(1.5)", go.chan, 1.5},
    {"go.chan({})", go.chan, {}},
    {"go.sleep('x')", go.sleep, "x"}, {"go.after('x')", go.after, "x"},
    {"go.timer('x')", go.timer, "x"}, {"go.ticker('x')", go.ticker, "x"},
    {"go.tick('x')", go.tick, "x"},
    {"t:reset('x')", tm.reset, tm, "x"},
    {"go.select('x')", go.select, "x"}, {"go.select()", go.select},
    {"go.gomaxprocs('x')", go.gomaxprocs, "x"}, {"go.gomaxprocs(1.5)", go.gomaxprocs, 1.5},
    {"go.maxthreads('x')", go.maxthreads, "x"},
    {"go.blocking('x')", go.blocking, "x"},
    {"wg:add('x')", wg.add, wg, "x"}, {"wg:add(1.5)", wg.add, wg, 1.5},
    {"go(nil)", go, nil}, {"go.spawn(1)", go.spawn, 1},
  }
  local bad = {}
  for _, c in ipairs(calls) do
    local ok, err = pcall(table.unpack(c, 2, c.n or #c))
    err = tostring(err)
    if ok then
      bad[#bad + 1] = c[1] .. " succeeded"
    elseif not err:match("^[^\n]-goro: ") then
      bad[#bad + 1] = c[1] .. ": " .. err
    end
  end
  tm:stop()
  if #bad > 0 then lu.fail("errors without the goro: prefix:\n  " .. table.concat(bad, "\n  ")) end
  usable()
end

-- The capacity in the message is the one asked for (not truncated to int).
function test_bad_channel_capacity_message_names_the_capacity()
  lu.assertStrContains(goro_error(go.chan, 1 << 40), tostring(1 << 40))
end

function test_bad_durations_are_refused_and_a_negative_sleep_returns_at_once()
  for _, bad in ipairs{"x", {}, true} do
    fails(go.sleep, bad)
    fails(go.after, bad)
    fails(go.timer, bad)
    fails(go.ticker, bad)
    fails(go.tick, bad)
  end
  goro_error(go.ticker, 0)
  goro_error(go.ticker, -1)
  for _, f in ipairs{go.after, go.timer, go.ticker, go.tick} do goro_error(f, 0 / 0) end
  local t = go.timer(60)
  fails(t.reset, t, "x")
  goro_error(t.reset, t, 0 / 0)
  t:stop()
  -- a negative sleep returns at once, as in Go
  go.sleep(-1)
  usable()
end

-- go.sleep(NaN) must be an error, not a sleep forever (child: it hangs).
function test_sleep_nan_is_an_error()
  local rc, out, err = run_lua(PRELUDE .. [[
    local ok, e = pcall(go.sleep, 0/0)
    print(ok, e)
  ]], 5)
  clean(err)
  lu.assertEquals(rc, 0, "go.sleep(0/0) did not return: " .. err)
  lu.assertStrContains(out, "false")
  lu.assertStrContains(out, "goro:")
end

-- Durations too large for the clock (math.huge, 1e300) mean "never" (or
-- a goro: error), not "now": they must not fire at once. go.after's timer
-- cannot be stopped, and a pending timer keeps the deadlock detector quiet
-- for the rest of the process (as in Go), so that part runs in a child.
function test_huge_durations_do_not_fire_at_once()
  for _, d in ipairs{math.huge, 1e300, 1e12} do
    local ok, t = pcall(go.timer, d)
    if ok then
      local i = go.select{{t.c, "recv"}, {go.after(0.05), "recv"}}
      t:stop()
      lu.assertEquals(i, 2, ("go.timer(%g) fired at once"):format(d))
    else
      lu.assertStrContains(tostring(t), "goro:")
    end
  end
  local rc, out, err = run_lua(PRELUDE .. [[
    for _, d in ipairs{math.huge, 1e300, 1e12} do
      local ok, c = pcall(go.after, d)
      if ok then
        local i = go.select{{c, "recv"}, {go.after(0.05), "recv"}}
        print(d, i == 2 and "waits" or "fired")
      else
        print(d, tostring(c):find("goro:", 1, true) and "refused" or c)
      end
    end
  ]], 10)
  clean(err)
  lu.assertEquals(rc, 0, err)
  lu.assertNotStrContains(out, "fired")
  lu.assertEquals(select(2, out:gsub("waits", "")) + select(2, out:gsub("refused", "")), 3, out)
  usable()
end

function test_malformed_select_cases_are_refused_and_nothing_is_sent()
  local ch = go.chan()
  fails(go.select, "x")
  fails(go.select, nil)
  fails(go.select, 1)
  for _, bad in ipairs{
    {{ch, "sideways"}}, {{ch}}, {{ch, 5}}, {1}, {"recv"}, {{{}, "recv"}},
    {{io.stdout, "recv"}}, {{go.waitgroup(), "send", 1}},
    {{ch, "recv"}, {ch, "sideways"}},
  } do
    goro_error(go.select, bad)
  end
  lu.assertStrContains(goro_error(go.select, {{ch, "sideways"}}), "direction")
  -- a send case whose value cannot cross: the values of earlier cases are
  -- released, nothing is sent
  local b = go.chan(2)
  lu.assertStrContains(goro_error(go.select, {{b, "send", {1, 2, 3}}, {b, "send", io.stdout}}),
    "cannot transfer")
  lu.assertEquals(#b, 0)
  -- the same from a goroutine, which keeps its cases in its state
  local e = in_goroutine(function()
    local ok, err = pcall(go.select, {{b, "send", {1}}, {b, "send", coroutine.create(print)}})
    return err
  end)
  lu.assertStrContains(e, "cannot transfer")
  lu.assertEquals(#b, 0)
  usable()
end

function test_spawn_refuses_non_functions_and_bad_limits()
  for _, bad in ipairs{1, "print(1)", {}, true} do
    lu.assertStrContains(goro_error(go, bad), "function")
    goro_error(go.spawn, bad)
  end
  goro_error(go)
  goro_error(go.spawn)
  goro_error(go.spawn, {limit = 1e6})
  for _, lim in ipairs{0, -1, "x", {}, -math.huge} do
    goro_error(go.spawn, {limit = lim}, function() end)
  end
  lu.assertEquals(go.numgoroutine(), 0)
  usable()
end

function test_gomaxprocs_refuses_bad_values_and_keeps_its_value()
  local before = go.gomaxprocs()
  for _, bad in ipairs{-1, 1e9, 257, math.huge, -math.huge} do
    lu.assertStrContains(goro_error(go.gomaxprocs, bad), "gomaxprocs")
  end
  for _, bad in ipairs{"x", 1.5, {}, 0 / 0} do fails(go.gomaxprocs, bad) end
  lu.assertEquals(go.gomaxprocs(0), before, "0 reads it, as Go's GOMAXPROCS(0)")
  lu.assertEquals(go.gomaxprocs(), before)
  usable()
end

function test_maxthreads_refuses_bad_values_and_keeps_its_value()
  local before = go.maxthreads()
  for _, bad in ipairs{-1, 1e7} do goro_error(go.maxthreads, bad) end
  for _, bad in ipairs{"x", 1.5, {}} do fails(go.maxthreads, bad) end
  lu.assertEquals(go.maxthreads(), before)
  usable()
end

function test_waitgroup_add_refuses_non_integers_and_keeps_its_count()
  local wg = go.waitgroup()
  fails(wg.add, wg, "x")
  fails(wg.add, wg, 1.5)
  fails(wg.add, wg, {})
  lu.assertEquals(wg:count(), 0)
  usable()
end

function test_blocking_refuses_a_non_function()
  fails(go.blocking, "x")
  fails(go.blocking)
  usable()
end

function test_go_wait_inside_a_goroutine_is_a_goro_error()
  local e = in_goroutine(function() local ok, err = pcall(go.wait); return err end)
  lu.assertStrContains(e, "goro:")
  lu.assertStrContains(e, "waitgroup")
  usable()
end

-- ------------------------------------------------------------ sync

function test_waitgroup_counter_below_zero_is_an_error_that_changes_nothing()
  local wg = go.waitgroup()
  lu.assertStrContains(goro_error(wg.done, wg), "negative WaitGroup counter")
  wg:add(1)
  lu.assertStrContains(goro_error(wg.add, wg, -2), "negative WaitGroup counter")
  lu.assertEquals(wg:count(), 1) -- the failed add changed nothing
  local e = in_goroutine(function()
    wg:done()
    local ok, err = pcall(wg.done, wg)
    return err
  end)
  lu.assertStrContains(e, "goro: negative WaitGroup counter")
  wg:wait() -- at zero: returns at once
  lu.assertEquals(wg:count(), 0)
  usable()
end

-- add() past the largest integer: an error, not a signed overflow (UB).
function test_waitgroup_add_past_maxinteger_is_an_error_not_an_overflow()
  local rc, out, err = run_lua(PRELUDE .. [[
    local wg = go.waitgroup()
    wg:add(math.maxinteger)
    local ok, e = pcall(wg.add, wg, 1)
    print(ok, e, wg:count() == math.maxinteger)
  ]], 10)
  clean(err)
  lu.assertEquals(rc, 0, err)
  lu.assertStrContains(out, "false")
  lu.assertStrContains(out, "goro:")
  lu.assertStrContains(out, "true\n")
end

local function has_mutex()
  local ok, m = pcall(function() return go.mutex end)
  return ok and type(m) == "function"
end

function test_unlock_of_an_unlocked_mutex_is_an_error_and_the_lock_still_works()
  if not has_mutex() then lu.skip("go.mutex is not there (lua/goro/sync.lua)") end
  local mu = go.mutex()
  lu.assertStrContains(goro_error(mu.unlock, mu), "unlock")
  mu:lock()
  mu:unlock()
  lu.assertStrContains(goro_error(mu.unlock, mu), "unlock")
  local e = in_goroutine(function()
    local ok, err = pcall(mu.unlock, mu)
    return err
  end)
  lu.assertStrContains(e, "goro:")
  -- still a working lock
  mu:lock()
  lu.assertFalse(mu:trylock())
  mu:unlock()
  usable()
end

-- ------------------------------------------------------------ transfer

local function refused(fn, ...)
  local err = goro_error(fn, ...)
  lu.assertStrContains(err, "cannot transfer")
  return err
end

function test_untransferable_values_are_refused_and_nothing_is_sent()
  local c = go.chan(4)
  local co = coroutine.create(function() end)
  local bad = {
    io.stdout, io.tmpfile(), co, io.lines("/dev/null"), string.gmatch("a b", "%a+"),
    {deep = {er = {file = io.stderr}}},
    setmetatable({}, {__index = io.stdout}),
    {[io.stdout] = true},
    function() return co end,
  }
  for i, v in ipairs(bad) do
    refused(c.send, c, v)
    refused(c.trysend, c, v)
    refused(go.select, {{c, "send", v}})
    refused(go, function() end, 1, v)
    lu.assertEquals(#c, 0, "value " .. i .. " was half sent")
  end
  lu.assertEquals(go.numgoroutine(), 0, "a goroutine started with a bad argument")
  usable()
end

function test_refusal_names_the_type_and_where()
  local f = io.stdout
  local e = refused(go, function() return f end)
  lu.assertStrContains(e, "upvalue 'f'")
  lu.assertStrContains(e, "FILE*")
  e = refused(go, function() end, 1, {cfg = {out = io.stderr}})
  lu.assertStrContains(e, "argument 3")
  lu.assertStrContains(e, "cfg.out")
  local c = go.chan(1)
  e = refused(c.send, c, coroutine.create(print))
  lu.assertStrContains(e, "thread")
  local co = coroutine.create(print)
  local function uses() return co end
  e = refused(c.send, c, {fn = uses})
  lu.assertStrContains(e, "upvalue 'co'")
  usable()
end

-- A userdata that is not goro's (here: the runtime's own guard object in
-- the registry, the only non-FILE userdata plain Lua offers) is refused.
function test_foreign_userdata_is_refused()
  local reg = debug.getregistry()
  local foreign
  for _, v in pairs(reg) do
    if type(v) == "userdata" and not (getmetatable(v) or {}).__goro and
       getmetatable(v) ~= getmetatable(io.stdout) then
      foreign = v
      break
    end
  end
  lu.assertNotNil(foreign, "no foreign userdata found in the registry")
  local c = go.chan(1)
  refused(c.send, c, foreign)
  refused(go, function() end, foreign)
  refused(go, function() return foreign end)
  lu.assertEquals(#c, 0)
  -- a userdata dressed up as a goro object (its own metatable with the
  -- marker field) is still foreign: taken for one, its memory would be
  -- read as a goro object's
  local f = io.tmpfile()
  local filemt = getmetatable(f)
  debug.setmetatable(f, {__goro = true, __name = "goro.chan"})
  refused(c.send, c, f)
  refused(go, function() end, f)
  goro_error(getmetatable(c).__index.send, f, 1)
  lu.assertEquals(#c, 0)
  debug.setmetatable(f, filemt)
  f:close()
  usable()
end

-- A luaunit object is a table with a metatable of functions: it either
-- crosses as a copy or is refused with a goro: error, never a crash.
function test_a_luaunit_object_crosses_as_a_copy_or_is_refused()
  local obj = lu.LuaUnit.new()
  local c = go.chan(1)
  local ok, err = pcall(c.send, c, obj)
  if ok then
    local v = recv(c)
    lu.assertEquals(type(v), "table")
    lu.assertEquals(type(getmetatable(v)), "table")
  else
    lu.assertStrContains(tostring(err), "goro:")
  end
  local r = in_goroutine(function(o) return type(o) end, lu)
  lu.assertEquals(r, "table")
  usable()
end

-- Functions loaded from stripped bytecode (no debug info, no upvalue
-- names) work as goroutines, as arguments and as values.
function test_functions_from_stripped_dumps_work_as_goroutines_arguments_and_values()
  local add = load(string.dump(function(a, b) return a + b end, true))
  lu.assertEquals(in_goroutine(function(f) return f(2, 3) end, add), 5)
  -- as the goroutine's own function, using globals
  local c = go.chan(1)
  local entry = load(string.dump(function(ch, n) ch:send(string.rep("a", n) .. math.type(n)) end, true))
  go(entry, c, 3)
  lu.assertEquals(recv(c), "aaainteger")
  -- nested closures, sent through a channel and called on the other side
  local mk = load(string.dump(function()
    local function counter() local n = 0; return function() n = n + 1; return n end end
    local k = counter()
    k()
    return k() + select("#", 1, 2)
  end, true))
  c:send(mk)
  lu.assertEquals(recv(c)(), 4)
  lu.assertEquals(in_goroutine(function(f) return f() end, mk), 4)
  -- an upvalue that is a stripped function, inside a goroutine
  lu.assertEquals(in_goroutine(function() return add(40, 2) end), 42)
  -- its errors still reach main
  local boom = load(string.dump(function() error("stripped-boom") end, true))
  go(boom)
  local err = goro_error(go.wait)
  lu.assertStrContains(err, "stripped-boom")
  usable()
end

-- ------------------------------------------------------------ big values

local function chain(n, link)
  local root = {}
  local t = root
  for _ = 1, n do t = link(t) end
  return root
end
local function nest(t) local u = {}; t[1] = u; return u end
local function nest_meta(t) local u = {}; setmetatable(t, u); return u end
local function nest_key(t) local u = {}; t[u] = true; return u end

function test_very_deep_tables_get_a_clear_error()
  local c = go.chan(1)
  for _, link in ipairs{nest, nest_meta, nest_key} do
    local deep = chain(10000, link)
    lu.assertStrContains(refused(c.send, c, deep), "too deep")
    lu.assertStrContains(refused(go, function() end, deep), "too deep")
    lu.assertStrContains(refused(go, function() return deep end), "too deep")
    lu.assertEquals(#c, 0)
  end
  -- a deep linked list of 10 000 nodes, with a cycle back to the head
  local head = chain(10000, function(t) t.next = {}; return t.next end)
  local last = head
  while last.next do last = last.next end
  last.next = head
  lu.assertStrContains(refused(c.send, c, head), "too deep")
  usable()
end

-- Under the limit, a deep value crosses intact.
function test_deep_tables_under_the_limit_cross()
  local c = go.chan(1)
  local deep = chain(150, nest)
  c:send(deep)
  local got, n = recv(c), 0
  while got[1] do got = got[1]; n = n + 1 end
  lu.assertEquals(n, 150)
  lu.assertEquals(in_goroutine(function(t)
    local k = 0
    while t[1] do t = t[1]; k = k + 1 end
    return k
  end, deep), 150)
  usable()
end

-- The error for a deep value should be readable: not a path of 200 steps.
function test_deep_table_error_is_short()
  local c = go.chan(1)
  local err = refused(c.send, c, chain(10000, nest))
  lu.assertTrue(#err < 400, ("the error is %d bytes long: %s..."):format(#err, err:sub(1, 200)))
end

-- The segment that passes the limit is named too: a closure chain's error
-- ends at the upvalue that was one too many (it once read that path
-- segment before writing it: garbage, or a crash, under valgrind).
function test_deep_closure_error_names_the_upvalue_past_the_limit()
  local c = go.chan(1)
  local f = function() return 1 end
  for _ = 1, 250 do local inner = f; f = function() return inner() + 1 end end
  local err = refused(c.send, c, f)
  lu.assertStrContains(err, "upvalue 'inner' (function): nesting is too deep (limit 200)")
  -- and a global the code names, past the limit
  local g = load("return function() return fz_deep end")()
  for _ = 1, 200 do local inner = g; g = function() return inner() end end
  fz_deep = {}
  err = refused(c.send, c, g)
  fz_deep = nil
  lu.assertStrContains(err, "global 'fz_deep' (table): nesting is too deep (limit 200)")
  lu.assertEquals(#c, 0)
  usable()
end

-- Deep chains of closures (each the upvalue of the next) in a child
-- process: a crash must not take this file down.
function test_deep_closure_chains_cross_under_the_limit_and_are_refused_past_it()
  local rc, out, err = run_lua(PRELUDE .. [[
    local c = go.chan(1)
    for _, n in ipairs{10, 100, 150, 199, 250, 10000} do
      local f = function() return 1 end
      for i = 1, n do local g = f; f = function() return g() + 1 end end
      local ok, e = pcall(c.send, c, f)
      if ok then
        local g = c:recv()
        print(n, "sent", g() == n + 1)
      else
        print(n, "refused", tostring(e):find("goro:", 1, true) ~= nil, tostring(e):find("too deep", 1, true) ~= nil)
      end
    end
  ]], 20)
  clean(err)
  lu.assertEquals(rc, 0, "the child crashed (status " .. tostring(rc) .. "): " .. err:sub(1, 1500))
  for _, n in ipairs{10, 100, 150, 199} do
    lu.assertStrContains(out, n .. "\tsent\ttrue")
  end
  lu.assertStrContains(out, "10000\trefused\ttrue\ttrue")
end

function test_huge_strings_cross()
  local mb = TSAN and 16 or 50
  local s = ("0123456789abcdef"):rep(mb * 65536) -- mb MiB
  local c = go.chan()
  go(function()
    local v = c:recv()
    c:send({#v, v:sub(1, 16), v:sub(-16), v:byte(#v // 2 + 1)})
    c:send(v .. "!") -- and a copy back
  end)
  c:send(s)
  local r = recv(c, 60)
  lu.assertEquals(r, {#s, "0123456789abcdef", "0123456789abcdef", s:byte(#s // 2 + 1)})
  local back = recv(c, 60)
  lu.assertEquals(#back, #s + 1)
  lu.assertTrue(back:sub(1, #s) == s)
  back = nil
  -- as a spawn argument and inside a table
  lu.assertEquals(in_goroutine(function(t) return #t.s end, {s = s}), #s)
  s = nil
  collectgarbage()
  usable()
end

function test_big_tables_cross()
  local n = TSAN and 20000 or 200000
  local t = {}
  for i = 1, n do t[i] = i % 3 == 0 and i + 0.5 or i end
  local r = in_goroutine(function(t)
    local ints, floats = 0, 0
    for _, v in ipairs(t) do
      if math.type(v) == "integer" then ints = ints + 1 else floats = floats + 1 end
    end
    return {#t, ints, floats}
  end, t)
  lu.assertEquals(r, {n, n - n // 3, n // 3})
  usable()
end

function test_select_over_10000_cases_picks_the_ready_one()
  local N = 10000
  local chans, cases = {}, {}
  for i = 1, N do chans[i] = go.chan(1); cases[i] = {chans[i], "recv"} end
  -- main: one ready case among 10 000
  chans[7777]:send("x")
  local i, v, ok = go.select(cases)
  lu.assertEquals({i, v, ok}, {7777, "x", true})
  -- nothing ready, default
  lu.assertNil(go.select(setmetatable({default = true}, {__index = cases})) )
  local withdefault = {default = true}
  for k = 1, N do withdefault[k] = cases[k] end
  lu.assertNil(go.select(withdefault))
  -- a goroutine parked on 10 000 cases, woken by one of them
  local out = go.chan()
  go(function()
    local cs = {}
    for k = 1, N do cs[k] = {chans[k], "recv"} end
    local i, v = go.select(cs)
    out:send({i, v})
  end)
  chans[5000]:send("y")
  lu.assertEquals(recv(out), {5000, "y"})
  -- 10 000 send cases (values: tables) and a timeout; one receiver
  local sends = {}
  local unbuf = {}
  for k = 1, N do unbuf[k] = go.chan(); sends[k] = {unbuf[k], "send", {k}} end
  go(function() local v = unbuf[4321]:recv(); out:send(v[1]) end)
  local i2 = go.select(sends)
  lu.assertEquals(i2, 4321)
  lu.assertEquals(recv(out), 4321)
  -- a closed one among them
  chans[N]:close()
  local i3, v3, ok3 = go.select(cases)
  lu.assertEquals({i3, v3, ok3}, {N, nil, false})
  -- only timeouts
  for k = 1, N do cases[k] = {nil, "recv"} end
  cases[N + 1] = {go.after(0.001), "recv"}
  lu.assertEquals(go.select(cases), N + 1)
  usable()
end

-- ------------------------------------------------------------ finalizers

function test_a_gc_metamethod_may_spawn_goroutines()
  local c = go.chan(64)
  for i = 1, 5 do
    setmetatable({}, {__gc = function() go(function(i) c:send(i) end, i) end})
  end
  collectgarbage()
  collectgarbage()
  local sum = 0
  for _ = 1, 5 do sum = sum + recv(c) end
  lu.assertEquals(sum, 15)
  -- in a goroutine's state
  go(function()
    for i = 1, 5 do
      setmetatable({}, {__gc = function() go(function(i) c:send(i * 10) end, i) end})
    end
    collectgarbage()
    collectgarbage()
  end)
  sum = 0
  for _ = 1, 5 do sum = sum + recv(c) end
  lu.assertEquals(sum, 150)
  usable()
end

-- A finalizer cannot yield: a channel operation in it blocks the thread
-- (with a P handoff) instead, and completes.
function test_a_channel_operation_in_a_gc_metamethod_blocks_and_completes()
  local c = go.chan()
  go(function()
    setmetatable({}, {__gc = function() c:send("from __gc") end})
    collectgarbage()
    collectgarbage()
  end)
  lu.assertEquals(recv(c), "from __gc")
  -- a finalizer left behind in a goroutine's state runs later, in a
  -- goroutine that reuses the pooled state; it must not break that one.
  -- (Its channel has room for all: a finalizer that blocked forever would
  -- keep its thread, and the deadlock detector cannot see it, see
  -- test_a_goroutine_blocked_where_it_cannot_yield_is_still_a_deadlock.)
  local late = go.chan(64)
  for _ = 1, 20 do
    go(function() setmetatable({}, {__gc = function() late:send("late") end}) end)
  end
  local d = go.chan(64)
  for k = 1, 20 do go(function(k) collectgarbage(); collectgarbage(); d:send(k) end, k) end
  local sum = 0
  for _ = 1, 20 do sum = sum + recv(d) end
  lu.assertEquals(sum, 210)
  go.wait()
  lu.assertTrue(#late <= 20)
  usable()
end

-- A goroutine blocked on a channel where it cannot yield (inside a
-- table.sort comparator, a finalizer, a metamethod called from C) blocks
-- its thread; when nothing can ever wake it, that is still a deadlock and
-- must be reported, not hung on (child process: it hangs).
function test_a_goroutine_blocked_where_it_cannot_yield_is_still_a_deadlock()
  local rc, out, err = run_lua(PRELUDE .. [[
    local c = go.chan()
    go(function() local t = {3, 1, 2}; table.sort(t, function(a, b) c:recv(); return a < b end) end)
    local d = go.chan()
    print(pcall(d.recv, d))
    print(pcall(go.wait))
  ]], 4)
  clean(err)
  lu.assertNotEquals(rc, 124, "hung instead of reporting the deadlock")
  lu.assertStrContains(out, "all goroutines are asleep - deadlock!")
end

-- Finalizers that spawn or send while the process exits (lua_close of the
-- main state, then of pooled goroutine states): a clean exit, no crash.
function test_gc_metamethods_that_spawn_or_send_at_exit_exit_cleanly()
  local rc, out, err = run_lua(PRELUDE .. [[
    local c = go.chan(10)
    keep = setmetatable({}, {__gc = function() pcall(go, function() end); pcall(c.send, c, 1) end})
    go(function()
      keep2 = setmetatable({}, {__gc = function() pcall(go, function() end); pcall(c.send, c, 2) end})
    end)
    go.wait()
    print("end of script")
  ]], 10)
  clean(err)
  lu.assertStrContains(out, "end of script")
  lu.assertTrue(rc == 0 or rc == 1, "status " .. tostring(rc) .. ": " .. err)
end

function test_an_error_in_close_is_the_error_in_main_and_in_goroutines()
  local closing = setmetatable({}, {__close = function() error("close-boom", 0) end})
  local ok, err = pcall(function()
    local x <close> = closing
    return 1
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "close-boom")
  -- in a goroutine, caught there
  lu.assertStrContains(in_goroutine(function()
    local ok, err = pcall(function()
      local x <close> = setmetatable({}, {__close = function() error("g-close-boom", 0) end})
      go.yield()
    end)
    return err
  end), "g-close-boom")
  usable()
end

-- Lua's own rule, which changed in 5.4.3 (lua/luacompat.h): an error in
-- __close while another error unwinds replaces it; before 5.4.3 the first
-- error stays (the second is a warning). A goroutine follows the rule of
-- the release it runs on, as plain Lua does in main.
function test_an_error_in_close_while_unwinding_follows_the_lua_release_rule()
  local function unwind()
    local x <close> = setmetatable({}, {__close = function() error("second", 0) end})
    error("first", 0)
  end
  local expected = S.lua_release >= 3 and "second" or "first"
  local ok, in_main = pcall(unwind)
  lu.assertFalse(ok)
  lu.assertEquals(in_main, expected, S.LUA_RELEASE .. " in main")
  lu.assertEquals(in_goroutine(function() return select(2, pcall(unwind)) end), expected,
    S.LUA_RELEASE .. " in a goroutine")
  usable()
end

function test_an_uncaught_error_in_close_reaches_main_once()
  go(function()
    local x <close> = setmetatable({}, {__close = function() error("uncaught-close-boom", 0) end})
  end)
  lu.assertStrContains(goro_error(go.wait), "uncaught-close-boom")
  go.wait() -- reported once: nothing left to raise
  usable()
end

-- A __close handler may block on a channel (it parks the goroutine).
function test_a_close_metamethod_may_park_on_a_channel()
  local c, d = go.chan(), go.chan()
  go(function()
    do
      local x <close> = setmetatable({}, {__close = function() d:send(c:recv() .. "+closed") end})
      c:send("in")
    end
  end)
  lu.assertEquals(recv(c), "in")
  c:send("ok")
  lu.assertEquals(recv(d), "ok+closed")
  usable()
end

-- ------------------------------------------------------------ os.exit

function test_os_exit_from_a_goroutine_exits_with_its_status()
  local cases = {
    {"os.exit(7)", 7}, {"os.exit(true)", 0}, {"os.exit(false)", 1}, {"os.exit(3, true)", 3},
  }
  for _, case in ipairs(cases) do
    local rc, out, err, secs = run_lua(PRELUDE .. [[
      local c = go.chan()
      -- busy loops need preemption to let the exiting goroutine run:
      -- signals reach a pure-Lua loop only outside ThreadSanitizer
      for i = 1, os.getenv("GORO_TSAN") == "1" and 0 or 4 do
        go(function() local x = 0; while true do x = x + 1 end end)
      end
      for i = 1, 4 do go(function() c:recv() end) end
      go(function() print("before exit"); ]] .. case[1] .. [[ end)
      c:recv()
      print("main went on")
    ]], 10)
    clean(err)
    lu.assertEquals(rc, case[2], case[1] .. ": " .. err)
    lu.assertStrContains(out, "before exit")
    lu.assertNotStrContains(out, "main went on")
    lu.assertTrue(secs < 5 * SLOW, case[1] .. " took " .. secs .. " s")
  end
end

-- From a nested goroutine while main waits in go.wait(), and while a
-- thousand goroutines are parked.
function test_os_exit_while_main_waits_exits_with_its_status()
  local rc, out, err = run_lua(PRELUDE .. [[
    local c = go.chan()
    for i = 1, 1000 do go(function() c:recv() end) end
    go(function() go(function() os.exit(42) end) end)
    go.wait()
  ]], 10)
  clean(err)
  lu.assertEquals(rc, 42, err)
end

os.exit(lu.LuaUnit.run())
