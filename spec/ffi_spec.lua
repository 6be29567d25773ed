-- ffi_spec.lua — go.ffi: declaring and calling C functions of libc, libm and
-- libz through libffi, buffers, declarations shared by goroutines, blocking
-- calls handed off, and the errors of bad declarations and calls.
local lu = require "luaunit"
local go = require "goro"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local S = require "support"
local recv = S.recv -- a receive with a watchdog: a regression fails, never hangs
local with_procs = S.with_procs
local ffi = go.ffi
local C = ffi.C

-- The message of f's error (it must fail).
local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  lu.assertFalse(ok, "expected an error")
  return tostring(err)
end

local function assert_goro_error(pattern, f, ...)
  local err = err_of(f, ...)
  lu.assertStrContains(err, "goro:")
  lu.assertEquals(err:find("goro:", 1, true), 1, err)
  if pattern then lu.assertStrContains(err, pattern) end
end

-- ------------------------------------------------------------ every type

function test_int_long_and_long_long_arguments_and_results_stay_integers()
  local abs = C:func("int abs(int)")
  local labs = C:func("long labs(long)")
  local llabs = C:func("long long llabs(long long)")
  lu.assertEquals(abs(-42), 42)
  lu.assertEquals(math.type(abs(-42)), "integer")
  lu.assertEquals(abs(2147483647), 2147483647)
  lu.assertEquals(labs(-(1 << 40)), 1 << 40)
  lu.assertEquals(llabs(-math.maxinteger), math.maxinteger)
  lu.assertEquals(abs(-3.0), 3) -- a float with an integer value converts
end

function test_narrow_integers_16_and_32_bits()
  local htons = C:func("uint16_t htons(uint16_t)")
  local htonl = C:func("uint32_t htonl(uint32_t hostlong)")
  lu.assertEquals(htons(0x1234), 0x3412)
  lu.assertEquals(htons(0xff00), 0x00ff)
  lu.assertEquals(htonl(0x12345678), 0x78563412)
  lu.assertEquals(htonl(0xffffff00), 0x00ffffff) -- above INT32_MAX: stays unsigned
end

function test_small_parameter_types_are_range_checked()
  -- an int parameter declared narrower: libffi extends it, as C would
  local abs8 = C:func("int abs(signed char)")
  lu.assertEquals(abs8(-128), 128)
  assert_goro_error("argument 1 out of range for signed char: 128", abs8, 128)
  local toupper_u = C:func("int toupper(unsigned char c)")
  lu.assertEquals(toupper_u(string.byte("q")), string.byte("Q"))
  assert_goro_error("out of range for unsigned char: -1", toupper_u, -1)
  assert_goro_error("out of range for unsigned char: 256", toupper_u, 256)
  local htons = C:func("unsigned short htons(unsigned short)")
  assert_goro_error("out of range for unsigned short: 65536", htons, 65536)
end

function test_char_parameter_takes_a_byte_or_a_one_byte_string()
  local toupper = C:func("int toupper(int)")
  lu.assertEquals(toupper(string.byte("a")), string.byte("A"))
  local toupper_c = C:func("int toupper(char)")
  lu.assertEquals(toupper_c("b"), string.byte("B"))
  lu.assertEquals(toupper_c(string.byte("c")), string.byte("C"))
  assert_goro_error("an integer or a one-byte string (char), got string", toupper_c, "ab")
end

function test_size_t_results_and_const_char_pointer_arguments_take_strings_and_buffers()
  local strlen = C:func("size_t strlen(const char *s)")
  lu.assertEquals(strlen("hello"), 5)
  lu.assertEquals(strlen(""), 0)
  lu.assertEquals(strlen("ab\0cd"), 2) -- C sees the first zero byte
  lu.assertEquals(strlen(ffi.buffer("buffered")), 8) -- a buffer ends in a zero byte
end

function test_ssize_t_returns_negative_values()
  local write = C:func("ssize_t write(int fd, const void *buf, size_t n)")
  lu.assertEquals(write(-1, "x", 1), -1) -- EBADF
end

