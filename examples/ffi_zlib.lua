-- ffi_zlib.lua — native code on every core: compress chunks of data with
-- libz's compress2 from parallel goroutines, through go.ffi (libffi).
--
-- Each goroutine generates its chunk, compresses it with compress2, checks
-- the result with uncompress and reports the sizes. The job runs once in
-- one goroutine, chunk after chunk, then in one goroutine per chunk; the
-- time goes to zlib, in parallel. compress2 is declared without `blocking`:
-- a call keeps its P while it is short, and one that lasts over about a
-- millisecond leaves it to the other goroutines (sysmon's retake, as for
-- Go's cgo calls), so native calls use every core whatever GOMAXPROCS is.
--
--   lua5.4 examples/ffi_zlib.lua [chunks] [chunk size in bytes]

local go = require "goro"
local ffi = go.ffi

local CHUNKS = tonumber(arg and arg[1]) or 16
local SIZE = tonumber(arg and arg[2]) or 1 << 20

local z = ffi.open("libz.so.1")
-- zlib's types spelled in standard C: Bytef * is unsigned char *, uLongf is unsigned long
local compress2 = z:func("int compress2(unsigned char *dst, unsigned long *dstlen, "
                         .. "const unsigned char *src, unsigned long srclen, int level)")
local uncompress = z:func("int uncompress(unsigned char *dst, unsigned long *dstlen, "
                          .. "const unsigned char *src, unsigned long srclen)")
local compressBound = z:func("unsigned long compressBound(unsigned long srclen)")
local zlibVersion = z:func("const char *zlibVersion(void)")

-- Chunk i: 64 KiB of words drawn by a small LCG, repeated to the chunk's
-- size (further apart than zlib's 32 KiB window, so it still has to work).
local WORDS = {"goroutine", "channel", "select", "mutex", "waitgroup", "context",
  "deadline", "scheduler", "processor", "thread", "queue", "steal", "park", "ready",
  "close", "range", "timer", "ticker", "errgroup", "pool"}

local function make_chunk(i, size)
  local seed, parts, n = i * 7919 + 1, {}, 0
  while n < 65536 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local w = WORDS[seed % #WORDS + 1]
    parts[#parts + 1] = w
    n = n + #w + 1
  end
  local block = table.concat(parts, " ")
  return string.rep(block, size // #block + 1):sub(1, size)
end

-- One job: compresses chunk i, checks it; returns (size, compressed size).
local function job(i)
  local src = make_chunk(i, SIZE)
  local dst = ffi.buffer(compressBound(#src))
  local len = ffi.buffer(ffi.sizeof("unsigned long")) -- compress2's in/out dstLen
  len:set("unsigned long", #dst)
  local rc = compress2(dst, len, src, #src, 6)
  assert(rc == 0, "compress2 failed: " .. rc)
  local clen = len:get("unsigned long")
  -- check: uncompress into a fresh buffer gives the chunk back
  local back = ffi.buffer(#src)
  len:set("unsigned long", #back)
  rc = uncompress(back, len, dst, clen)
  assert(rc == 0 and len:get("unsigned long") == #src and back:tostring() == src,
         "chunk " .. i .. " did not survive the round trip")
  return #src, clen
end

-- Runs every job: in one goroutine, one after the other (parallel false),
-- or in one goroutine per chunk.
local function run(parallel)
  local results = go.chan(CHUNKS)
  local t0 = go.now()
  if parallel then
    for i = 1, CHUNKS do
      go(function() results:send({job(i)}) end)
    end
  else
    go(function() for i = 1, CHUNKS do results:send({job(i)}) end end)
  end
  local raw, packed = 0, 0
  for _ = 1, CHUNKS do
    local r = results:recv()
    raw, packed = raw + r[1], packed + r[2]
  end
  return raw, packed, go.now() - t0
end

print(string.format("zlib %s: %d chunks of %d KiB, compress2 level 6 + uncompress check",
  zlibVersion(), CHUNKS, SIZE // 1024))
local raw, packed, t1 = run(false)
print(string.format("1 goroutine:   %6.2f s  %6.1f MiB/s", t1, raw / 2^20 / t1))
local raw2, packed2, tp = run(true)
assert(raw == raw2 and packed == packed2, "the two runs disagree")
print(string.format("%d goroutines: %5.2f s  %6.1f MiB/s   speedup %.2fx (GOMAXPROCS %d)",
  CHUNKS, tp, raw / 2^20 / tp, t1 / tp, go.gomaxprocs()))
print(string.format("%.1f MiB -> %.1f MiB (%.1f%%), every chunk verified by uncompress",
  raw / 2^20, packed / 2^20, 100 * packed / raw))
