-- channel_spec.lua — go.chan: Go's channel semantics from Lua: unbuffered
-- rendezvous, buffered FIFO, close, try-operations, range, and no message
-- lost or duplicated under concurrency.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv, range = S.recv, S.range -- with a watchdog: a regression fails, never hangs
local for_procs, scaled, eventually = S.for_procs, S.scaled, S.eventually

---------------------------------------------------------------------------

for_procs("test_unbuffered_send_waits_for_a_receiver", {1, 2}, function()
  local c, sent = go.chan(), go.chan(1)
  go(function()
    c:send("hello")
    sent:send(true)
  end)
  -- nobody receives yet: the sender must still be blocked after a while
  go.sleep(0.05)
  lu.assertEquals({sent:tryrecv()}, {nil, false}, "unbuffered send finished without a receiver")
  lu.assertEquals(#c, 0)
  lu.assertEquals({recv(c)}, {"hello", true})
  lu.assertEquals({recv(sent)}, {true, true})
  go.wait()
end)

for_procs("test_unbuffered_recv_waits_for_a_sender", {1, 2}, function()
  local c, got = go.chan(), go.chan(1)
  go(function() got:send(c:recv()) end)
  go.sleep(0.05)
  lu.assertEquals({got:tryrecv()}, {nil, false}, "recv finished without a sender")
  c:send(7)
  lu.assertEquals(recv(got), 7)
  go.wait()
end)

function test_buffered_channel_is_fifo_and_does_not_block_until_full()
  local c = go.chan(100)
  for i = 1, 100 do c:send(i) end -- no receiver: must not block
  lu.assertEquals(#c, 100)
  lu.assertFalse(c:trysend(101))
  for i = 1, 100 do
    local v, ok = c:recv()
    lu.assertEquals(v, i)
    lu.assertTrue(ok)
  end
  lu.assertEquals(#c, 0)
end

for_procs("test_buffered_channel_keeps_order_between_goroutines", {1, 2}, function()
  local n = scaled(20000, 2000)
  local c = go.chan(16)
  go(function()
    for i = 1, n do c:send(i) end
    c:close()
  end)
  local expect = 1
  for v in range(c) do
    lu.assertEquals(v, expect)
    expect = expect + 1
  end
  lu.assertEquals(expect, n + 1)
  go.wait()
end)

function test_len_counts_buffered_values_and_cap_is_the_capacity()
  local u, b = go.chan(), go.chan(5)
  lu.assertEquals(u:cap(), 0)
  lu.assertEquals(#u, 0)
  lu.assertEquals(b:cap(), 5)
  lu.assertEquals(#b, 0)
  b:send("a")
  b:send("b")
  lu.assertEquals(#b, 2)
  lu.assertEquals(b:len(), 2)
  recv(b)
  lu.assertEquals(#b, 1)
  lu.assertEquals(b:cap(), 5)
  lu.assertEquals(math.type(#b), "integer")
  lu.assertEquals(math.type(b:cap()), "integer")
end

function test_bad_capacity_is_an_error()
  local ok, err = pcall(go.chan, -1)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro:")
  lu.assertFalse((pcall(go.chan, "lots")))
end

function test_close_lets_receivers_drain_then_gives_nil_false()
  local c = go.chan(3)
  c:send(1)
  c:send(2)
  c:send(3)
  lu.assertFalse(c:closed())
  c:close()
  lu.assertTrue(c:closed())
  lu.assertEquals({c:recv()}, {1, true})
  lu.assertEquals({c:recv()}, {2, true})
  lu.assertEquals({c:tryrecv()}, {3, true})
  for _ = 1, 3 do
    lu.assertEquals({c:recv()}, {nil, false})
    lu.assertEquals({c:tryrecv()}, {nil, false, true}, "closed and drained: the third result says so")
  end
end

function test_send_on_closed_channel_is_an_error()
  for _, cap in ipairs({0, 4}) do
    local c = go.chan(cap)
    c:close()
    local ok, err = pcall(c.send, c, 1)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro: send on closed channel")
    ok, err = pcall(c.trysend, c, 1)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro: send on closed channel")
    lu.assertEquals(#c, 0)
  end
end

function test_close_of_closed_channel_is_an_error()
  local c = go.chan()
  c:close()
  local ok, err = pcall(c.close, c)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro:")
  lu.assertStrContains(err, "close")
  lu.assertTrue(c:closed())
end

function test_nil_and_false_are_values_distinct_from_closed()
  local c = go.chan(3)
  c:send(nil)
  c:send(false)
  c:close()
  lu.assertEquals({c:recv()}, {nil, true})
  lu.assertEquals({c:recv()}, {false, true})
  lu.assertEquals({c:recv()}, {nil, false})
end

function test_trysend_and_tryrecv_never_block()
  local u = go.chan()
  lu.assertFalse(u:trysend(1), "trysend on unbuffered channel with no receiver")
  lu.assertEquals({u:tryrecv()}, {nil, false})
  local b = go.chan(2)
  lu.assertTrue(b:trysend("x"))
  lu.assertTrue(b:trysend("y"))
  lu.assertFalse(b:trysend("z"))
  lu.assertEquals({b:tryrecv()}, {"x", true})
  lu.assertEquals({b:tryrecv()}, {"y", true})
  lu.assertEquals({b:tryrecv()}, {nil, false})
end

for_procs("test_trysend_hands_over_to_a_waiting_receiver", {1, 2}, function()
  local c, got = go.chan(), go.chan(1)
  go(function() got:send(c:recv()) end)
  lu.assertTrue(eventually(function() return c:trysend("direct") end),
    "trysend never met the blocked receiver")
  lu.assertEquals(recv(got), "direct")
  go.wait()
end)

for_procs("test_tryrecv_takes_from_a_waiting_sender", {1, 2}, function()
  local c = go.chan()
  go(function() c:send("offered") end)
  local v
  lu.assertTrue(eventually(function()
    local x, ok = c:tryrecv()
    v = x
    return ok
  end), "tryrecv never met the blocked sender")
  lu.assertEquals(v, "offered")
  go.wait()
end)

function test_range_in_main_and_in_goroutines()
  local c, sums = go.chan(), go.chan()
  go(function()
    local s, n = 0, 0
    for v in c:range() do s = s + v; n = n + 1 end
    sums:send({s, n})
  end)
  for i = 1, 1000 do c:send(i) end
  c:close()
  lu.assertEquals(recv(sums), {500500, 1000})
  -- range over a closed buffered channel drains it, then stops
  local b = go.chan(10)
  for i = 1, 10 do b:send(i * i) end
  b:close()
  local got = {}
  for v in b:range() do got[#got + 1] = v end
  lu.assertEquals(got, {1, 4, 9, 16, 25, 36, 49, 64, 81, 100})
  go.wait()
end

for_procs("test_close_wakes_every_blocked_receiver", {1, 2}, function()
  local n = 50
  local c, res, ready = go.chan(), go.chan(n), go.chan(n)
  for _ = 1, n do
    go(function()
      ready:send(true)
      local v, ok = c:recv()
      res:send(v == nil and ok == false)
    end)
  end
  for _ = 1, n do recv(ready) end
  c:close()
  for _ = 1, n do lu.assertTrue(recv(res)) end
  go.wait()
end)

for_procs("test_close_wakes_blocked_senders_with_an_error", {1, 2}, function()
  local n = 20
  local c, res, ready = go.chan(), go.chan(n), go.chan(n)
  for i = 1, n do
    go(function()
      ready:send(true)
      local ok, err = pcall(c.send, c, i)
      res:send(not ok and tostring(err) or "sent")
    end)
  end
  for _ = 1, n do recv(ready) end
  c:close() -- blocked in send or about to send: either way, an error

  for _ = 1, n do
    local r = recv(res)
    lu.assertStrContains(r, "send on closed channel")
  end
  go.wait()
end)

function test_close_wakes_ranging_goroutines()
  local c, done = go.chan(), go.chan(4)
  for _ = 1, 4 do
    go(function()
      local n = 0
      for _ in c:range() do n = n + 1 end
      done:send(n)
    end)
  end
  for i = 1, 100 do c:send(i) end
  c:close()
  local total = 0
  for _ = 1, 4 do total = total + recv(done) end
  lu.assertEquals(total, 100)
  go.wait()
end

function test_channels_travel_through_channels()
  -- request/response: each request carries its own reply channel
  local requests = go.chan()
  go(function()
    for req in requests:range() do
      req.reply:send(req.x * req.x)
    end
  end)
  for x = 1, 50 do
    local reply = go.chan()
    requests:send({x = x, reply = reply})
    lu.assertEquals(recv(reply), x * x)
  end
  requests:close()
  -- a channel sent through a channel is the same channel
  local box, c = go.chan(1), go.chan(1)
  box:send(c)
  local back = recv(box)
  lu.assertTrue(rawequal(back, c))
  back:send("via copy")
  lu.assertEquals(recv(c), "via copy")
  go.wait()
end

for_procs("test_ping_pong_counts_every_round", {1, 2, 4}, function()
  local rounds = scaled(10000, 1000)
  local ping, pong, done = go.chan(), go.chan(), go.chan()
  go(function()
    for v in ping:range() do pong:send(v + 1) end
    pong:close()
  end)
  go(function()
    local v = 0
    for _ = 1, rounds do
      ping:send(v)
      v = pong:recv() + 1
    end
    ping:close()
    done:send(v)
  end)
  lu.assertEquals(recv(done), 2 * rounds)
  go.wait()
end)

for_procs("test_main_ping_pongs_with_a_goroutine", {1, 2}, function()
  local ping, pong = go.chan(), go.chan()
  go(function()
    for v in ping:range() do pong:send(v * 2) end
  end)
  local n = scaled(2000, 200)
  local sum = 0
  for i = 1, n do
    ping:send(i)
    sum = sum + recv(pong)
  end
  ping:close()
  lu.assertEquals(sum, n * (n + 1))
  go.wait()
end)

for_procs("test_many_producers_and_consumers_lose_and_duplicate_nothing", {1, 2, 4}, function()
  local P, C, M = 8, 8, scaled(2000, 200)
  for _, cap in ipairs({0, 16}) do
    local c, results = go.chan(cap), go.chan(C)
    local producers = go.waitgroup()
    for p = 0, P - 1 do
      producers:add(1)
      go(function()
        for i = 1, M do c:send(p * M + i) end
        producers:done()
      end)
    end
    for _ = 1, C do
      go(function()
        local n, s, s2 = 0, 0, 0
        for v in c:range() do n = n + 1; s = s + v; s2 = s2 + v * v end
        results:send({n, s, s2})
      end)
    end
    producers:wait()
    c:close()
    local n, s, s2 = 0, 0, 0
    for _ = 1, C do
      local r = recv(results)
      n, s, s2 = n + r[1], s + r[2], s2 + r[3]
    end
    local N = P * M
    lu.assertEquals(n, N, "messages lost or duplicated (cap " .. cap .. ")")
    lu.assertEquals(s, N * (N + 1) // 2, "wrong sum (cap " .. cap .. ")")
    lu.assertEquals(s2, N * (N + 1) * (2 * N + 1) // 6, "wrong sum of squares")
    go.wait()
  end
end)

function test_numbers_keep_their_subtype_through_channels()
  local values = {0, 1, -1, 2 ^ 53, 1 << 53, math.maxinteger, math.mininteger,
                  0.0, 1.0, -0.5, 1e308, math.huge, -math.huge, 3, 3.0}
  local c = go.chan(#values)
  for _, v in ipairs(values) do c:send(v) end
  for _, v in ipairs(values) do
    local got = recv(c)
    lu.assertEquals(math.type(got), math.type(v), "subtype of " .. tostring(v))
    lu.assertEquals(got, v)
  end
  -- NaN and -0.0
  c:send(0 / 0)
  c:send(-0.0)
  local nan, negz = c:recv(), c:recv()
  lu.assertTrue(nan ~= nan)
  lu.assertEquals(math.type(negz), "float")
  lu.assertEquals(1 / negz, -math.huge)
  -- through a goroutine and back, inside a table too
  local echo = go.chan()
  go(function()
    for v in echo:range() do c:send({v, math.type(v)}) end
  end)
  for _, v in ipairs(values) do
    echo:send(v)
    local r = recv(c)
    lu.assertEquals(r[2], math.type(v), "goroutine saw the wrong subtype of " .. tostring(v))
    lu.assertEquals(math.type(r[1]), math.type(v))
    lu.assertEquals(r[1], v)
  end
  echo:close()
  go.wait()
end

function test_strings_arrive_byte_exact()
  local c = go.chan(8)
  local strs = {"", "a", string.rep("x", 14), string.rep("y", 15),
                "nul\0inside\0", "\255\254binary\0\1", string.rep("long ", 1000)}
  for _, s in ipairs(strs) do
    c:send(s)
    local got = recv(c)
    lu.assertEquals(#got, #s)
    lu.assertEquals(got, s)
  end
end

function test_channel_methods_check_their_receiver()
  local c, wg = go.chan(), go.waitgroup()
  local ok, err = pcall(c.send, wg, 1)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro:")
  lu.assertStrContains(err, "channel")
  ok, err = pcall(c.recv, {})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro:")
  -- and the channel still works
  lu.assertTrue(go.chan(1):trysend(1))
end

function test_tostring_names_a_channel()
  local c = go.chan(3)
  c:send(1)
  local s = tostring(c)
  lu.assertStrContains(s, "chan")
end

os.exit(lu.LuaUnit.run())
