-- examples/: each example runs as a child process (the interpreter the
-- suite was given, S.LUA, with this process's LUA_PATH / LUA_CPATH) and
-- prints what its Go original prints; where Go's order is not
-- deterministic, the checks are order-insensitive. Sleeps run 20x faster
-- (GORO_TIME_SCALE).
local lu = require "luaunit"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local LUA = S.shq(S.LUA)
local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$")) or "."

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs examples/NAME.lua with args; returns its output lines (stdout and
-- stderr together), the whole output and its exit code.
local function run(name, args, stdin)
  local cmd = "GORO_TIME_SCALE=0.05 " .. LUA .. " " .. q(ROOT .. "/examples/" .. name .. ".lua")
  if args then cmd = cmd .. " " .. args end
  if stdin then cmd = "printf '%s' " .. q(stdin) .. " | " .. cmd end
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("a")
  local _, _, code = f:close()
  -- under make asan/tsan the child runs sanitized: its reports fail the test
  for _, bad in ipairs{"AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:"} do
    if out:find(bad, 1, true) then error(name .. ": the child reported:\n" .. out:sub(1, 3000), 2) end
  end
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines, out, code
end

local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  return c
end

local function matching(lines, pattern)
  local out = {}
  for _, l in ipairs(lines) do
    if l:match(pattern) then out[#out + 1] = l end
  end
  return out
end

-- Tracks "start"/"end" events in print order; returns the most at once.
local function peak(lines, start_pat, end_pat)
  local inside, most = 0, 0
  for _, l in ipairs(lines) do
    if l:match(start_pat) then
      inside = inside + 1
      most = math.max(most, inside)
    elseif l:match(end_pat) then
      inside = inside - 1
    end
  end
  return most
end

-- ------------------------------------------------------------- the deadlock story

local URLS15 = {
  "status/200", "status/404", "status/500", "status/500", "delay/1", "delay/1",
  "status/200", "status/200", "status/404", "status/500", "delay/1", "status/200",
  "status/200", "status/404", "status/404",
}

function test_url_pool_with_a_decoupled_producer_handles_every_job()
  local lines, out, code = run("url_pool")
  lu.assertEquals(code, 0, out)
  local want = {}
  for i, u in ipairs(URLS15) do
    want[#want + 1] = string.format("job-%d https://httpbin.org/%s → %s", i, u,
      u:match("%d+$"))
  end
  lu.assertEquals(sorted(matching(lines, "^job%-")), sorted(want))
  lu.assertEquals(#matching(lines, "^G ended$"), 3)
  lu.assertEquals(lines[#lines], "Main ended")
  lu.assertEquals(#lines, 19)
end

function test_unbuffered_producer_and_consumer_in_main_deadlocks()
  local lines, out, code = run("deadlock_unbuffered")
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out, "all goroutines are asleep - deadlock!")
  lu.assertEquals(#matching(lines, "^job%-"), 0)
  lu.assertEquals(#matching(lines, "Main ended"), 0)
end

function test_buffers_4_and_6_with_3_workers_let_exactly_13_jobs_out()
  local lines, out, code = run("deadlock_buffered")
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out, "all goroutines are asleep - deadlock!")
  local produced = matching(lines, "^produced job %d+$")
  lu.assertEquals(#produced, 13)
  for i, l in ipairs(produced) do lu.assertEquals(l, "produced job " .. i) end
end

-- ------------------------------------------------------------- patterns

function test_pipeline_gen_sq_prints_4_9_16()
  local _, out, code = run("pipeline")
  lu.assertEquals(code, 0, out)
  lu.assertEquals(out, "4\n9\n16\n")
end

function test_fan_out_fan_in_prints_every_square_once()
  local lines, out, code = run("fan_out_fan_in")
  lu.assertEquals(code, 0, out)
  local got = {}
  for _, l in ipairs(lines) do
    got[#got + 1] = tonumber(l:match("^Получен результат: (%d+)$"))
  end
  lu.assertEquals(#lines, 5)
  lu.assertEquals(sorted(got), {1, 4, 9, 16, 25})
end

function test_smallest_pool_squares_one_to_five()
  local lines, out, code = run("smallest_pool")
  lu.assertEquals(code, 0, out)
  lu.assertEquals(sorted(lines), {"1^2 = 1", "2^2 = 4", "3^2 = 9", "4^2 = 16", "5^2 = 25"})
end

function test_run_pool_returns_every_square_and_map_keeps_the_order()
  local lines, out, code = run("run_pool")
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#lines, 2)
  local got = {}
  for n in lines[1]:gmatch("%d+") do got[#got + 1] = tonumber(n) end
  lu.assertEquals(sorted(got), {1, 4, 9, 16, 25, 36, 49, 64, 81, 100})
  lu.assertEquals(lines[2], "[1 4 9 16 25 36 49 64 81 100]")
end

function test_worker_pool_with_context_reports_each_of_the_8_jobs()
  local lines, out, code = run("worker_pool_context")
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#lines, 8)
  local jobs = {}
  for _, l in ipairs(lines) do
    local j, w = l:match("^job=(%d+) worker%-(%d+) done$")
    lu.assertNotNil(j, l)
    lu.assertTrue(tonumber(w) >= 1 and tonumber(w) <= 3)
    jobs[#jobs + 1] = tonumber(j)
  end
  lu.assertEquals(sorted(jobs), {1, 2, 3, 4, 5, 6, 7, 8})
end

function test_worker_pool_runs_10_tasks_on_3_workers()
  local lines, out, code = run("worker_pool")
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#lines, 21)
  local started, completed = {}, {}
  for _, l in ipairs(lines) do
    local w, t = l:match("^Worker (%d) started the task (%d+)$")
    if t then started[tonumber(t)] = tonumber(w) end
    w, t = l:match("^Worker (%d) completed the task (%d+)$")
    if t then
      lu.assertEquals(started[tonumber(t)], tonumber(w), "completed by another worker")
      completed[#completed + 1] = tonumber(t)
    end
  end
  lu.assertEquals(sorted(completed), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
  lu.assertTrue(peak(lines, "started", "completed") <= 3)
  lu.assertEquals(lines[21], "All tasks completed")
end

function test_worker_pool_results_doubles_9_jobs()
  local lines, out, code = run("worker_pool_results")
  lu.assertEquals(code, 0, out)
  local jobs, results = {}, {}
  for _, l in ipairs(lines) do
    local j = l:match("^Worker [123] processing job (%d)$")
    if j then jobs[#jobs + 1] = tonumber(j)
    else results[#results + 1] = tonumber(l) end
  end
  lu.assertEquals(sorted(jobs), {1, 2, 3, 4, 5, 6, 7, 8, 9})
  lu.assertEquals(sorted(results), {2, 4, 6, 8, 10, 12, 14, 16, 18})
end

function test_semaphore_lets_3_of_10_workers_in_at_a_time()
  local lines, out, code = run("semaphore")
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#matching(lines, "^%[%d%d:%d%d:%d%d%] Worker %d+: started work$"), 10)
  lu.assertEquals(#matching(lines, "^%[%d%d:%d%d:%d%d%] Worker %d+: finished$"), 10)
  local most = peak(lines, "started work", "finished")
  lu.assertTrue(most <= 3, "more than 3 workers at once: " .. most)
  lu.assertEquals(most, 3)
  lu.assertEquals(lines[#lines], "All tasks completed")
end

function test_singleflight_runs_the_heavy_operation_once_for_5_callers()
  local lines, out, code = run("singleflight")
  lu.assertEquals(code, 0, out)
  lu.assertEquals(lines[1], "Heavy operation started (actually once)")
  lu.assertEquals(lines[2], "Heavy operation completed")
  local want = {}
  for i = 0, 4 do
    want[#want + 1] = string.format("Request %d: result = data_for_user:123 (shared = true)", i)
  end
  lu.assertEquals(sorted({table.unpack(lines, 3)}), want)
end

function test_errgroup_first_error_cancels_the_others()
  local lines, out, code = run("errgroup")
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#lines, 4)
  lu.assertEquals(lines[1], "Goroutine 2: error!")
  lu.assertEquals(sorted({lines[2], lines[3]}),
    {"Goroutine 1: canceled", "Goroutine 3: canceled"})
  lu.assertEquals(lines[4], "Error: something went wrong in goroutine 2")
end

-- ------------------------------------------------------------- batch jobs

-- FNV-1a 64, byte by byte: the reference for hash_files.lua's unrolled one.
local function fnv1a64(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ s:byte(i)) * 0x100000001b3 end
  return string.format("%016x", h)
end

function test_hash_files_hashes_every_file_of_a_tree_in_path_order()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir .. "/sub/deeper")))
  local files = {
    ["a.txt"] = "a",
    ["empty"] = "",
    ["sub/foobar"] = "foobar",
    ["sub/deeper/it's odd.txt"] = "quote in the name\n",
  }
  -- over 1 MiB, to cross a read-chunk boundary
  local parts = {}
  for i = 1, 40000 do parts[i] = string.format("line %06d of the big file\n", i) end
  files["sub/deeper/big.log"] = table.concat(parts)
  for name, data in pairs(files) do
    local f = assert(io.open(dir .. "/" .. name, "wb"))
    f:write(data)
    f:close()
  end
  local lines, out, code = run("hash_files", q(dir))
  os.execute("rm -rf " .. q(dir))
  lu.assertEquals(code, 0, out)
  local names, bytes = {}, 0
  for name, data in pairs(files) do names[#names + 1] = name; bytes = bytes + #data end
  table.sort(names)
  lu.assertEquals(#lines, #names + 1)
  for i, name in ipairs(names) do
    lu.assertEquals(lines[i], fnv1a64(files[name]) .. "  " .. name)
  end
  lu.assertEquals(lines[#lines], string.format("%d files, %d bytes", #names, bytes))
  lu.assertEquals(fnv1a64("foobar"), "85944171f73967e8") -- the published test vector
end

-- The classifier's rules, restated: the expected class of a line.
local function expected_class(line)
  local level, status, ms = line:match(" (%u+) %a+ %u+ %S+ (%d+) (%d+)ms$")
  if not level then return "unparsed" end
  status, ms = tonumber(status), tonumber(ms)
  if level == "ERROR" or status >= 500 then return "error" end
  if ms >= 1000 then return "slow" end
  if status >= 400 then return "client-error" end
  return ({WARN = "warning", DEBUG = "debug"})[level] or "ok"
end

function test_classify_logs_keeps_the_input_order()
  local n = 3000
  local lines, out, code = run("classify_logs", tostring(n))
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#lines, n + 1)
  local counts = {}
  for i = 1, n do
    local seq, class, line = lines[i]:match("^%s*(%d+)  (%S+)%s+(.*)$")
    lu.assertEquals(tonumber(seq), i, "out of order at line " .. i)
    lu.assertEquals(class, expected_class(line), line)
    counts[class] = (counts[class] or 0) + 1
  end
  local summary = {}
  for _, c in ipairs({"error", "slow", "client-error", "warning", "debug", "ok"}) do
    lu.assertTrue((counts[c] or 0) > 0, "no " .. c .. " line generated")
    summary[#summary + 1] = c .. "=" .. counts[c]
  end
  lu.assertEquals(lines[n + 1], n .. " lines: " .. table.concat(summary, " "))
end

function test_classify_logs_reads_stdin()
  local input = "t ERROR api GET /x 200 5ms\nnot a log line\nt INFO api GET /y 404 5ms\n"
    .. "t INFO api GET /z 200 1500ms\n"
  local lines, out, code = run("classify_logs", "-", input)
  lu.assertEquals(code, 0, out)
  lu.assertEquals(lines, {
    "     1  error         t ERROR api GET /x 200 5ms",
    "     2  unparsed      not a log line",
    "     3  client-error  t INFO api GET /y 404 5ms",
    "     4  slow          t INFO api GET /z 200 1500ms",
    "4 lines: error=1 slow=1 client-error=1 warning=0 debug=0 ok=0 unparsed=1",
  })
end

-- ------------------------------------------------------------- go.ffi

function test_ffi_zlib_compresses_every_chunk_and_checks_it()
  local lines, out, code = run("ffi_zlib", "4 65536")
  lu.assertEquals(code, 0, out)
  lu.assertStrMatches(lines[1], "zlib [%d.]+: 4 chunks of 64 KiB, compress2 level 6 %+ uncompress check")
  lu.assertStrMatches(lines[2], "1 goroutine: +[%d.]+ s +[%d.]+ MiB/s")
  lu.assertStrMatches(lines[3], "4 goroutines: +[%d.]+ s +[%d.]+ MiB/s +speedup [%d.]+x %(GOMAXPROCS %d+%)")
  lu.assertStrMatches(lines[4], "0%.2 MiB %-> 0%.0 MiB %([%d.]+%%%), every chunk verified by uncompress")
end

function test_ffi_sleep_overlaps_the_blocking_calls()
  local lines, out, code = run("ffi_sleep")
  lu.assertEquals(code, 0, out)
  lu.assertStrMatches(lines[1], "8 goroutines x usleep%(0%.2 s%) on GOMAXPROCS=1: [%d.]+ s %(one after another: 1%.6 s%)")
  -- 8 handoffs, more if a slow run (valgrind) had a syscall retaken too
  local handoffs = tonumber(lines[2]:match("^P handoffs: (%d+); the computation on the same P gave 5999997$"))
  lu.assertTrue(handoffs and handoffs >= 8, lines[2])
end

os.exit(lu.LuaUnit.run())
