# mk/luaversions.mk — goro against every Lua 5.4 release at hand.
#
#   make test-lua-versions   for each lua-5.4.*.tar.gz in LUA_RELEASES
#                            (../shared/lua-releases: no network): build that
#                            Lua under build/lua-5.4.x/, the module against it
#                            (build/lua-5.4.x/goro/), then the whole Lua suite
#                            run by that interpreter (~30 s a release). Ends
#                            with one "N passed, N failed, N skipped" line,
#                            summed over the releases.
#
# What differs between the releases, and what goro does about it:
# lua/luacompat.h.

LUA_RELEASES ?= ../shared/lua-releases
LV_BUILD := build
LV_TARS := $(wildcard $(LUA_RELEASES)/lua-5.4.*.tar.gz)
# lua-5.4.0 lua-5.4.3 ... in release order (5.4.10 after 5.4.9)
LV_NAMES := $(shell printf '%s\n' $(notdir $(LV_TARS:.tar.gz=)) | sort -V)
LV_MAKE := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make
# luaunit and the other pure-Lua modules the specs use, from the system Lua;
# C modules only from the release's own build
LV_SYSPATH = $(shell $(LUA) -e 'io.write(package.path)' 2>/dev/null)

.PHONY: test-lua-versions lua-releases

# The interpreter (and liblua.a, the headers) of one release: 5 s, once.
$(LV_BUILD)/lua-%/lua: $(LUA_RELEASES)/lua-%.tar.gz
	@mkdir -p $(LV_BUILD)
	@rm -rf $(LV_BUILD)/lua-$*
	@tar xzf $< -C $(LV_BUILD)
	@$(LV_MAKE) -C $(LV_BUILD)/lua-$* CC="$(CC)" MYCFLAGS="-std=c99 -DLUA_USE_LINUX -fPIC" \
	  MYLIBS="-ldl" MYLDFLAGS="-Wl,-E" >$(LV_BUILD)/lua-$*.log 2>&1 || \
	  { cat $(LV_BUILD)/lua-$*.log; echo "goro: building Lua $* failed (log above)"; exit 1; }

lua-releases: $(LV_NAMES:%=$(LV_BUILD)/%/lua)

# Each release: its module, then the suite. A release whose Lua or module
# does not build counts as one failure and the others still run.
test-lua-versions: deps $(if $(LV_NAMES),,lv-none)
	@pass=0; fail=0; skip=0; log=$$(mktemp); \
	for r in $(LV_NAMES); do \
	  v=$${r#lua-}; dir=$(LV_BUILD)/$$r; \
	  echo "=== Lua $$v"; \
	  if ! $(MAKE) --no-print-directory $$dir/lua >$$log 2>&1 || \
	     ! $(MAKE) --no-print-directory module BUILD=$$dir/goro LUA_INC=-I$$dir >>$$log 2>&1; then \
	    sed "s|^|$$v: |" $$log; echo "$$v: goro: the build failed"; fail=$$((fail + 1)); continue; \
	  fi; \
	  LUA_CPATH="$$dir/goro/?.so" LUA_PATH="lua/?.lua;lua/?/init.lua;$(LV_SYSPATH)" \
	    GORO_LUA="$$dir/lua" sh spec/run.sh $(SPEC_LUA) >$$log 2>&1; \
	  sed "s|^|$$v: |" $$log; \
	  line=$$(grep -E '^[0-9]+ passed, [0-9]+ failed' $$log | tail -1); \
	  if [ -z "$$line" ]; then fail=$$((fail + 1)); continue; fi; \
	  p=$${line%% passed*}; f=$${line#*passed, }; f=$${f%% failed*}; \
	  s=$$(echo "$$line" | sed -n 's/.* \([0-9][0-9]*\) skipped.*/\1/p'); \
	  pass=$$((pass + p)); fail=$$((fail + f)); skip=$$((skip + $${s:-0})); \
	done; \
	rm -f $$log; \
	echo "$$pass passed, $$fail failed, $$skip skipped"; \
	[ $$fail -eq 0 ]

lv-none:
	@echo "goro: no Lua release sources in $(LUA_RELEASES) (lua-5.4.*.tar.gz)"; \
	  echo "0 passed, 1 failed"; exit 1