function test_double_and_float_arguments_and_results_keep_their_precision()
  local sqrt = C:func("double sqrt(double)")
  local cos = C:func("double cos(double x)")
  local pow = C:func("double pow(double, double)")
  local fabsf = C:func("float fabsf(float)")
  local sqrtf = C:func("float sqrtf(float)")
  lu.assertAlmostEquals(sqrt(2), math.sqrt(2), 1e-15)
  lu.assertEquals(cos(0), 1.0)
  lu.assertAlmostEquals(cos(math.pi), -1.0, 1e-15)
  lu.assertEquals(pow(2, 10), 1024.0)
  lu.assertEquals(math.type(pow(2, 10)), "float")
  lu.assertEquals(fabsf(-1.5), 1.5)
  lu.assertAlmostEquals(sqrtf(2), math.sqrt(2), 1e-6)
  assert_goro_error("argument 1 must be a number (double), got string", sqrt, "2")
end

function test_char_pointer_results_are_strings_or_nil()
  local strchr = C:func("char *strchr(const char *s, int c)")
  lu.assertEquals(strchr("hello", string.byte("l")), "llo")
  lu.assertNil(strchr("hello", string.byte("z")))
  local getenv = C:func("const char *getenv(const char *name)")
  lu.assertEquals(getenv("PATH"), os.getenv("PATH"))
  lu.assertNil(getenv("GORO_FFI_SPEC_SURELY_UNSET"))
end

function test_out_pointer_through_a_buffer_strtol()
  local strtol = C:func("long strtol(const char *s, char **end, int base)")
  local s = ffi.buffer("123abc")
  local endp = ffi.buffer(ffi.sizeof("char *"))
  lu.assertEquals(strtol(s, endp, 10), 123)
  local stop = endp:get("char *")
  lu.assertEquals(ffi.addr(stop) - ffi.addr(s), 3)
  lu.assertEquals(ffi.string(stop), "abc")
  lu.assertEquals(strtol("ff", nil, 16), 255) -- nil is NULL
  lu.assertEquals(strtol("-77", nil, 0), -77)
end

function test_unsigned_64_bit_results_wrap_like_string_pack()
  local strtoull = C:func("unsigned long long strtoull(const char *, char **, int)")
  lu.assertEquals(strtoull("18446744073709551615", nil, 10), -1)
  lu.assertEquals(strtoull("9223372036854775808", nil, 10), math.mininteger)
  lu.assertTrue(math.ult(1, strtoull("18446744073709551614", nil, 10)))
  local strtoul = C:func("unsigned long strtoul(const char *, char **, int)")
  lu.assertEquals(strtoul("4294967296", nil, 10), 1 << 32)
end

function test_void_pointers_malloc_memcpy_memset_free()
  local malloc = C:func("void *malloc(size_t)")
  local free = C:func("void free(void *p)")
  local memcpy = C:func("void *memcpy(void *dst, const void *src, size_t n)")
  local memset = C:func("void *memset(void *, int, size_t)")
  local p = malloc(16)
  lu.assertEquals(type(p), "userdata")
  lu.assertEquals(memcpy(p, "0123456789", 11), p)
  lu.assertEquals(ffi.string(p), "0123456789")
  lu.assertEquals(ffi.string(p, 4), "0123")
  memset(p, string.byte("x"), 3)
  lu.assertEquals(ffi.string(p), "xxx3456789")
  lu.assertNil(free(p)) -- void: no result
  lu.assertEquals(select("#", free(nil)), 0)
  -- buffers as destinations
  local dst = ffi.buffer(8)
  lu.assertEquals(memcpy(dst, "goro", 4), dst:ptr())
  lu.assertEquals(dst:tostring(4), "goro")
  lu.assertEquals(dst:tostring(), "goro\0\0\0\0")
  memcpy(dst:ptr(4), "!", 1) -- an offset into a buffer
  lu.assertEquals(dst:tostring(5), "goro!")
end

function test_getpid_returns_this_process_id()
  local getpid = C:func("pid_t getpid(void)")
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  lu.assertEquals(getpid(), pid)
end

