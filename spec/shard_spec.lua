-- go.shard and shard = true: a task's share of a list under GORO_SHARD,
-- Slurm job arrays and Kubernetes Indexed Jobs, and examples/hash_files.lua
-- run as 3 shards (GNU parallel, the sbatch script's and the Job
-- manifest's environments) against one unsharded run.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local lu = require "luaunit"
local go = require "goro"
local S = require "support"

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$")) or "."
local EXAMPLE = ROOT .. "/examples/hash_files.lua"

-- Every variable go.shard reads, unset, so that the runner's own (a CI job
-- inside a Slurm array or a pod) cannot leak into a child.
local CLEAN = "env -u GORO_SHARD -u GORO_SHARD_COUNT -u JOB_COMPLETION_INDEX"
  .. " -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_MIN -u SLURM_ARRAY_TASK_MAX"
  .. " -u SLURM_ARRAY_TASK_STEP -u SLURM_ARRAY_TASK_COUNT"

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

-- --------------------------------------------------------------- the share

function test_shares_are_striped_disjoint_and_cover_the_list()
  for _, total in ipairs{0, 1, 2, 7, 10, 100} do
    for n = 1, 5 do
      local seen, sizes = {}, {}
      for i = 1, n do
        local share, si, sn = go.shard(range(total), i, n)
        lu.assertEquals({si, sn}, {i, n})
        sizes[i] = #share
        for k, v in ipairs(share) do
          lu.assertEquals(v, i + (k - 1) * n, "share keeps positions i, i + n, ...")
          lu.assertNil(seen[v], "item " .. v .. " in two shares")
          seen[v] = i
        end
      end
      for v = 1, total do lu.assertNotNil(seen[v], "item " .. v .. " in no share") end
      table.sort(sizes)
      lu.assertTrue(sizes[n] - sizes[1] <= 1, "uneven shares")
    end
  end
end

function test_shard_returns_a_new_array_and_leaves_items_alone()
  local items = {"a", "b", "c"}
  local share = go.shard(items, 1, 1)
  lu.assertEquals(share, items)
  lu.assertFalse(rawequal(share, items))
  share[1] = "z"
  lu.assertEquals(items[1], "a")
end

function test_bad_explicit_task_numbers_are_errors()
  for _, bad in ipairs{{0, 3}, {4, 3}, {1, 0}, {1.5, 3}, {1, "3"}, {1, nil}} do
    local ok, err = pcall(go.shard, {1, 2}, bad[1], bad[2])
    lu.assertFalse(ok)
    lu.assertStrContains(err, "goro: shard: task ")
    lu.assertStrContains(err, "1 <= i <= n")
  end
  local ok, err = pcall(go.shard, "abc")
  lu.assertFalse(ok)
  lu.assertStrContains(err, "goro: shard needs an array of items, got string")
end

-- --------------------------------------------------------------- the environment

-- go.shard's (i, n) in a child with the variables of vars set (all others
-- unset); on an error, nil and the message.
local function task_of(vars)
  -- one child per case, the parsing is plain Lua: make test, asan and tsan
  -- run these; under valgrind they would only add minutes
  lu.skipIf(os.getenv("GORO_VALGRIND"), "environment parsing: checked by make test")
  local rc, out, err = S.run_lua([[
local go = require "goro"
local _, i, n = go.shard({})
print(i .. "/" .. n)
]], 30, CLEAN .. " " .. vars)
  S.clean(err)
  if rc ~= 0 then return nil, err end
  return out:match("^(%d+/%d+)\n$") or error("unexpected output: " .. out)
end

function test_no_variable_means_one_task_with_everything()
  lu.assertEquals(task_of(""), "1/1")
  lu.assertEquals(task_of("GORO_SHARD="), "1/1") -- empty counts as unset
end

function test_goro_shard_is_1_based_i_of_n()
  lu.assertEquals(task_of("GORO_SHARD=1/3"), "1/3")
  lu.assertEquals(task_of("GORO_SHARD=3/3"), "3/3")
  lu.assertEquals(task_of("GORO_SHARD=' 2 / 5 '"), "2/5")
end

