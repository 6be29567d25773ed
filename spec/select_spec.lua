-- select_spec.lua — go.select: random choice among ready cases, default,
-- nil channels, send cases, parking goroutines and closed channels.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local for_procs, scaled = S.for_procs, S.scaled

-- n selects over two channels that always have a value: returns the counts.
local function pick_counts(n)
  local a, b = go.chan(1), go.chan(1)
  local count = {0, 0}
  for _ = 1, n do
    if #a == 0 then a:send("a") end
    if #b == 0 then b:send("b") end
    local i, v, ok = go.select{{a, "recv"}, {b, "recv"}}
    count[i] = count[i] + 1
    assert(ok == true and v == (i == 1 and "a" or "b"), "wrong value for the case chosen")
  end
  return count
end

local function assert_uniform(count, n, what)
  for i = 1, 2 do
    local share = count[i] / n
    lu.assertTrue(share >= 0.4 and share <= 0.6,
      string.format("%s: case %d chosen %.1f%% of %d times", what, i, share * 100, n))
  end
end

---------------------------------------------------------------------------

function test_select_picks_ready_cases_uniformly_in_main()
  local n = scaled(10000, 2000)
  assert_uniform(pick_counts(n), n, "main state")
end

function test_select_picks_ready_cases_uniformly_in_a_goroutine()
  local n = scaled(10000, 2000)
  local res = go.chan()
  go(function()
    local a, b = go.chan(1), go.chan(1)
    local count = {0, 0}
    for _ = 1, n do
      if #a == 0 then a:send(1) end
      if #b == 0 then b:send(2) end
      local i, v = go.select{{a, "recv"}, {b, "recv"}}
      if v ~= i then error("case " .. i .. " gave " .. tostring(v)) end
      count[i] = count[i] + 1
    end
    res:send(count)
  end)
  assert_uniform(recv(res), n, "goroutine")
  go.wait()
end

