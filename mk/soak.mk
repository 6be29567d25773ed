# mk/soak.mk — make soak: does a goroutine leave nothing behind? (issue #13)
#
#   make soak                  bench/soak.lua's tests (big, load, waves), each
#                              in a fresh process against rocks/: RSS per wave
#                              and a pass/fail on growth; "N passed, N failed".
#   make soak SOAK_SCALE=0.1   the short version (about a minute).
#   SOAK_TESTS="big waves"     picks the tests.
# Not part of `make test`.

SOAK_SCALE ?= 1
SOAK_TESTS ?= big load waves

.PHONY: soak
soak: rock
	@eval "$$($(LUAROCKS) --tree $(ROCKS) path)"; pass=0; fail=0; \
	  for t in $(SOAK_TESTS); do \
	    out=$$(SOAK_SCALE=$(SOAK_SCALE) $(LUA) bench/soak.lua $$t 2>&1); rc=$$?; \
	    printf '%s\n' "$$out" | grep -v ' passed, .* failed$$'; \
	    if [ $$rc -eq 0 ] && printf '%s\n' "$$out" | grep -q '^ok '; then pass=$$((pass + 1)); \
	    else fail=$$((fail + 1)); fi; \
	  done; \
	  echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]