function test_bad_goro_shard_values_are_errors_that_name_the_variable()
  local cases = {
    {"GORO_SHARD=0/3", "GORO_SHARD=0/3: task 0 is out of range: tasks are numbered 1 to 3"},
    {"GORO_SHARD=4/3", "GORO_SHARD=4/3: task 4 is out of range"},
    {"GORO_SHARD=1/0", "GORO_SHARD=1/0 has 0 tasks: the count must be at least 1"},
    {"GORO_SHARD=two/3", "GORO_SHARD=two/3 is not i/n"},
    {"GORO_SHARD=-1/3", "GORO_SHARD=-1/3 is not i/n"},
    {"GORO_SHARD=2", "GORO_SHARD=2 is not i/n: set it to this task's number"},
    {"GORO_SHARD=1.5/3", "GORO_SHARD=1.5/3 is not i/n"},
  }
  for _, c in ipairs(cases) do
    local got, err = task_of(c[1])
    lu.assertNil(got, c[1])
    lu.assertStrContains(err, "goro: shard: " .. c[2], false, c[1])
    lu.assertStrMatches(err, "^[^\n]-:2: goro: shard: .*", nil, nil, "names the caller's line")
  end
end

function test_slurm_array_ids_count_from_the_arrays_first_id()
  local A = "SLURM_ARRAY_TASK_"
  lu.assertEquals(task_of(A .. "ID=0 " .. A .. "MIN=0 " .. A .. "MAX=2 " .. A .. "COUNT=3"), "1/3")
  lu.assertEquals(task_of(A .. "ID=2 " .. A .. "MIN=0 " .. A .. "MAX=2 " .. A .. "COUNT=3"), "3/3")
  lu.assertEquals(task_of(A .. "ID=1 " .. A .. "MIN=1 " .. A .. "MAX=3"), "1/3")
  lu.assertEquals(task_of(A .. "ID=3 " .. A .. "MIN=1 " .. A .. "MAX=3"), "3/3")
  lu.assertEquals(task_of(A .. "ID=1 " .. A .. "COUNT=4"), "2/4") -- no MIN: ids from 0
  lu.assertEquals(task_of(A .. "ID=5 " .. A .. "MIN=1 " .. A .. "MAX=7 " .. A .. "STEP=2"), "3/4")
end

function test_bad_slurm_arrays_are_errors()
  local A = "SLURM_ARRAY_TASK_"
  local cases = {
    {A .. "ID=1", "SLURM_ARRAY_TASK_ID=1 is set but not SLURM_ARRAY_TASK_COUNT"},
    {A .. "ID=x " .. A .. "COUNT=3", "SLURM_ARRAY_TASK_ID=x is not an integer"},
    {A .. "ID=3 " .. A .. "MIN=0 " .. A .. "COUNT=3", "is not one of the 3 ids from 0 by 1"},
    {A .. "ID=4 " .. A .. "MIN=1 " .. A .. "MAX=7 " .. A .. "STEP=2", "is not one of the 4 ids"},
    {A .. "ID=0 " .. A .. "MIN=1 " .. A .. "MAX=3", "is not one of the 3 ids from 1"},
    {A .. "ID=0 " .. A .. "COUNT=0", "SLURM_ARRAY_TASK_COUNT=0: the count must be at least 1"},
    {A .. "ID=0 " .. A .. "COUNT=three", "SLURM_ARRAY_TASK_COUNT=three is not an integer"},
  }
  for _, c in ipairs(cases) do
    local got, err = task_of(c[1])
    lu.assertNil(got, c[1])
    lu.assertStrContains(err, "goro: shard: SLURM_ARRAY_TASK_", false, c[1])
    lu.assertStrContains(err, c[2], false, c[1])
  end
end

function test_kubernetes_index_is_0_based_and_needs_a_count()
  lu.assertEquals(task_of("JOB_COMPLETION_INDEX=0 GORO_SHARD_COUNT=3"), "1/3")
  lu.assertEquals(task_of("JOB_COMPLETION_INDEX=2 GORO_SHARD_COUNT=3"), "3/3")
  local cases = {
    {"JOB_COMPLETION_INDEX=1", "JOB_COMPLETION_INDEX=1 is set but GORO_SHARD_COUNT is not"},
    {"JOB_COMPLETION_INDEX=3 GORO_SHARD_COUNT=3", "JOB_COMPLETION_INDEX=3 is out of range "
      .. "for GORO_SHARD_COUNT=3: indices are 0 to 2"},
    {"JOB_COMPLETION_INDEX=0 GORO_SHARD_COUNT=0", "GORO_SHARD_COUNT=0 is not a positive integer"},
    {"JOB_COMPLETION_INDEX=a GORO_SHARD_COUNT=3", "JOB_COMPLETION_INDEX=a is not an integer"},
  }
  for _, c in ipairs(cases) do
    local got, err = task_of(c[1])
    lu.assertNil(got, c[1])
    lu.assertStrContains(err, "goro: shard: " .. c[2], false, c[1])
  end
