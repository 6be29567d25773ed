# goro — the one build definition (further targets in mk/*.mk).
#
#   make / make all   build the core (build/libgoro.a) and the module (build/goro.so)
#   make core         the core library only; make module: the Lua module only
#   make demo         the README's first command: install what is missing,
#                     build, install into rocks/, run examples/demo.lua
#   make test         the README's second command: the same, then every test
#                     (C core tests, then the Lua specs against rocks/)
#   make test-core    the C core tests only
#   make tsan / asan  the whole suite under ThreadSanitizer / ASan+UBSan
#                     (test-san runs it with the sanitizer-linked host)
#   make bench        the benchmarks (bench/), never part of the tests;
#                     make bench-core: the core's own C benchmark
#   make rock         install into the local LuaRocks tree rocks/
#   make install      install into INST_LIBDIR/INST_LUADIR (luarocks calls it)
#   make deps         install missing Debian packages (as root)
#   make clean        remove build*/ and rocks/
#   mk/reliability.mk: make stress, make fuzz, make fuzz-merge, make valgrind
#   mk/luaversions.mk: make test-lua-versions (every release in ../shared/lua-releases)
#   mk/package.mk:     make lint-rockspecs
#   mk/soak.mk:        make soak (memory after goroutines end; SOAK_SCALE)
#   mk/trace.mk:       make trace-check (a trace rendered in headless Chromium)
#
# Variables: BUILD (output folder), SAN (sanitizer flags, set by tsan/asan),
# OPT, WERROR, WAIT (=portable: the pthread wait/wake backend), LUA, LUA_INC,
# LUA_LIB, FFI_LIB.

LUA_VERSION := 5.4
LUA ?= $(shell command -v lua$(LUA_VERSION) 2>/dev/null || command -v lua 2>/dev/null)
LUA_INC ?= $(shell pkg-config --cflags lua$(LUA_VERSION) 2>/dev/null || echo -I/usr/include/lua$(LUA_VERSION))
LUA_LIB ?= $(shell pkg-config --libs lua$(LUA_VERSION) 2>/dev/null || echo -llua$(LUA_VERSION))
FFI_LIB ?= -lffi

CC ?= cc
# WAIT picks how threads sleep (core/wait.h): empty for the system's own
# (futex on Linux, os_sync/__ulock on macOS, _umtx_op on FreeBSD, else the
# portable one); WAIT=portable forces pthread mutexes and condition
# variables. Each backend builds in its own folder (objects do not depend
# on flags); luarocks' inner make inherits WAIT through MAKEFLAGS.
WAIT ?=
ifneq ($(filter-out portable,$(WAIT)),)
$(error goro: unknown WAIT=$(WAIT): use WAIT=portable, or leave WAIT empty for the system's own)
endif
WAIT_FLAGS := $(if $(WAIT),-DGORO_WAIT_PORTABLE)
WAIT_SUFFIX := $(if $(WAIT),-$(WAIT))
BUILD ?= build$(WAIT_SUFFIX)
SAN ?=
OPT ?= -O2
WERROR ?= -Werror
# -ftls-model=initial-exec: goro.so is loaded by dlopen, where the default
# model reads every _Thread_local through a __tls_get_addr call (about 10
# per round trip on W2: 350 instructions); goro's few hundred bytes of TLS
# fit in the static TLS glibc keeps for dlopened libraries.
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) -g -fPIC -ftls-model=initial-exec -pthread \
             -Wall -Wextra $(WERROR) -Wno-unused-parameter $(WAIT_FLAGS) $(SAN) $(CFLAGS)
LDFLAGS_ALL = -pthread $(SAN) $(LDFLAGS)

