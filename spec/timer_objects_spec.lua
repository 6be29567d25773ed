-- timer_objects_spec.lua — a timer is one object in every state: goroutines
-- on several threads that read t.c for the first time at once all get the
-- same channel (ltime.c publishes it with a CAS), and t:reset from several
-- goroutines at once leaves a working ticker.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local lu = require "luaunit"
local go = require "goro"
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, not hangs

local ROUNDS, GS = 40, 8

function test_concurrent_first_reads_of_t_c_give_one_channel()
  go.gomaxprocs(4)
  for _ = 1, ROUNDS do
    local t = go.timer(3600)
    local start, out = go.chan(), go.chan(GS)
    for _ = 1, GS do
      go(function()
        start:recv() -- every goroutine waits here; close releases them together
        out:send(t.c)
      end)
    end
    start:close()
    local first = recv(out)
    for _ = 2, GS do lu.assertTrue(rawequal(recv(out), first)) end
    lu.assertTrue(rawequal(t.c, first))
    t:stop()
  end
  go.wait()
end

function test_concurrent_resets_leave_a_working_ticker()
  local tk = go.ticker(3600)
  local wg = go.waitgroup()
  for g = 1, GS do
    wg:add(1)
    go(function()
      for i = 1, 50 do tk:reset(0.001 * (1 + (g + i) % 3)) end
      wg:done()
    end)
  end
  wg:wait()
  local v = recv(tk.c) -- it ticks within a few ms of the last reset
  lu.assertEquals(math.type(v), "float")
  tk:stop()
end

os.exit(lu.LuaUnit.run())