end

function test_goro_shard_wins_over_slurm_and_slurm_over_kubernetes()
  lu.assertEquals(task_of("GORO_SHARD=2/2 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=5 "
    .. "JOB_COMPLETION_INDEX=0 GORO_SHARD_COUNT=7"), "2/2")
  lu.assertEquals(task_of("SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=5 "
    .. "JOB_COMPLETION_INDEX=3 GORO_SHARD_COUNT=7"), "1/5")
end

-- --------------------------------------------------------------- pool and map

function test_pool_with_shard_runs_only_this_tasks_jobs_keeping_their_indices()
  local rc, out, err = S.run_lua([[
local go = require "goro"
for _, ordered in ipairs{true, false} do
  local p = go.pool{workers = 3, ordered = ordered, shard = true,
    fn = function(x) return x * 10 end}
  local kept = {}
  for k = 1, 11 do kept[#kept + 1] = tostring(p:submit(k)) end
  p:close()
  local got = {}
  for i, v in p:results() do got[#got + 1] = i .. "=" .. v end
  if not ordered then table.sort(got, function(a, b) return tonumber(a:match("%d+")) < tonumber(b:match("%d+")) end) end
  print(table.concat(kept, " "))
  print(table.concat(got, " "))
end
local ok, e = pcall(function()
  local p = go.pool{fn = print, shard = true}
  p:close()
  p:submit(1)
end)
print(e)
]], 30, CLEAN .. " GORO_SHARD=2/3")
  S.clean(err)
  lu.assertEquals(rc, 0, err)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  for _, k in ipairs{1, 3} do
    lu.assertEquals(lines[k], "nil 2 nil nil 5 nil nil 8 nil nil 11")
    lu.assertEquals(lines[k + 1], "2=20 5=50 8=80 11=110")
  end
  lu.assertStrContains(lines[5], "goro: submit on a closed pool")
end

function test_map_with_shard_maps_this_tasks_share()
  local rc, out, err = S.run_lua([[
local go = require "goro"
local items = {}
for i = 1, 20 do items[i] = i end
local v = go.map(items, function(x) return x * x end, {shard = true, workers = 2, chunk = 2})
local w = go.map(go.shard(items), function(x) return x * x end)
print(table.concat(v, " "))
print(table.concat(w, " "))
]], 30, CLEAN .. " JOB_COMPLETION_INDEX=3 GORO_SHARD_COUNT=4")
  S.clean(err)
  lu.assertEquals(rc, 0, err)
  lu.assertEquals(out, "16 64 144 256 400\n16 64 144 256 400\n")
end

function test_pool_shard_errors_point_at_the_pool_call()
  local rc, _, err = S.run_lua([[
local go = require "goro"
local p = go.pool{fn = print, shard = true}
]], 30, CLEAN .. " GORO_SHARD=5/4")
  lu.assertNotEquals(rc, 0)
  lu.assertStrMatches(err, ".-:2: goro: shard: GORO_SHARD=5/4: task 5 is out of range.*")
end

-- --------------------------------------------------------------- hash_files as n tasks

-- A tree of files with known contents, big enough that 3 shards all work.
local function make_tree()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. S.shq(dir .. "/a/b") .. " " .. S.shq(dir .. "/c")))
  for k = 1, 23 do
    local sub = ({"", "a/", "a/b/", "c/"})[k % 4 + 1]
    local f = assert(io.open(string.format("%s/%sfile%02d", dir, sub, k), "wb"))
    f:write(string.rep(string.char(65 + k % 26), k * 37))
    f:close()
  end
  return dir
end

