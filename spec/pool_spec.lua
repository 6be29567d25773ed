-- goro.pool: worker pools (with the pitfalls of the worker-pool articles
-- designed out), parallel map, pipelines, fan-in, generate, rate limiting.
local lu = require "luaunit"
local go = require "goro"
local gpool = require "goro.pool"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv, range = S.recv, S.range -- with a watchdog: a regression fails, never hangs
local LUA = S.LUA -- the interpreter the suite was given

local function sum_to(n) return n * (n + 1) // 2 end

-- Runs Lua code in a child process (optionally through `wrap`, a format
-- for the command); returns its stdout and stderr together.
local function run_child(code, wrap)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local cmd = LUA .. " " .. path
  if wrap then cmd = string.format(wrap, cmd) end
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

-- ------------------------------------------------------------- pool

function test_pool_runs_every_job_once_and_returns_every_result()
  local p = go.pool{workers = 4, fn = function(x) return x * x end}
  go(function() for i = 1, 200 do p:submit(i) end; p:close() end)
  local seen, sum, n = {}, 0, 0
  for i, v, err in p:results() do
    lu.assertNil(err)
    lu.assertNil(seen[i], "index " .. i .. " twice")
    seen[i] = true
    lu.assertEquals(v, i * i)
    sum, n = sum + v, n + 1
  end
  lu.assertEquals(n, 200)
  lu.assertEquals(sum, 200 * 201 * 401 // 6)
end

function test_pool_of_size_zero_is_an_error()
  lu.assertErrorMsgContains("goro: pool workers must be an integer >= 1, got 0",
    go.pool, {workers = 0, fn = print})
  lu.assertErrorMsgContains("pool workers", go.pool, {workers = -2, fn = print})
  lu.assertErrorMsgContains("pool workers", go.pool, {workers = 1.5, fn = print})
  lu.assertErrorMsgContains("pool needs fn", go.pool, {workers = 2})
  lu.assertErrorMsgContains("pool needs a table", go.pool)
  lu.assertErrorMsgContains("pool buffer", go.pool, {fn = print, buffer = -1})
end

function test_ordered_pool_hands_results_over_in_submission_order()
  local p = go.pool{workers = 4, ordered = true, fn = function(x)
    if x % 3 == 0 then go.sleep(0.002) end -- finish out of order
    return x
  end}
  go(function() for i = 1, 60 do p:submit(i) end; p:close() end)
  local want = 1
  for i, v in p:results() do
    lu.assertEquals(i, want)
    lu.assertEquals(v, want)
    want = want + 1
  end
  lu.assertEquals(want, 61)
end

function test_a_raising_job_becomes_an_error_result_and_the_pool_goes_on()
  local p = go.pool{workers = 2, fn = function(x)
    if x % 5 == 0 then error("bad job " .. x) end
    return x
  end}
  for i = 1, 20 do p:submit(i) end
  local values, errs = p:wait()
  local ok, failed = 0, 0
  for i = 1, 20 do
    if i % 5 == 0 then
      lu.assertStrContains(errs[i], "bad job " .. i)
      lu.assertNil(values[i])
      failed = failed + 1
    else
      lu.assertEquals(values[i], i)
      lu.assertNil(errs[i])
      ok = ok + 1
    end
  end
  lu.assertEquals({ok, failed}, {16, 4})
end

function test_nil_err_returns_are_error_results_and_error_objects_survive()
  local p = go.pool{workers = 2, fn = function(x)
    if x == 1 then return nil, "no such file" end
    if x == 2 then error({code = 7}) end
    return false -- a false value is a value, not an error
  end}
  for i = 1, 3 do p:submit(i) end
  local values, errs = p:wait()
  lu.assertEquals(errs[1], "no such file")
  lu.assertEquals(errs[2], {code = 7})
  lu.assertFalse(values[3])
  lu.assertNil(errs[3])
end

function test_wait_returns_nil_errs_when_every_job_succeeded()
  local p = go.pool{workers = 3, fn = function(x) return x + 1 end}
  for i = 1, 10 do p:submit(i) end
  local values, errs = p:wait()
  lu.assertNil(errs)
  lu.assertEquals(values, {2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
end

function test_a_closed_pool_drains_its_queued_jobs_before_the_workers_exit()
  local p = go.pool{workers = 2, buffer = 50, fn = function(x) return x end}
  for i = 1, 50 do p:submit(i) end -- all queued, none need a worker yet
  p:close()
  local n, sum = 0, 0
  for _, v in p:results() do n, sum = n + 1, sum + v end
  lu.assertEquals(n, 50)
  lu.assertEquals(sum, sum_to(50))
end

function test_producer_and_consumer_may_be_the_same_goroutine()
  -- the articles' deadlock: main submits far more jobs than buffers and
  -- workers hold before reading any result. The pool's relay keeps them.
  local p = go.pool{workers = 3, buffer = 0, fn = function(x) return x * 2 end}
  for i = 1, 300 do p:submit(i) end
  p:close()
  local sum = 0
  for _, v in p:results() do sum = sum + v end
  lu.assertEquals(sum, 2 * sum_to(300))
end

function test_submit_returns_the_index_and_fails_on_a_closed_pool()
  local p = go.pool{workers = 1, fn = function(x) return x end}
  lu.assertEquals(p:submit("a"), 1)
  lu.assertEquals(p:submit("b"), 2)
  p:close()
  p:close() -- twice is harmless
  lu.assertErrorMsgContains("goro: submit on a closed pool", p.submit, p, "c")
  local values = p:wait()
  lu.assertEquals(values, {"a", "b"})
end

function test_a_job_that_cannot_be_copied_is_refused_and_the_pool_goes_on()
  local p = go.pool{workers = 1, ordered = true, fn = function(x) return x end}
  lu.assertEquals(p:submit(1), 1)
  lu.assertErrorMsgContains("cannot transfer", p.submit, p, io.stdout)
  lu.assertEquals(p:submit(3), 2) -- the refused job took no index
  local values, errs = p:wait()
  lu.assertEquals(values, {1, 3})
  lu.assertNil(errs)
end

function test_a_result_that_cannot_be_copied_becomes_an_error_result()
  local p = go.pool{workers = 1, fn = function() return io.stdout end}
  p:submit(1)
  local values, errs = p:wait()
  lu.assertNil(values[1])
  lu.assertStrContains(errs[1], "cannot be copied")
end

function test_many_producers_share_one_pool()
  local p = go.pool{workers = 3, fn = function(x) return x end}
  local wg = go.waitgroup()
  for w = 0, 3 do
    wg:add(1)
    go(function()
      for i = 1, 25 do p:submit(w * 25 + i) end
      wg:done()
    end)
  end
  go(function() wg:wait(); p:close() end)
  local seen, n, sum = {}, 0, 0
  for i, v in p:results() do
    lu.assertNil(seen[i])
    seen[i] = true
    n, sum = n + 1, sum + v
  end
  lu.assertEquals(n, 100)
  lu.assertEquals(sum, sum_to(100))
end

function test_a_cancelled_context_stops_jobs_not_yet_started()
  local ctx, cancel = go.context.with_cancel(go.context.background())
  local started = go.chan(100)
  local p = go.pool{workers = 1, buffer = 20, ctx = ctx, ordered = true,
    fn = function(x) started:send(x); if x == 1 then cancel() end; return x end}
  for i = 1, 10 do p:submit(i) end
  local values, errs = p:wait()
  lu.assertEquals(values[1], 1)
  lu.assertEquals(#started, 1)
  for i = 2, 10 do lu.assertEquals(errs[i], "context canceled") end
end

function test_forgetting_to_close_the_pool_is_reported_as_a_deadlock()
  local p = go.pool{workers = 2, fn = function(x) return x end}
  p:submit(1)
  local it = p:results()
  lu.assertEquals(it(), 1)
  lu.assertErrorMsgContains("all goroutines are asleep - deadlock!", it)
  p:close()
  lu.assertNil(it())
end

function test_a_producer_that_raises_stops_the_consumer_with_its_error()
  -- Go: a producer that panics leaves jobs open and the pool hangs; here
  -- the goroutine's error reaches the blocked consumer
  local p = go.pool{workers = 2, fn = function(x) return x end}
  go(function() p:submit(1); error("producer died") end)
  local ok, err = pcall(function() for _ in p:results() do end end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "producer died")
  p:close()
  local values = p:wait() -- job 1's result, unless the loop took it
  lu.assertTrue(values[1] == nil or values[1] == 1)
end

function test_progress_draws_nothing_when_stderr_is_not_a_terminal()
  local code = [[
    local go = require "goro"
    local p = go.pool{workers = 2, progress = true, fn = function(x) return x end}
    for i = 1, 50 do p:submit(i) end
    local values = p:wait()
    print("results", #values)
  ]]
  lu.assertEquals(run_child(code), "results\t50\n")
end

function test_progress_draws_a_bar_on_a_terminal()
  local have = os.execute("command -v script >/dev/null 2>&1")
  lu.skipIf(not have, "no script(1) to give the child a terminal")
  local code = [[
    local go = require "goro"
    local p = go.pool{workers = 2, progress = true,
      fn = function(x) go.sleep(0.003); return x end}
    for i = 1, 60 do p:submit(i) end
    local values = p:wait()
    print("results", #values)
  ]]
  local out = run_child(code, "TERM=xterm script -qec '%s' /dev/null")
  lu.assertStrContains(out, "results\t60")
  lu.assertStrContains(out, "[##############################] 60/60")
  lu.assertStrContains(out, "/s")
end

-- ------------------------------------------------------------- map

function test_map_returns_results_in_input_order()
  local items = {}
  for i = 1, 1000 do items[i] = i end
  local out, errs = go.map(items, function(x) return x * 3 end, {workers = 4})
  lu.assertNil(errs)
  lu.assertEquals(#out, 1000)
  for i = 1, 1000 do lu.assertEquals(out[i], 3 * i) end
end

function test_map_reports_each_failing_item()
  local out, errs = go.map({"1", "x", "3", "y"}, function(s)
    local n = tonumber(s)
    if not n then error("not a number: " .. s, 0) end
    return n
  end, {workers = 2, chunk = 1})
  lu.assertEquals(out[1], 1)
  lu.assertEquals(out[3], 3)
  lu.assertEquals(errs[2], "not a number: x")
  lu.assertEquals(errs[4], "not a number: y")
  lu.assertNil(errs[1])
end

function test_map_passes_the_index_and_handles_empty_and_chunked_input()
  local out = go.map({"a", "b", "c", "d", "e"}, function(s, i) return s .. i end,
    {workers = 2, chunk = 2})
  lu.assertEquals(out, {"a1", "b2", "c3", "d4", "e5"})
  local none, errs = go.map({}, function() end)
  lu.assertEquals(none, {})
  lu.assertNil(errs)
  lu.assertErrorMsgContains("map workers", go.map, {1}, print, {workers = 0})
  lu.assertErrorMsgContains("map needs a function", go.map, {1})
end

function test_map_runs_its_items_in_parallel_goroutines()
  -- each item waits until all four have started: a sequential map would
  -- deadlock (and goro would report it)
  local arrived, go_on = go.chan(4), go.chan()
  go(function()
    for _ = 1, 4 do arrived:recv() end
    go_on:close()
  end)
  local out = go.map({1, 2, 3, 4}, function(x)
    arrived:send(x)
    recv(go_on)
    return go.id()
  end, {workers = 4, chunk = 1})
  local ids, n = {}, 0
  for _, id in ipairs(out) do
    if not ids[id] then ids[id], n = true, n + 1 end
  end
  lu.assertEquals(n, 4)
end

-- ------------------------------------------------------------- pipeline, merge, generate

function test_pipeline_gen_sq_prints_squares_in_order()
  local got = {}
  for v in range(go.pipeline(go.generate(2, 3, 4), function(n) return n * n end)) do
    got[#got + 1] = v
  end
  lu.assertEquals(got, {4, 9, 16})
end

function test_pipeline_chains_stages_and_filters()
  local src = {}
  for i = 1, 100 do src[i] = i end
  local out = go.pipeline(src,
    function(n) if n % 2 == 0 then return n end end, -- nil drops the value
    function(n) return n * 10 end,
    {fn = function(n) return n + 1 end, buffer = 4})
  local got = {}
  for v in range(out) do got[#got + 1] = v end
  lu.assertEquals(#got, 50)
  lu.assertEquals(got[1], 21) -- single-worker stages keep the order
  lu.assertEquals(got[50], 1001)
end

function test_pipeline_fan_out_stage_merges_every_result()
  local out = go.pipeline(function(emit) for i = 1, 500 do emit(i) end end,
    {fn = function(n) return n * n end, workers = 4},
    {fn = function(n) return n + 1 end, workers = 2})
  local n, sum = 0, 0
  for v in range(out) do n, sum = n + 1, sum + v end
  lu.assertEquals(n, 500)
  lu.assertEquals(sum, 500 * 501 * 1001 // 6 + 500)
end

function test_pipeline_validates_its_stages()
  lu.assertErrorMsgContains("pipeline source", go.pipeline, 42)
  lu.assertErrorMsgContains("stage 1 must be a function", go.pipeline, {1}, 42)
  lu.assertErrorMsgContains("stage 1 workers", go.pipeline, {1}, {fn = print, workers = 0})
end

function test_merge_fans_in_every_value_and_keeps_each_inputs_order()
  local a, b, c = go.chan(), go.chan(), go.chan()
  go(function() for i = 1, 50 do a:send("a" .. i) end; a:close() end)
  go(function() for i = 1, 50 do b:send("b" .. i) end; b:close() end)
  go(function() c:close() end)
  local last, n = {a = 0, b = 0}, 0
  for v in range(go.merge(a, b, c)) do
    local src, i = v:sub(1, 1), tonumber(v:sub(2))
    lu.assertEquals(i, last[src] + 1)
    last[src] = i
    n = n + 1
  end
  lu.assertEquals(n, 100)
  lu.assertEquals(last, {a = 50, b = 50})
  local _, ok = recv(go.merge()) -- nothing to merge: closed at once
  lu.assertFalse(ok)
  lu.assertErrorMsgContains("merge argument 2 is not a channel", go.merge, a, {})
end

function test_generate_sends_its_values_then_closes()
  local ch = go.generate("x", 2, 3.5, true)
  lu.assertEquals(recv(ch), "x")
  lu.assertEquals(math.type(recv(ch)), "integer")
  lu.assertEquals(recv(ch), 3.5)
  lu.assertTrue(recv(ch))
  local _, ok = recv(ch)
  lu.assertFalse(ok)
  lu.assertIs(go.generate, gpool.generate)
end

-- ------------------------------------------------------------- limiter

function test_limiter_allows_a_burst_then_refuses()
  local l = go.limiter(10, 3)
  lu.assertTrue(l:allow())
  lu.assertTrue(l:allow())
  lu.assertTrue(l:allow())
  lu.assertFalse(l:allow())
end

function test_limiter_wait_spaces_events_at_the_rate()
  local l = go.limiter(200, 1)
  local t0 = go.now()
  for _ = 1, 21 do l:wait() end
  local el = go.now() - t0
  lu.assertTrue(el >= 0.095, "20 intervals of 5 ms took " .. el)
  lu.assertTrue(el < 0.5, "too slow: " .. el)
end

function test_limiter_is_shared_by_its_copies_in_goroutines()
  local l = go.limiter(100, 5)
  local got, wg = go.chan(100), go.waitgroup()
  for _ = 1, 4 do
    wg:add(1)
    go(function()
      local n = 0
      for _ = 1, 10 do if l:allow() then n = n + 1 end end
      got:send(n)
      wg:done()
    end)
  end
  wg:wait()
  local total = 0
  for _ = 1, 4 do total = total + recv(got) end
  lu.assertTrue(total >= 5 and total <= 7, "allowed " .. total) -- the burst, +~1 refill
end

function test_limiter_wait_gives_up_when_its_context_ends()
  local l = go.limiter(1, 1)
  lu.assertTrue(l:wait())
  local ctx, cancel = go.context.with_timeout(go.context.background(), 0.02)
  local t0 = go.now()
  local ok, err = l:wait(ctx)
  lu.assertNil(ok)
  lu.assertEquals(err, "context deadline exceeded")
  lu.assertTrue(go.now() - t0 < 0.5)
  cancel()
end

function test_limiter_validates_its_arguments()
  lu.assertErrorMsgContains("limiter rate must be a positive number", go.limiter, 0)
  lu.assertErrorMsgContains("limiter burst", go.limiter, 5, 0)
  local l = go.limiter(math.huge)
  for _ = 1, 100 do lu.assertTrue(l:allow()) end
end

os.exit(lu.LuaUnit.run())
