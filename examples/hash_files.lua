-- hash_files.lua — a batch job: hash every file under a directory tree in
-- parallel, with a pure-Lua FNV-1a 64-bit hash, printing "hash  path" in
-- path order (sha256sum's layout) and a summary line.
--
-- A producer goroutine submits the paths to an ordered pool, one worker per
-- core (go.gomaxprocs()); each worker reads its file in 1 MiB chunks, each
-- read inside go.blocking (its P is handed to another thread while the
-- disk works), and hashes them in Lua. Main prints the results as they
-- come, in submission order; a file that cannot be read is an error result
-- on stderr, and the others go on. With stderr on a terminal, a progress
-- bar shows the rate and the ETA.
--
-- The same script scales past one machine: run as n tasks, each hashes its
-- share of the sorted list (go.shard: files i, i + n, ... of task i) and
-- the n outputs together are one run's lines. The task's number comes
-- from GORO_SHARD=i/n, a Slurm job array (hash_files.sbatch) or a
-- Kubernetes Indexed Job (hash_files-job.yaml); with none, it hashes all.
--
--   lua5.4 examples/hash_files.lua [dir]          (default: the current directory)
--   GORO_SHARD=2/3 lua5.4 examples/hash_files.lua dir    (the second of 3 tasks)
--   parallel GORO_SHARD={}/3 lua5.4 examples/hash_files.lua dir ::: 1 2 3 | sort -k2

local go = require "goro"

local dir = (arg and arg[1]) or "."

-- FNV-1a, 64 bits: h = (h xor byte) * prime, modulo 2^64 (Lua's integer
-- arithmetic wraps). Eight bytes per string.byte call for speed.
local OFFSET, PRIME = 0xcbf29ce484222325, 0x100000001b3

local function fnv1a64(h, s)
  local byte, n = string.byte, #s
  local i = 1
  while i + 7 <= n do
    local a, b, c, d, e, f, g, k = byte(s, i, i + 7)
    h = (h ~ a) * PRIME; h = (h ~ b) * PRIME; h = (h ~ c) * PRIME; h = (h ~ d) * PRIME
    h = (h ~ e) * PRIME; h = (h ~ f) * PRIME; h = (h ~ g) * PRIME; h = (h ~ k) * PRIME
    i = i + 8
  end
  for j = i, n do h = (h ~ byte(s, j)) * PRIME end
  return h
end

-- The pool's job: hash one file. Returns {hash = "...", size = n}, or
-- nil and an error message (the pool reports it as the job's error).
local function hash_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local h, size = OFFSET, 0
  while true do
    local chunk = go.blocking(f.read, f, 1 << 20)
    if not chunk then break end
    size = size + #chunk
    h = fnv1a64(h, chunk)
  end
  f:close()
  return {hash = string.format("%016x", h), size = size}
end

-- The files under dir, sorted (find -print0 copes with any file name).
local function list_files(root)
  local p = assert(io.popen("find '" .. root:gsub("'", "'\\''") .. "' -type f -print0"))
  local data = p:read("a")
  p:close()
  local files = {}
  for path in data:gmatch("([^%z]+)%z") do files[#files + 1] = path end
  table.sort(files)
  return files
end

local files, shard, nshards = go.shard(list_files(dir))
local pool = go.pool{fn = hash_file, ordered = true, progress = true}

go(function() -- the producer: the pool's jobs are the paths
  for _, path in ipairs(files) do pool:submit(path) end
  pool:close()
end)

local prefix = dir:gsub("/*$", "") .. "/"
local nfiles, nbytes, nerr = 0, 0, 0
for i, r, err in pool:results() do
  local name = files[i]
  if name:sub(1, #prefix) == prefix then name = name:sub(#prefix + 1) end
  if err then
    nerr = nerr + 1
    io.stderr:write(string.format("hash_files: %s: %s\n", name, tostring(err)))
  else
    nfiles, nbytes = nfiles + 1, nbytes + r.size
    print(r.hash .. "  " .. name)
  end
end
print(string.format("%d files, %d bytes%s%s", nfiles, nbytes,
  nerr > 0 and string.format(", %d unreadable", nerr) or "",
  nshards > 1 and string.format(" (shard %d/%d)", shard, nshards) or ""))
