-- goro.shard — a job bigger than one machine: run the same script as n
-- tasks (a Slurm job array, a Kubernetes Indexed Job, GNU parallel, n
-- shells) and let each keep its own share of the work list.
--
--   local files, i, n = go.shard(all_files)    -- task i of n keeps its share
--   go.map(items, fn, {shard = true})          -- the same, inside go.map
--   go.pool{fn = f, shard = true}              -- submit() skips other tasks' jobs
--
-- The task's index and the number of tasks come from the environment, the
-- first source that is set winning:
--
--   GORO_SHARD=i/n             i in 1..n (1-based, as jest's and
--                              Playwright's --shard=i/n)
--   SLURM_ARRAY_TASK_ID        with SLURM_ARRAY_TASK_COUNT, or _MIN/_MAX
--                              (and _STEP): the array's ids in order, the
--                              first (_MIN, 0 if unset) being task 1, so
--                              --array=0-2 and --array=1-3 both give 1..3
--   JOB_COMPLETION_INDEX       Kubernetes Indexed Job, 0-based, with the
--                              count from GORO_SHARD_COUNT (the Job's
--                              `completions`; Kubernetes does not export it)
--
-- With none of them set, the task is the only one (1 of 1) and keeps the
-- whole list, so the script runs unchanged on one machine. Bad values (not
-- a number, i out of range, n <= 0, an index without a count) are errors
-- that name the variable: a misconfigured array must not silently process
-- the wrong share, or all of it n times.
--
-- The share is the items at positions i, i + n, i + 2n, ... (striped, not
-- cut in blocks): every task gets the same number of items give or take
-- one, and a list sorted by size or age spreads evenly. It depends only on
-- the list and (i, n), so the n tasks together process every item exactly
-- once, provided they all build the same list (sort it).

local M = {}

local function env(name)
  local v = os.getenv(name)
  if v == "" then return nil end
  return v
end

local function bad(what, hint, level)
  error("goro: shard: " .. what .. ": " .. hint, level + 1)
end

-- A non-negative decimal integer, or nil.
local function natural(s)
  s = s and s:match("^%s*(%d+)%s*$")
  return s and math.tointeger(tonumber(s))
end

-- The variable name as an integer >= 0; nil when unset; an error when it is
-- set to anything else (hint: what to do).
local function env_int(name, hint, level)
  local v = env(name)
  if v == nil then return nil end
  local x = natural(v)
  if not x then bad(name .. "=" .. v .. " is not an integer", hint, level + 1) end
  return x
end

-- Each source: nil when its variables are unset, else this task's i (in
-- 1..n) and n. level: the caller's error level, as for error().

local function from_goro(level)
  local spec = env("GORO_SHARD")
  if not spec then return nil end
  local si, sn = spec:match("^%s*(%d+)%s*/%s*(%d+)%s*$")
  local i, n = natural(si), natural(sn)
  if not i then
    bad("GORO_SHARD=" .. spec .. " is not i/n",
      "set it to this task's number and the number of tasks, e.g. GORO_SHARD=2/3", level + 1)
  end
  if n < 1 then
    bad("GORO_SHARD=" .. spec .. " has " .. n .. " tasks", "the count must be at least 1",
      level + 1)
  end
  if i < 1 or i > n then
    bad("GORO_SHARD=" .. spec .. ": task " .. i .. " is out of range",
      "tasks are numbered 1 to " .. n .. " (1-based)", level + 1)
  end
  return i, n
end