-- hash lines of an output -> set and count; the "N files, N bytes" line.
local function parse(out)
  local set, n, summary = {}, 0, {}
  for l in out:gmatch("[^\n]+") do
    if l:match("^%x+  ") then
      lu.assertNil(set[l], "a line twice: " .. l)
      set[l] = true
      n = n + 1
    else
      summary[#summary + 1] = l
    end
  end
  return set, n, summary
end

local function run_example(dir, vars)
  local p = io.popen(CLEAN .. " " .. vars .. " GOMAXPROCS=2 " .. S.shq(S.LUA) .. " "
    .. S.shq(EXAMPLE) .. " " .. S.shq(dir) .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  S.clean(out)
  lu.assertTrue(ok, out)
  return out
end

-- The n outputs are disjoint, and together exactly the unsharded run's lines.
local function check_union(whole, outs)
  local all, total = parse(whole)
  lu.assertEquals(total, 23)
  local union, count = {}, 0
  for k, out in ipairs(outs) do
    local set, n, summary = parse(out)
    lu.assertTrue(n >= 7 and n <= 8, "shard " .. k .. " has " .. n .. " files")
    lu.assertEquals(#summary, 1, out)
    lu.assertStrMatches(summary[1], n .. " files, %d+ bytes %(shard " .. k .. "/" .. #outs .. "%)")
    for l in pairs(set) do
      lu.assertNil(union[l], "in two shards: " .. l)
      union[l] = true
      count = count + 1
    end
  end
  lu.assertEquals(count, total)
  lu.assertEquals(union, all)
end

function test_hash_files_as_3_shards_under_gnu_parallel_equals_one_run()
  lu.skipIf(os.execute("command -v parallel >/dev/null 2>&1") ~= true,
    "GNU parallel is not installed (make test installs it: tools/deps.sh parallel)")
  -- valgrind would check perl's memory, not ours (the same children run
  -- below with the Slurm and Kubernetes environments)
  lu.skipIf(os.getenv("GORO_VALGRIND"), "GNU parallel is perl: not run under valgrind")
  local dir = make_tree()
  local whole = run_example(dir, "")
  local tmp = os.tmpname()
  local cmd = CLEAN .. " GOMAXPROCS=2 parallel --will-cite -j3 " .. S.shq("GORO_SHARD={}/3 "
    .. S.shq(S.LUA) .. " " .. S.shq(EXAMPLE) .. " " .. S.shq(dir) .. " > " .. S.shq(tmp)
    .. ".{} 2>&1") .. " ::: 1 2 3"
  local ok = os.execute(cmd)
  local outs = {}
  for k = 1, 3 do
    local f = io.open(tmp .. "." .. k)
    outs[k] = f and f:read("a") or ""
    if f then f:close() end
    os.remove(tmp .. "." .. k)
  end
  os.remove(tmp)
  os.execute("rm -rf " .. S.shq(dir))
  lu.assertTrue(ok, "parallel failed: " .. table.concat(outs, "\n"))
  for _, out in ipairs(outs) do S.clean(out) end
  check_union(whole, outs)
end

-- The value of `key: value` / `--key=value` in an example's text.
local function setting(path, pattern)
  local f = assert(io.open(ROOT .. "/examples/" .. path))
  local text = f:read("a")
  f:close()
  assert(text:match(pattern), path .. " has no " .. pattern)
  return text:match(pattern)
end

function test_hash_files_as_the_slurm_array_of_the_sbatch_script()
  local lo, hi = setting("hash_files.sbatch", "\n#SBATCH %-%-array=(%d+)%-(%d+)\n")
  lo, hi = tonumber(lo), tonumber(hi)
  lu.assertEquals(hi - lo + 1, 3)
  local dir = make_tree()
  local outs = {}
  for id = lo, hi do
    outs[#outs + 1] = run_example(dir, string.format("SLURM_ARRAY_TASK_ID=%d "
      .. "SLURM_ARRAY_TASK_MIN=%d SLURM_ARRAY_TASK_MAX=%d SLURM_ARRAY_TASK_COUNT=%d",
      id, lo, hi, hi - lo + 1))
  end
  local whole = run_example(dir, "")
  os.execute("rm -rf " .. S.shq(dir))
  check_union(whole, outs)
end

function test_hash_files_as_the_pods_of_the_indexed_job_manifest()
  local file = "hash_files-job.yaml"
  local completions = tonumber(setting(file, "\n  completions: (%d+)\n"))
  lu.assertEquals(setting(file, "\n  completionMode: (%a+)\n"), "Indexed")
  lu.assertEquals(tonumber(setting(file, "name: GORO_SHARD_COUNT%s+value: \"(%d+)\"")),
    completions, "GORO_SHARD_COUNT must equal completions")
  lu.assertEquals(completions, 3)
  local dir = make_tree()
  local outs = {}
  for index = 0, completions - 1 do
    outs[#outs + 1] = run_example(dir, string.format(
      "JOB_COMPLETION_INDEX=%d GORO_SHARD_COUNT=%d", index, completions))
  end
  local whole = run_example(dir, "")
  os.execute("rm -rf " .. S.shq(dir))
  check_union(whole, outs)
end

os.exit(lu.LuaUnit.run())
