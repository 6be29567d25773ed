# mk/reliability.mk — the reliability targets (included by the Makefile).
#
#   make stress     spec/stress.lua against rocks/: randomized, seeded,
#                   time-bounded stress from Lua (8 Ps). STRESS_SECONDS=20,
#                   STRESS_SEED=n replays a run, STRESS_SCALE, STRESS_PROCS,
#                   STRESS_ONLY=pipeline,cancel. (make test runs a 5-second
#                   version: spec/stress_spec.lua.)
#   make fuzz       builds the libFuzzer harnesses of spec/fuzz/ with clang
#                   (ASan + UBSan) into build-fuzz/ and runs each for
#                   FUZZ_SECONDS (60) from its corpus spec/fuzz/corpus-*/;
#                   new inputs go to build-fuzz/corpus-*, crashes to
#                   build-fuzz/artifacts/. FUZZ_TARGETS="xfer chan". One TAP
#                   line per target, "N passed, N failed" last.
#   make fuzz-merge minimizes spec/fuzz/corpus-*/ plus build-fuzz/corpus-*
#                   into the smallest set with the same coverage features and
#                   puts it in spec/fuzz/corpus-*/; files named regress-*
#                   (reproducers of fixed findings) always stay.
#   make valgrind   the C core tests and the Lua specs (lua5.4 and the
#                   module installed in rocks/) under valgrind memcheck
#                   --leak-check=full, child processes followed: one TAP
#                   line per program, "N passed, N failed" last.
#                   VALGRIND_SPECS picks the specs.

.PHONY: stress fuzz fuzz-build fuzz-merge valgrind

# ------------------------------------------------------------------ stress
STRESS_SECONDS ?= 20
stress: deps
	@mkdir -p $(BUILD)
	@$(MAKE) --no-print-directory rock
	@eval "$$($(LUAROCKS) --tree $(ROCKS) path)"; \
	  STRESS_SECONDS=$(STRESS_SECONDS) $(LUA) spec/stress.lua

# ------------------------------------------------------------------ fuzz
FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= xfer chan
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CORE_LIB := $(FUZZ_BUILD)/libgoro.a
FUZZ_LUA_OBJ := $(LUA_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_MAXLEN_xfer := 2048
FUZZ_MAXLEN_chan := 800
FUZZ_LEN = case $$t in xfer) len=$(FUZZ_MAXLEN_xfer);; *) len=$(FUZZ_MAXLEN_chan);; esac

# The core and the binding compiled with clang by the Makefile's own rules
# (coverage for libFuzzer, ASan, UBSan), then the harnesses linked.
fuzz-build:
	@sh tools/deps.sh clang libclang-rt-dev
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT=-O1 WERROR= \
	  SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" $(FUZZ_CORE_LIB) $(FUZZ_LUA_OBJ)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -O1 -g -pthread $(FUZZ_SAN) -fsanitize=fuzzer \
	  -iquote core spec/fuzz/fuzz_chan.c $(FUZZ_CORE_LIB) -o $(FUZZ_BUILD)/fuzz_chan
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -O1 -g -pthread $(FUZZ_SAN) -fsanitize=fuzzer \
	  $(LUA_INC) -iquote core -iquote lua spec/fuzz/fuzz_xfer.c $(FUZZ_LUA_OBJ) \
	  $(FUZZ_CORE_LIB) $(LUA_LIB) $(FFI_LIB) -ldl -lm -o $(FUZZ_BUILD)/fuzz_xfer

# -detect_leaks=0: no LeakSanitizer pass after each input (the sending Lua
# state lives across inputs, so each would trigger a full scan: 50x
# slower); ASAN_OPTIONS=detect_leaks=1 still checks for leaks at exit.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/artifacts
	@pass=0; fail=0; n=0; for t in $(FUZZ_TARGETS); do \
	  n=$$((n + 1)); $(FUZZ_LEN); \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$t spec/fuzz/corpus-$$t; \
	  echo "=== fuzz_$$t for $(FUZZ_SECONDS) s (corpus spec/fuzz/corpus-$$t)"; \
	  ASAN_OPTIONS=detect_leaks=1 $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=$$len -timeout=30 -rss_limit_mb=4096 -detect_leaks=0 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
	    $(FUZZ_BUILD)/corpus-$$t spec/fuzz/corpus-$$t > $(FUZZ_BUILD)/fuzz_$$t.log 2>&1; rc=$$?; \
	  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' $(FUZZ_BUILD)/fuzz_$$t.log; \
	  grep -E '^#[0-9]+.*(DONE|pulse)' $(FUZZ_BUILD)/fuzz_$$t.log | tail -1; \
	  if [ $$rc -ne 0 ]; then \
	    echo "not ok $$n - fuzz_$$t (status $$rc): see $(FUZZ_BUILD)/fuzz_$$t.log"; \
	    grep -E 'fuzz_(xfer|chan):|ERROR|SUMMARY|Test unit written|^Base64' $(FUZZ_BUILD)/fuzz_$$t.log | head -20; \
	    fail=$$((fail + 1)); \
	  else echo "ok $$n - fuzz_$$t: no crash, no invariant broken"; pass=$$((pass + 1)); fi; \
	done; echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]

# -merge=1 into an empty folder keeps, smallest first, the inputs that add
# coverage features: the minimal corpus of both folders.
fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_LEN); m=$(FUZZ_BUILD)/merge-$$t; rm -rf $$m; mkdir -p $$m $(FUZZ_BUILD)/corpus-$$t; \
	  $(FUZZ_BUILD)/fuzz_$$t -merge=1 -max_len=$$len -detect_leaks=0 $$m \
	    spec/fuzz/corpus-$$t $(FUZZ_BUILD)/corpus-$$t > $(FUZZ_BUILD)/merge-$$t.log 2>&1 || \
	    { tail -20 $(FUZZ_BUILD)/merge-$$t.log; exit 1; }; \
	  find spec/fuzz/corpus-$$t -type f ! -name 'regress-*' -delete; \
	  cp $$m/* spec/fuzz/corpus-$$t/; \
	  echo "spec/fuzz/corpus-$$t: $$(ls spec/fuzz/corpus-$$t | wc -l) inputs, $$(cat spec/fuzz/corpus-$$t/* | wc -c) bytes"; \
	done

# ------------------------------------------------------------------ valgrind
VALGRIND_SPECS ?= $(SPEC_LUA)
valgrind: deps
	@sh tools/deps.sh valgrind
	@mkdir -p $(BUILD)
	@$(MAKE) --no-print-directory $(SPEC_CORE_BIN) $(SPEC_HOST_BIN) rock
	@eval "$$($(LUAROCKS) --tree $(ROCKS) path)"; \
	  STRESS_SCALE=0.05 GORO_LUA="$(LUA)" VALGRIND_LOGS=$(BUILD)/valgrind \
	  sh spec/valgrind.sh $(SPEC_CORE_BIN) $(SPEC_HOST_BIN) $(VALGRIND_SPECS)