CORE_SRC := $(wildcard core/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_LIB := $(BUILD)/libgoro.a

SPEC_CORE_SRC := $(wildcard spec/core/test_*.c)
SPEC_CORE_BIN := $(SPEC_CORE_SRC:%.c=$(BUILD)/%)
# C hosts that embed Lua and load goro.so (found through LUA_CPATH)
SPEC_HOST_SRC := $(wildcard spec/host_*.c)
SPEC_HOST_BIN := $(SPEC_HOST_SRC:%.c=$(BUILD)/%)

LUA_SRC := $(wildcard lua/*.c)
LUA_OBJ := $(LUA_SRC:%.c=$(BUILD)/%.o)
LUA_MOD := $(BUILD)/goro.so
HOST := $(BUILD)/lua-host
ROCKS := rocks
LUAROCKS := luarocks --lua-version $(LUA_VERSION)
SPEC_LUA := $(sort $(wildcard spec/*_spec.lua))

BENCH_CORE_SRC := $(wildcard bench/core_*.c)
BENCH_CORE_BIN := $(BENCH_CORE_SRC:%.c=$(BUILD)/%)

.PHONY: all core module install rock deps test test-core test-san tsan asan clean bench demo

all: core module

core: $(CORE_LIB)

# -MMD -MP: each object and test binary writes a .d file of the headers it
# includes (read back at the end of this file), so editing a header
# rebuilds exactly what includes it.
# An object whose .d is missing (built before -MMD) is rebuilt once.
DEPFLAGS = -MMD -MP
DEPFILES = $(CORE_OBJ:.o=.d) $(LUA_OBJ:.o=.d) $(SPEC_CORE_BIN:=.d)
$(DEPFILES):

$(BUILD)/%.o: %.c $(BUILD)/%.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -iquote core -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/spec/core/%: spec/core/%.c $(BUILD)/spec/core/%.d $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -iquote core -Ispec/core $< $(CORE_LIB) $(LDFLAGS_ALL) -o $@

$(BUILD)/bench/%: bench/%.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -iquote core $< $(CORE_LIB) $(LDFLAGS_ALL) -o $@

# --- dependencies -----------------------------------------------------------
# As root on Debian, install what is missing (apt-get update once first);
# elsewhere, say what is needed.
DEB_PKGS := gcc make pkg-config lua5.4 liblua5.4-dev luarocks lua-unit libffi-dev
deps:
	@sh tools/deps.sh $(DEB_PKGS)

# --- tests ------------------------------------------------------------------
test-core: $(SPEC_CORE_BIN)
	@sh spec/run.sh $(SPEC_CORE_BIN)

# make test: everything against the copy installed in rocks/.
test: deps
	@mkdir -p $(BUILD)
	@$(MAKE) --no-print-directory $(SPEC_CORE_BIN) $(SPEC_HOST_BIN) rock
	@eval "$$($(LUAROCKS) --tree $(ROCKS) path)"; \
	  GORO_LUA="$(LUA)" sh spec/run.sh $(SPEC_CORE_BIN) $(SPEC_HOST_BIN) $(SPEC_LUA)

# Sanitizer runs: the module from $(BUILD), run by the sanitizer-linked host.
test-san: $(SPEC_CORE_BIN) $(SPEC_HOST_BIN) $(LUA_MOD) $(HOST)
	@LUA_CPATH="$(BUILD)/?.so;;" LUA_PATH="lua/?.lua;lua/?/init.lua;;" \
	  GORO_LUA="$(HOST)" $(SANENV) sh spec/run.sh $(SPEC_CORE_BIN) $(SPEC_HOST_BIN) $(SPEC_LUA)

tsan: deps
	@$(MAKE) --no-print-directory test-san BUILD=build-tsan$(WAIT_SUFFIX) OPT=-O1 SAN="-fsanitize=thread" \
	  SANENV="TSAN_OPTIONS='halt_on_error=1 second_deadlock_stack=1 report_thread_leaks=0' STRESS_SCALE=0.1 GORO_TSAN=1"

asan: deps
	@$(MAKE) --no-print-directory test-san BUILD=build-asan$(WAIT_SUFFIX) OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  SANENV="ASAN_OPTIONS='detect_leaks=1' STRESS_SCALE=0.2"

bench-core: $(BENCH_CORE_BIN)
	@for b in $(BENCH_CORE_BIN); do $$b; done

# make bench [BENCH_PROCS="1 2 4 8"]: the workloads of bench/, against rocks/.
BENCH_PROCS ?=
bench: rock $(BENCH_CORE_BIN)
	@eval "$$($(LUAROCKS) --tree $(ROCKS) path)"; \
	  LUA="$(LUA)" BENCH_PROCS="$(BENCH_PROCS)" sh bench/run.sh

# make demo: the README's first command.
demo: rock
	@eval "$$($(LUAROCKS) --tree $(ROCKS) path)"; $(LUA) examples/demo.lua

clean:
	rm -rf build build-* rocks

# --- the Lua module -----------------------------------------------------------

$(BUILD)/lua/%.o: lua/%.c $(BUILD)/lua/%.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) $(LUA_INC) -iquote core -iquote lua -c $< -o $@

$(LUA_MOD): $(LUA_OBJ) $(CORE_LIB)
	$(CC) -shared $(LUA_OBJ) $(CORE_LIB) $(LDFLAGS_ALL) $(FFI_LIB) -o $@

module: $(LUA_MOD)

# Installs the module (luarocks make calls this with INST_LIBDIR/INST_LUADIR).
INST_LIBDIR ?= /usr/local/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= /usr/local/share/lua/$(LUA_VERSION)
install: $(LUA_MOD)
	mkdir -p $(INST_LIBDIR) $(INST_LUADIR)/goro
	cp $(LUA_MOD) $(INST_LIBDIR)/goro.so
	for f in lua/goro/*.lua; do [ -e "$$f" ] && cp "$$f" $(INST_LUADIR)/goro/ || true; done

# A local LuaRocks tree (rocks/): the tests load goro from there, as a user would.
rock: deps
	@mkdir -p $(BUILD)
	$(LUAROCKS) --tree $(ROCKS) make goro-scm-1.rockspec >$(BUILD)/rock.log 2>&1 || \
	  { cat $(BUILD)/rock.log; exit 1; }

$(BUILD)/spec/host_%: spec/host_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LUA_INC) $< $(LUA_LIB) -lm -ldl $(LDFLAGS_ALL) -o $@

# A small Lua host linked with the sanitizer runtime (lua5.4 is not).
$(HOST): spec/host.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LUA_INC) $< $(LUA_LIB) -lm -ldl $(LDFLAGS_ALL) -o $@

# Further targets (stress, fuzz, valgrind...) live in mk/*.mk.
-include $(wildcard mk/*.mk)

# The header dependencies written by -MMD (absent before the first build).
-include $(wildcard $(DEPFILES))
