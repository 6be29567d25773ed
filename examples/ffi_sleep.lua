-- ffi_sleep.lua — a C call declared `blocking` does not stall the scheduler.
--
-- With a single P (GOMAXPROCS=1), 8 goroutines each call usleep(200000)
-- through go.ffi. The declaration says `blocking`, so every call hands its P
-- to another thread (Go's entersyscallblock) and the 8 sleeps overlap:
-- about 0.2 s in all instead of 8 x 0.2 = 1.6 s. Meanwhile a CPU-bound
-- goroutine keeps the P busy and still finishes. (Without `blocking`, a call
-- keeps its P marked "in a syscall" and sysmon hands the P off only once the
-- call has lasted ~1 ms, as Go does for cgo calls: `blocking` skips the wait.)
--
--   lua5.4 examples/ffi_sleep.lua

local go = require "goro"

local usleep = go.ffi.C:func("blocking int usleep(unsigned int usec)")
-- the same, as an option: go.ffi.C:func("int usleep(unsigned int)", {blocking = true})

local N, US = 8, 200000
go.gomaxprocs(1)
local before = go.stats().handoffs
local wg = go.waitgroup()
local t0 = go.now()
for i = 1, N do
  wg:add(1)
  go(function()
    usleep(US)
    wg:done()
  end)
end
-- a computation sharing the one P with them
local sum = go.chan(1)
go(function()
  local s = 0
  for k = 1, 2e6 do s = s + k % 7 end
  sum:send(s)
end)
wg:wait()
local elapsed = go.now() - t0
print(string.format("%d goroutines x usleep(%.1f s) on GOMAXPROCS=1: %.2f s "
  .. "(one after another: %.1f s)", N, US / 1e6, elapsed, N * US / 1e6))
print(string.format("P handoffs: %d; the computation on the same P gave %d",
  go.stats().handoffs - before, sum:recv()))
