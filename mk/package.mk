# mk/package.mk — the package (included by the Makefile).
#
#   make lint-rockspecs   luarocks lint on goro-scm-1.rockspec and every
#                         rockspecs/*.rockspec (spec/package_spec.lua runs
#                         it too, with the version and changelog checks)
#
# make test (and the sanitizer and valgrind runs of the same specs) first
# installs what the packaging specs need: GNU parallel, which
# spec/shard_spec.lua uses to run examples/hash_files.lua as 3 shards.

PACKAGE_DEB_PKGS := parallel
RELEASED_ROCKSPECS := $(wildcard rockspecs/*.rockspec)

.PHONY: package-deps lint-rockspecs

test tsan asan valgrind: package-deps

package-deps:
	@sh tools/deps.sh $(PACKAGE_DEB_PKGS)

lint-rockspecs: deps
	@for r in goro-scm-1.rockspec $(RELEASED_ROCKSPECS); do \
	  $(LUAROCKS) lint $$r && echo "luarocks lint $$r: ok" || exit 1; done
