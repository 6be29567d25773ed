-- xfer_unwind_spec.lua — a transfer that fails half way leaves nothing
-- behind: every Lua error raised while a value is encoded (a value that
-- cannot cross, a memory error of a limited goroutine) frees the message
-- and the references it took, and the runtime goes on. The encoder calls no
-- user code: a strict _ENV (an __index on _G that raises for undeclared
-- names) is read raw. `make valgrind VALGRIND_SPECS=spec/xfer_unwind_spec.lua`
-- checks that nothing leaks.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"

local N = 200 -- the size of the leak report: ~36 KB lost per 200 spawns

-- Runs body with _G strict: reading or assigning an undeclared global
-- raises (and counts the reads). Declared names are set raw beforehand.
-- Returns how many times the strict __index ran.
local function with_strict_globals(declared, body)
  local reads = 0
  for k, v in pairs(declared) do rawset(_G, k, v) end
  local old = getmetatable(_G)
  setmetatable(_G, {
    __index = function(_, k)
      reads = reads + 1
      error("undeclared global '" .. tostring(k) .. "'", 2)
    end,
    __newindex = function(_, k) error("assignment to undeclared global '" .. tostring(k) .. "'", 2) end,
  })
  local ok, err = pcall(body)
  setmetatable(_G, old)
  for k in pairs(declared) do rawset(_G, k, nil) end
  if not ok then error(err, 0) end
  return reads
end

-- The runtime still spawns, sends and receives.
local function assert_runtime_works()
  go.wait()
  lu.assertEquals(go.numgoroutine(), 0)
  local c = go.chan()
  go(function(t) c:send(t.a + t.b) end, {a = 20, b = 22})
  lu.assertEquals(S.recv(c), 42)
  go.wait()
end

-- Spawns fn(i) for i = 1..N with pcall; returns how many spawns failed
-- and the last error.
local function spawn_each(fn)
  local failures, last = 0, nil
  for i = 1, N do
    local ok, err = pcall(go, fn, i)
    if not ok then failures, last = failures + 1, err end
  end
  return failures, last
end

function test_strict_env_spawn_of_an_undeclared_global_reads_it_raw()
  local c = go.chan(N)
  local failures, last
  local reads = with_strict_globals({}, function()
    failures, last = spawn_each(function(i) c:send({i, undeclared_in_strict_env == nil}) end)
  end)
  lu.assertEquals(failures, 0, last)
  lu.assertEquals(reads, 0, "the encoder called the strict __index")
  local sum = 0
  for _ = 1, N do
    local r = S.recv(c)
    lu.assertTrue(r[2], "an undeclared global arrived with a value")
    sum = sum + r[1]
  end
  lu.assertEquals(sum, N * (N + 1) // 2)
  assert_runtime_works()
end

function test_strict_env_spawn_copies_the_declared_globals()
  local c = go.chan(N)
  local failures, last
  with_strict_globals({declared_in_strict_env = 7}, function()
    failures, last = spawn_each(function(i) c:send(declared_in_strict_env + i) end)
  end)
  lu.assertEquals(failures, 0, last)
  local sum = 0
  for _ = 1, N do sum = sum + S.recv(c) end
  lu.assertEquals(sum, N * 7 + N * (N + 1) // 2)
  assert_runtime_works()
end

function test_strict_env_spawn_of_a_global_that_cannot_cross_fails_at_spawn()
  local failures, last
  -- the upvalue (a table) and the function are encoded before the failure
  local t = {1, 2, {3}}
  with_strict_globals({strict_env_co = coroutine.create(print)}, function()
    failures, last = spawn_each(function() return t, strict_env_co end)
  end)
  lu.assertEquals(failures, N)
  lu.assertStrContains(last, "goro: cannot transfer global 'strict_env_co' (thread)")
  lu.assertStrContains(last, "create it inside the goroutine")
  assert_runtime_works()
end

function test_failed_sends_leave_the_channel_and_its_values_alone()
  local c, other = go.chan(N), go.chan()
  for i = 1, N do
    -- a goro object and a function before the value that cannot cross
    local v = {other, function() return i end, {deep = {io.stdout}}}
    local ok, err = pcall(c.send, c, v)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "field '[3].deep[1]' (userdata FILE*)")
    ok, err = pcall(go.select, {{c, "send", v}, default = true})
    lu.assertFalse(ok)
    lu.assertStrContains(err, "field '[3].deep[1]' (userdata FILE*)")
  end
  lu.assertEquals(#c, 0)
  c:send({other, function() return 5 end})
  local r = c:recv()
  lu.assertEquals(r[1], other)
  lu.assertEquals(r[2](), 5)
  assert_runtime_works()
end

-- A goroutine at its memory limit sends a function it never sent before:
-- the encoder's own allocations (the prototype's cache entry) fail. The
-- send raises "not enough memory"; once the goroutine frees its ballast,
-- it sends again.
function test_memory_error_while_encoding_is_contained()
  local rounds = S.scaled(N, 20)
  local res = go.chan(rounds)
  for r = 1, rounds do
    go.spawn({limit = 4e5}, function()
      local c = go.chan(4)
      local fresh = load("return " .. r) -- a prototype not sent yet
      local payload = {f = fresh, n = r}
      -- warm up: the maps, the caches and the call frames exist
      c:send({f = function() return 0 end, n = 0})
      c:recv()
      -- fill the state to its limit, a small table at a time
      local ballast
      local function grow() ballast = {ballast} end
      while pcall(grow) do end
      local ok, err = pcall(c.send, c, payload)
      ballast = nil
      collectgarbage()
      c:send(payload)
      local back = c:recv()
      res:send({ok, tostring(err), back.f(), back.n})
    end)
  end
  local failed = 0
  for _ = 1, rounds do
    local r = S.recv(res)
    if not r[1] then
      failed = failed + 1
      lu.assertStrContains(r[2], "not enough memory")
    end
    lu.assertEquals(r[3], r[4])
  end
  lu.assertTrue(failed > 0, "no send ran out of memory")
  assert_runtime_works()
end

os.exit(lu.LuaUnit.run())