function test_select_picks_ready_send_cases_uniformly()
  local n = scaled(10000, 2000)
  local a, b = go.chan(1), go.chan(1)
  local count = {0, 0}
  for _ = 1, n do
    local i = go.select{{a, "send", "x"}, {b, "send", "y"}}
    count[i] = count[i] + 1
    -- the chosen case's value went into its channel, the other's did not
    lu.assertEquals(#a + #b, 1)
    local got = (i == 1 and a or b):tryrecv()
    lu.assertEquals(got, i == 1 and "x" or "y")
  end
  assert_uniform(count, n, "send cases")
end

function test_select_default_when_nothing_is_ready()
  local a, b = go.chan(), go.chan(1)
  local r = {go.select{{a, "recv"}, {b, "recv"}, default = true}}
  lu.assertEquals(#r, 0)
  lu.assertNil(r[1])
  -- a full buffered channel's send case is not ready either
  b:send(1)
  lu.assertNil(go.select{{b, "send", 2}, default = true})
  lu.assertEquals(#b, 1)
  -- only a default
  lu.assertNil(go.select{default = true})
end

function test_select_prefers_a_ready_case_over_default()
  local c = go.chan(1)
  for i = 1, 1000 do
    c:send(i)
    local k, v, ok = go.select{{c, "recv"}, default = true}
    lu.assertEquals(k, 1)
    lu.assertEquals(v, i)
    lu.assertTrue(ok)
  end
end

function test_select_nil_channel_cases_never_fire()
  local c = go.chan(1)
  for i = 1, 1000 do
    c:send(i)
    local k, v = go.select{{nil, "recv"}, {c, "recv"}, {nil, "send", "never"}}
    lu.assertEquals(k, 2)
    lu.assertEquals(v, i)
  end
  lu.assertNil(go.select{{nil, "recv"}, {nil, "send", 1}, default = true})
end

function test_select_with_only_nil_channels_in_main_is_a_deadlock()
  local ok, err = pcall(go.select, {{nil, "recv"}})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "all goroutines are asleep - deadlock!")
  ok, err = pcall(go.select, {})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "all goroutines are asleep - deadlock!")
end

for_procs("test_select_nil_case_waits_for_the_real_one", {1, 2}, function()
  local c = go.chan()
  go(function()
    go.sleep(0.01)
    c:send("late")
  end)
  local k, v, ok = go.select{{nil, "recv"}, {c, "recv"}}
  lu.assertEquals({k, v, ok}, {2, "late", true})
  go.wait()
end)

for_procs("test_select_send_case_delivers_to_a_receiver", {1, 2}, function()
  local c, got = go.chan(), go.chan(1)
  go(function() got:send(c:recv()) end)
  local other = go.chan()
  local i = go.select{{other, "recv"}, {c, "send", {payload = 42}}}
  lu.assertEquals(i, 2)
  lu.assertEquals(recv(got), {payload = 42})
  go.wait()
end)

function test_select_unchosen_send_values_are_not_delivered()
  local full, ready = go.chan(1), go.chan(1)
  full:send("old")
  ready:send("r")
  for _ = 1, 100 do
    local i = go.select{{full, "send", "new"}, {ready, "recv"}}
    lu.assertEquals(i, 2)
    ready:send("r")
  end
  lu.assertEquals(#full, 1)
  lu.assertEquals(recv(full), "old")
end

for_procs("test_select_in_parking_goroutines_loses_nothing", {1, 2, 4}, function()
  -- a goroutine multiplexes two unbuffered inputs and a quit channel; the
  -- inputs are fed by producers that start only after it has parked
  local n = scaled(3000, 300)
  local a, b, quit, res = go.chan(), go.chan(), go.chan(), go.chan()
  go(function()
    local sa, sb, na, nb = 0, 0, 0, 0
    while true do
      local i, v = go.select{{a, "recv"}, {b, "recv"}, {quit, "recv"}}
      if i == 1 then sa, na = sa + v, na + 1
      elseif i == 2 then sb, nb = sb + v, nb + 1
      else break end
    end
    res:send({sa, na, sb, nb})
  end)
  local wg = go.waitgroup()
  wg:add(2)
  go(function() for i = 1, n do a:send(i) end wg:done() end)
  go(function() for i = 1, n do b:send(-i) end wg:done() end)
  wg:wait()
  quit:close()
  local r = recv(res)
  lu.assertEquals(r, {n * (n + 1) // 2, n, -(n * (n + 1) // 2), n})
  go.wait()
end)

for_procs("test_select_send_case_parks_until_main_receives", {1, 2}, function()
  local c, done = go.chan(), go.chan(1)
  go(function()
    local never = go.chan()
    for i = 1, 100 do
      local k = go.select{{never, "recv"}, {c, "send", i}}
      if k ~= 2 then error("wrong case " .. tostring(k)) end
    end
    done:send(true)
  end)
  for i = 1, 100 do lu.assertEquals(recv(c), i) end
  lu.assertTrue(recv(done))
  go.wait()
end)

function test_select_recv_on_closed_channel_fires_with_ok_false()
  local c = go.chan()
  c:close()
  local empty = go.chan()
  for _ = 1, 10 do
    local i, v, ok = go.select{{empty, "recv"}, {c, "recv"}}
    lu.assertEquals(i, 2)
    lu.assertNil(v)
    lu.assertFalse(ok)
  end
  -- with a default, the closed channel still wins: it is ready
  lu.assertEquals(go.select{{c, "recv"}, default = true}, 1)
end

function test_select_send_on_closed_channel_is_an_error()
  local c = go.chan(1)
  c:close()
  local ok, err = pcall(go.select, {{go.chan(), "recv"}, {c, "send", 1}})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro:")
  lu.assertStrContains(err, "send on closed channel")
end

for_procs("test_close_wakes_a_goroutine_parked_in_select", {1, 2}, function()
  local c, other, res = go.chan(), go.chan(), go.chan()
  go(function()
    local i, v, ok = go.select{{other, "recv"}, {c, "recv"}}
    res:send({i, v == nil, ok})
  end)
  go.sleep(0.01) -- most likely parked by now; if not, the outcome is the same
  c:close()
  lu.assertEquals(recv(res), {2, true, false})
  go.wait()
end)

for_procs("test_select_with_a_timeout_case", {1, 2}, function()
  local never = go.chan()
  local i, v = go.select{{never, "recv"}, {go.after(0.02), "recv"}}
  lu.assertEquals(i, 2)
  lu.assertEquals(type(v), "number")
  -- in a goroutine too
  local res = go.chan()
  go(function()
    local k = go.select{{never, "recv"}, {go.after(0.02), "recv"}}
    res:send(k)
  end)
  lu.assertEquals(recv(res), 2)
  go.wait()
end)

function test_select_with_many_cases()
  local chans, cases = {}, {}
  for i = 1, 40 do
    chans[i] = go.chan(1)
    cases[i] = {chans[i], "recv"}
  end
  chans[33]:send("thirty-three")
  local i, v, ok = go.select(cases)
  lu.assertEquals({i, v, ok}, {33, "thirty-three", true})
  local res = go.chan()
  go(function()
    chans[7]:send("seven")
    res:send({go.select(cases)})
  end)
  lu.assertEquals(recv(res), {7, "seven", true})
  go.wait()
end

function test_select_rejects_malformed_cases()
  local c = go.chan(1)
  local bad = {
    {c},                      -- no direction
    {{c, "sideways"}},        -- unknown direction
    {"not a case"},           -- not a table
    {{{}, "recv"}},           -- not a channel
  }
  for _, cases in ipairs(bad) do
    local ok, err = pcall(go.select, cases)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro:")
  end
  -- a rejected select leaves the channels untouched and usable
  lu.assertTrue(c:trysend(1))
  lu.assertEquals(recv(c), 1)
end

os.exit(lu.LuaUnit.run())