function test_variadic_snprintf_types_from_values()
  local snprintf = C:func("int snprintf(char *buf, size_t n, const char *fmt, ...)")
  local buf = ffi.buffer(64)
  local n = snprintf(buf, #buf, "%lld|%s|%.2f|%d|%s", -42, "go", 3.14159, true, nil)
  local want = "-42|go|3.14|1|(null)"
  lu.assertEquals(n, #want)
  lu.assertEquals(ffi.string(buf), want)
  lu.assertEquals(buf:tostring(n), want)
  assert_goro_error("expected at least 3 arguments, got 2", snprintf, buf, 1)
  assert_goro_error("argument 4 must be a number, boolean, string, buffer, pointer or nil",
                    snprintf, buf, 64, "%s", {})
end

function test_libz_compress2_round_trip()
  local z = ffi.open("libz.so.1")
  local compress2 = z:func("int compress2(void *dst, unsigned long *dstlen, "
                           .. "const char *src, unsigned long srclen, int level)")
  local uncompress = z:func("int uncompress(void *dst, unsigned long *dstlen, "
                            .. "const void *src, unsigned long srclen)")
  local bound = z:func("unsigned long compressBound(unsigned long)")
  local src = string.rep("goroutines and channels ", 400)
  local dst = ffi.buffer(bound(#src))
  local len = ffi.buffer(ffi.sizeof("unsigned long"))
  len:set("unsigned long", #dst)
  lu.assertEquals(compress2(dst, len, src, #src, 9), 0)
  local clen = len:get("unsigned long")
  lu.assertTrue(clen < #src / 10)
  local out = ffi.buffer(#src)
  len:set("unsigned long", #out)
  lu.assertEquals(uncompress(out, len, dst:tostring(clen), clen), 0)
  lu.assertEquals(len:get("unsigned long"), #src)
  lu.assertEquals(out:tostring(), src)
end

-- ------------------------------------------------------------ buffers

function test_buffer_get_and_set_every_type()
  local b = ffi.buffer(32)
  lu.assertEquals(#b, 32)
  lu.assertEquals(b:len(), 32)
  local cases = {
    {"bool", true}, {"bool", false}, {"char", 65}, {"signed char", -5}, {"int8_t", -128},
    {"unsigned char", 255}, {"uint8_t", 200}, {"short", -30000}, {"unsigned short", 65535},
    {"int16_t", -2}, {"uint16_t", 7}, {"int", -2147483648}, {"unsigned int", 4294967295},
    {"int32_t", 123456}, {"uint32_t", 1}, {"long", -(1 << 50)}, {"unsigned long", 1 << 62},
    {"long long", math.mininteger}, {"unsigned long long", math.maxinteger},
    {"int64_t", -9}, {"uint64_t", 9}, {"size_t", 4096}, {"ssize_t", -1}, {"float", 0.5},
    {"double", 1 / 3},
  }
  for _, c in ipairs(cases) do
    for _, off in ipairs {0, 3, 32 - ffi.sizeof(c[1])} do -- unaligned too
      b:set(c[1], c[2], off)
      lu.assertEquals(b:get(c[1], off), c[2], c[1])
    end
  end
  b:set("void *", b:ptr(8))
  lu.assertEquals(b:get("void *"), b:ptr(8))
  b:set("void *", nil)
  lu.assertNil(b:get("void *"))
  lu.assertEquals(ffi.sizeof("long long"), 8)
  lu.assertEquals(ffi.sizeof("const char *"), ffi.sizeof("void *"))
  lu.assertEquals(ffi.sizeof("uint16_t"), 2)
end

function test_buffer_errors_name_the_offset_the_type_and_the_value()
  local b = ffi.buffer(8)
  assert_goro_error("offset 5 out of range for 4 bytes", b.get, b, "int", 5)
  assert_goro_error("offset -1 out of range", b.set, b, "int", 1, -1)
  assert_goro_error("out of range for unsigned char: 256", b.set, b, "unsigned char", 256)
  assert_goro_error("must be a boolean (bool), got 1", b.set, b, "bool", 1)
  assert_goro_error("a Lua string cannot be stored", b.set, b, "char *", "x")
  assert_goro_error("cannot parse type 'int x'", b.get, b, "int x")
  assert_goro_error("void has no size", ffi.sizeof, "void")
  assert_goro_error("length 9 out of range", b.tostring, b, 9)
  assert_goro_error("a size (integer >= 0) or a string expected", ffi.buffer, -1)
  assert_goro_error("do not fit", ffi.buffer, 2, "abc")
  lu.assertEquals(ffi.buffer(4, "ab"):tostring(), "ab\0\0")
  lu.assertStrContains(tostring(b), "goro.ffi.buffer(8)")
  -- a buffer belongs to its state: send its contents instead
  assert_goro_error("cannot transfer", go, function() end, b)
end

-- ------------------------------------------------------------ goroutines

function test_declaration_is_shared_by_reference_across_goroutines()
  local strlen = C:func("size_t strlen(const char *)")
  local results = go.chan(8)
  for i = 1, 8 do
    go(function()
      local total = 0
      for j = 1, 1000 do total = total + strlen(string.rep("x", (i + j) % 17)) end
      results:send({total, tostring(strlen)})
    end)
  end
  local want, got = 0, 0
  for i = 1, 8 do
    for j = 1, 1000 do want = want + (i + j) % 17 end
  end
  for _ = 1, 8 do
    local r = recv(results)
    got = got + r[1]
    lu.assertEquals(r[2], tostring(strlen)) -- the same C object
  end
  lu.assertEquals(got, want)
end

function test_library_shared_and_declared_inside_goroutines()
  local z = ffi.open("libz.so.1")
  local sums = go.chan(4)
  for i = 1, 4 do
    go(function()
      local crc32 = z:func("unsigned long crc32(unsigned long crc, const void *buf, unsigned int len)")
      local s = string.rep(tostring(i), 1000)
      sums:send({i, crc32(0, s, #s)})
    end)
  end
  local crc32 = z:func("unsigned long crc32(unsigned long, const void *, unsigned int)")
  for _ = 1, 4 do
    local r = recv(sums)
    local s = string.rep(tostring(r[1]), 1000)
    lu.assertEquals(r[2], crc32(0, s, #s))
  end
end

function test_buffers_inside_goroutines()
  local snprintf = C:func("int snprintf(char *, size_t, const char *, ...)")
  local out = go.chan(4)
  for i = 1, 4 do
    go(function()
      local b = go.ffi.buffer(32)
      snprintf(b, #b, "goroutine %lld", i)
      out:send(go.ffi.string(b))
    end)
  end
  local seen = {}
  for _ = 1, 4 do seen[recv(out)] = true end
  for i = 1, 4 do lu.assertTrue(seen["goroutine " .. i]) end
end

function test_blocking_calls_run_in_parallel_on_one_proc()
  local usleep = C:func("int usleep(unsigned int usec)", {blocking = true})
  with_procs(1, function()
    local wg = go.waitgroup()
    local t0 = go.now()
    for _ = 1, 8 do
      wg:add(1)
      go(function() usleep(200000) wg:done() end)
    end
    wg:wait()
    local elapsed = go.now() - t0
    lu.assertTrue(elapsed < 0.6, ("8 blocking usleep(0.2 s) took %.2f s"):format(elapsed))
  end)
end

function test_blocking_keyword_in_the_declaration()
  local usleep = C:func("blocking int usleep(unsigned int)")
  lu.assertStrContains(tostring(usleep), "blocking int usleep")
  with_procs(1, function()
    local done = go.chan(8)
    local t0 = go.now()
    for _ = 1, 8 do go(function() done:send(usleep(200000)) end) end
    for _ = 1, 8 do lu.assertEquals(recv(done), 0) end
    lu.assertTrue(go.now() - t0 < 0.6)
  end)
  lu.assertEquals(usleep(1000), 0) -- in the main state: a plain call
end

function test_long_plain_call_is_retaken_not_interrupted()
  -- not declared blocking: the P stays marked in a syscall, sysmon hands it
  -- off after ~1 ms, and no preemption signal cuts the sleep short (EINTR)
  local usleep = C:func("int usleep(unsigned int)")
  with_procs(1, function()
    local before = go.stats().retakes
    local done = go.chan(4)
    local t0 = go.now()
    for _ = 1, 4 do
      go(function()
        local t = go.now()
        local rc = usleep(100000)
        done:send({rc, go.now() - t})
      end)
    end
    for _ = 1, 4 do
      local r = recv(done)
      lu.assertEquals(r[1], 0)
      lu.assertTrue(r[2] >= 0.099, "usleep returned early: " .. r[2])
    end
    lu.assertTrue(go.now() - t0 < 0.35, "4 sleeps of 0.1 s did not overlap")
    lu.assertTrue(go.stats().retakes > before)
  end)
end

-- ------------------------------------------------------------ errors

function test_bad_declarations_raise_goro_errors()
  local bad = {
    {"in t foo(", "cannot parse 'in t foo(': unknown type 'in'"},
    {"int foo(", "expected a type, got the end"},
    {"int abs(int", "expected ',' or ')', got the end"},
    {"int (int)", "expected the function's name"},
    {"int abs int", "expected '(' after the name"},
    {"long double fabsl(long double)", "long double is not supported"},
    {"int f(struct stat *)", "struct types are not supported"},
    {"int abs(int) junk", "unexpected 'junk' after the parameter list"},
    {"int f(...)", "'...' needs a parameter before it"},
    {"int f(int, ..., int)", "'...' must be last"},
    {"int abs(void x)", "a parameter cannot be void"},
    {"int abs(int, )", "expected a parameter after ','"},
    {"unsigned signed abs(int)", "both signed and unsigned"},
    {"short long abs(int)", "bad type"},
    {"int abs(int $)", "unexpected character '$'"},
    {"Bytef *f(void)", "unknown type 'Bytef'"},
    {"", "expected a type"},
  }
  for _, c in ipairs(bad) do
    assert_goro_error(c[2], C.func, C, c[1])
  end
  assert_goro_error("lib:func needs a C declaration", C.func, C, 42)
  assert_goro_error("unknown option blockng", C.func, C, "int abs(int)", {blockng = true})
  assert_goro_error("options must be a table", C.func, C, "int abs(int)", true)
  assert_goro_error("library (go.ffi.open) expected, got number", C.func, 1, "int abs(int)")
end

function test_unknown_symbol_and_library_are_named()
  assert_goro_error("no function 'goro_no_such_function' in the process",
                    C.func, C, "int goro_no_such_function(void)")
  local z = ffi.open("libz.so.1")
  assert_goro_error("no function 'nope' in libz.so.1", z.func, z, "void nope(void)")
  assert_goro_error("cannot open library 'libgoro-missing.so.7'", ffi.open, "libgoro-missing.so.7")
  assert_goro_error("install it or pass a full path", ffi.open, "libgoro-missing.so.7")
  assert_goro_error("a library name expected", ffi.open, 5)
end

function test_bad_calls_raise_goro_errors_naming_function_and_argument()
  local abs = C:func("int abs(int)")
  local strlen = C:func("size_t strlen(const char *)")
  local memset = C:func("void *memset(void *, int, size_t)")
  local z = ffi.open("libz.so.1")
  local compress2 = z:func("int compress2(void *dst, unsigned long *dstlen, "
                           .. "const char *src, unsigned long srclen, int level)")
  assert_goro_error("ffi abs: expected 1 argument, got 0", abs)
  assert_goro_error("ffi abs: expected 1 argument, got 2", abs, 1, 2)
  assert_goro_error("ffi abs: argument 1 must be an integer (int), got string", abs, "1")
  assert_goro_error("ffi abs: argument 1 must be an integer (int), got 1.5", abs, 1.5)
  assert_goro_error("ffi abs: argument 1 must be an integer (int), got nil", abs, nil)
  assert_goro_error("ffi abs: argument 1 out of range for int: 4294967296", abs, 1 << 32)
  assert_goro_error("ffi strlen: argument 1 must be a string or buffer (const char *), got table",
                    strlen, {})
  assert_goro_error("ffi strlen: argument 1 must be a string or buffer (const char *), got boolean",
                    strlen, true)
  assert_goro_error("ffi memset: argument 1 must be a buffer or pointer (void *), got string",
                    memset, "read-only", 0, 1)
  assert_goro_error("ffi compress2: argument 3 must be a string or buffer (const char *), got table",
                    compress2, ffi.buffer(8), ffi.buffer(8), {}, 1, 1)
  assert_goro_error("ffi compress2: expected 5 arguments, got 3", compress2, 1, 2, 3)
  assert_goro_error("ffi function expected, got number", getmetatable(abs).__call, 1)
  -- the runtime is still fine
  lu.assertEquals(abs(-1), 1)
  local ch = go.chan(1)
  go(function() ch:send(pcall(abs, "x")) end)
  lu.assertFalse(recv(ch))
end

function test_objects_print_what_they_are()
  lu.assertStrContains(tostring(C), "goro.ffi.lib(the process)")
  lu.assertStrContains(tostring(ffi.open("libz.so.1")), "goro.ffi.lib(libz.so.1)")
  lu.assertStrContains(tostring(C:func("int abs(int)")), "goro.ffi.func(int abs(int))")
  lu.assertStrContains(tostring(ffi.open()), "the process")
end

os.exit(lu.LuaUnit.run())