local function from_slurm(level)
  local ARRAY = "run the script as a Slurm job array (sbatch --array=0-N), or set GORO_SHARD=i/n"
  local id = env_int("SLURM_ARRAY_TASK_ID", ARRAY, level + 1)
  if not id then return nil end
  local lo = env_int("SLURM_ARRAY_TASK_MIN", ARRAY, level + 1) or 0
  local hi = env_int("SLURM_ARRAY_TASK_MAX", ARRAY, level + 1)
  local step = env_int("SLURM_ARRAY_TASK_STEP", ARRAY, level + 1) or 1
  local count = env_int("SLURM_ARRAY_TASK_COUNT", ARRAY, level + 1)
  if step < 1 then bad("SLURM_ARRAY_TASK_STEP=" .. step, "the step must be at least 1", level + 1) end
  if not count and hi then count = (hi - lo) // step + 1 end
  if not count then
    bad("SLURM_ARRAY_TASK_ID=" .. id .. " is set but not SLURM_ARRAY_TASK_COUNT "
      .. "(nor SLURM_ARRAY_TASK_MIN/_MAX)", ARRAY, level + 1)
  end
  if count < 1 then
    bad("SLURM_ARRAY_TASK_COUNT=" .. count, "the count must be at least 1", level + 1)
  end
  local off = id - lo
  if off < 0 or off % step ~= 0 or off // step >= count then
    bad("SLURM_ARRAY_TASK_ID=" .. id .. " is not one of the " .. count .. " ids from "
      .. lo .. " by " .. step, "use a contiguous array (--array=0-" .. (count - 1)
      .. " or 1-" .. count .. "; a step is fine, a list with gaps is not)", level + 1)
  end
  return off // step + 1, count
end

local function from_kubernetes(level)
  local k = env_int("JOB_COMPLETION_INDEX",
    "it is set by a Kubernetes Indexed Job (completionMode: Indexed)", level + 1)
  if not k then return nil end
  local n = env_int("GORO_SHARD_COUNT", "set it to the Job's completions", level + 1)
  if not n then
    bad("JOB_COMPLETION_INDEX=" .. k .. " is set but GORO_SHARD_COUNT is not",
      "set GORO_SHARD_COUNT to the Job's completions in its pod template's env", level + 1)
  end
  if n < 1 then
    bad("GORO_SHARD_COUNT=" .. n .. " is not a positive integer",
      "set it to the Job's completions", level + 1)
  end
  if k >= n then
    bad("JOB_COMPLETION_INDEX=" .. k .. " is out of range for GORO_SHARD_COUNT=" .. n,
      "indices are 0 to " .. (n - 1) .. ": GORO_SHARD_COUNT must equal the Job's completions",
      level + 1)
  end
  return k + 1, n
end

local SOURCES = {
  {from_goro, "GORO_SHARD"},
  {from_slurm, "SLURM_ARRAY_TASK_ID"},
  {from_kubernetes, "JOB_COMPLETION_INDEX"},
}

-- The task's (i, n) from the environment: the first source set; 1, 1 when
-- none is. Third result: the source's variable (nil when none).
local function from_env(level)
  for _, src in ipairs(SOURCES) do
    local i, n = src[1](level + 1)
    if i then return i, n, src[2] end
  end
  return 1, 1, nil
end

-- The task's (i, n): explicit ones checked, else from the environment.
local function task(i, n, level)
  if i == nil and n == nil then
    local ei, en, src = from_env(level + 1) -- not a tail call: keeps the levels
    return ei, en, src
  end
  if math.type(i) ~= "integer" or math.type(n) ~= "integer" or n < 1 or i < 1 or i > n then
    bad("task " .. tostring(i) .. " of " .. tostring(n),
      "pass integers with 1 <= i <= n, or neither (then the environment says)", level + 1)
  end
  return i, n, "argument"
end

-- shard.task() -> i, n, source: this task's number (1-based) and the number
-- of tasks, and the variable they came from (nil when none is set).
function M.task()
  local i, n, src = from_env(2)
  return i, n, src
end

-- go.shard(items [, i, n]) -> share, i, n. share: a new array of the items
-- of the array `items` at positions i, i + n, i + 2n, ... (in order); i, n:
-- this task's number (1-based) and the number of tasks, from the
-- environment (see above) unless given.
function M.shard(items, i, n)
  if type(items) ~= "table" then
    error("goro: shard needs an array of items, got " .. type(items), 2)
  end
  i, n = task(i, n, 2)
  local share, k = {}, 0
  for j = i, #items, n do
    k = k + 1
    share[k] = items[j]
  end
  return share, i, n
end

-- Used by go.pool and go.map (option shard = true): this task's (i, n).
M.from_env = from_env

return M
