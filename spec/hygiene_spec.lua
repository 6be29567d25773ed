-- A goroutine leaves nothing behind (issue #13): a pooled state is handed
-- to the next goroutine without its predecessor's heap, function or
-- upvalues, and the prototype caches are keyed by content and bounded.
-- (Growth of the process over many waves: bench/soak.lua, `make soak`.)
local lu = require "luaunit"
local go = require "goro"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv

-- The largest heap (KB, collectgarbage "count") seen by n goroutines run
-- one after the other, so that each lands on a pooled state.
local function heaps_seen(n)
  local out, most = go.chan(1), 0
  for _ = 1, n do
    go(function(o) o:send(collectgarbage("count")) end, out)
    most = math.max(most, (recv(out)))
  end
  return most
end

-- Whether a value whose __gc sends on freed is collected once later
-- goroutines (which land on the pooled states) run full collections.
local function collected_later(freed)
  -- up to 200 rounds: the state that held the value may sit in the pool of
  -- a thread (an M, or main's) that runs few of these goroutines
  for _ = 1, 200 do
    local wg = go.waitgroup()
    for _ = 1, 4 do
      wg:add(1)
      go(function(w) collectgarbage(); collectgarbage(); w:done() end, wg)
    end
    wg:wait()
    if freed:tryrecv() then return true end
  end
  return false
end

function test_a_state_after_a_big_goroutine_starts_small()
  local done = go.chan(1)
  go(function(d, n)
    local t = {}
    for i = 1, n do t[i] = {i} end
    d:send(collectgarbage("count"))
  end, done, S.scaled(100000, 20000))
  local big = recv(done)
  lu.assertTrue(big > 1000, "the big goroutine's heap: " .. big .. " KB")
  local most = heaps_seen(40)
  lu.assertTrue(most < 100, string.format("a later goroutine started with %.0f KB "
    .. "(the big one had %.0f KB)", most, big))
end

function test_a_pooled_state_drops_its_last_goroutines_upvalues()
  -- the upvalue's copy in the goroutine's state reports its own collection
  local freed = go.chan(1)
  local t = setmetatable({}, {__gc = function() freed:trysend(true) end})
  local ran = go.chan(1)
  -- the goroutine's last act spawns collectors: they run next on its
  -- thread, which hands them its just-pooled state first (the pool is LIFO)
  go(function(r)
    local _ = t
    for _ = 1, 2 do go(function() collectgarbage(); collectgarbage() end) end
    r:send(true)
  end, ran)
  recv(ran)
  local got = collected_later(freed)
  lu.assertTrue(got, "the finished goroutine's upvalue stayed alive in its pooled state")
end

function test_a_pooled_state_drops_the_arguments_and_results()
  local freed = go.chan(1)
  local arg = setmetatable({}, {__gc = function() freed:trysend(true) end})
  local ran = go.chan(1)
  go(function(r, a) -- collectors run next on its thread, as above
    for _ = 1, 2 do go(function() collectgarbage(); collectgarbage() end) end
    r:send(true)
    return a
  end, ran, arg)
  recv(ran)
  local got = collected_later(freed)
  lu.assertTrue(got, "the finished goroutine's argument stayed alive in its pooled state")
end

-- Runs body (Lua source) in a fresh process, spawning with d = go.chan(1)
-- and n = count; returns the largest heap (KB) 20 goroutines run after it
-- saw, so that no other test's states are measured.
local function heap_after(body, n)
  local src = [[
local go = require "goro"
local d, n = go.chan(1), ]] .. n .. "\n" .. body .. [[
local out, most = go.chan(1), 0
for _ = 1, 20 do
  go(function(o) o:send(collectgarbage("count")) end, out)
  most = math.max(most, (out:recv()))
end
print(("heap=%.0f"):format(most))
]]
  local rc, out, err = S.run_lua(src)
  lu.assertEquals(rc, 0, err)
  return tonumber(out:match("heap=(%d+)"))
end

function test_the_same_source_loaded_many_times_is_one_cached_prototype()
  -- each load() makes a new prototype; the states cache one closure per
  -- distinct bytecode, so they stay small however many times it was loaded
  local most = heap_after([[
for _ = 1, n do go(load("local d = ... ; d:send(true)"), d); d:recv() end
]], S.scaled(2000, 300))
  lu.assertTrue(most < 100, string.format("a goroutine state grew to %.0f KB", most))
end

function test_distinct_functions_keep_the_caches_bounded()
  local most = heap_after([[
for i = 1, n do go(load("local d = ... ; d:send(" .. i .. ")"), d); assert(d:recv() == i) end
]], S.scaled(3000, 600))
  lu.assertTrue(most < 400, string.format("a goroutine state grew to %.0f KB", most))
end

function test_a_function_sent_back_and_forth_runs_the_right_code()
  -- content keys: two functions with the same code but different upvalues
  -- stay distinct closures, each with its own values
  local out = go.chan(2)
  local function mk(v) return function(o) o:send(v) end end
  go(mk(1), out)
  lu.assertEquals(recv(out), 1)
  go(mk(2), out)
  lu.assertEquals(recv(out), 2)
  go(function(o, f) f(o) end, out, mk(3))
  lu.assertEquals(recv(out), 3)
end

os.exit(lu.LuaUnit.run())
