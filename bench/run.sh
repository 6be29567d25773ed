#!/bin/sh
# bench/run.sh — the benchmarks of issue #6 (make bench runs it after
# `make rock`, with LUA_PATH/LUA_CPATH pointing at rocks/).
#
#   sh bench/run.sh                        every workload, 5 runs, GOMAXPROCS default
#   BENCH_PROCS="1 2 4 8" sh bench/run.sh  the same per GOMAXPROCS, and the scaling
#   BENCH_SMOKE=1 sh bench/run.sh          every workload once at 1% size (CI);
#                                          exits 1 if one fails
#
# Env: LUA (default lua5.4), BENCH_RUNS (5), BENCH_FULL=1 (reference sizes for
# every workload, see bench/run.lua), BENCH_SCALE (multiplies sizes),
# BENCH_NOGO=1 (skip Go even when installed), BENCH_ONLY="W2 W4" (a subset),
# BENCH_LOAD=n (n CPU hogs beside every run; the report goes to
# bench/RESULTS-load.md).
# The Go versions (bench/go/) are built offline into a temporary directory
# when `go` is on PATH.
# The report goes to stdout and bench/RESULTS.md (not in smoke mode).
set -u
LUA=${LUA:-lua5.4}
here=$(cd "$(dirname "$0")" && pwd)
export LUA

tmp=$(mktemp -d "${TMPDIR:-/tmp}/goro-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Snapshot the goro module (and its Lua part) that LUA_CPATH/LUA_PATH find,
# so that a concurrent `make rock` cannot swap it in the middle of a run.
mod=$("$LUA" -e 'print(package.searchpath("goro", package.cpath) or "")' 2>/dev/null)
if [ -z "$mod" ]; then
  echo "bench: the goro module is not on LUA_CPATH (run: make bench)" >&2
  exit 1
fi
mkdir -p "$tmp/lib" "$tmp/share" && cp "$mod" "$tmp/lib/goro.so" || exit 1
sync_lua=$("$LUA" -e 'print(package.searchpath("goro.sync", package.path) or "")' 2>/dev/null)
if [ -n "$sync_lua" ]; then
  cp -R "$(dirname "$sync_lua")" "$tmp/share/goro" || exit 1
fi
BENCH_MODULE="$mod"
export BENCH_MODULE
LUA_CPATH="$tmp/lib/?.so;${LUA_CPATH:-;}"
LUA_PATH="$tmp/share/?.lua;$tmp/share/?/init.lua;${LUA_PATH:-;}"
export LUA_CPATH LUA_PATH

BENCH_GO=
if [ -z "${BENCH_SMOKE:-}" ] && [ -z "${BENCH_NOGO:-}" ] && command -v go >/dev/null 2>&1; then
  # GO111MODULE=off: a single file, standard library only, no network
  if (cd "$here/go" && GO111MODULE=off GOFLAGS= GOPROXY=off GOCACHE="$tmp/gocache" \
        GOPATH="$tmp/gopath" go build -o "$tmp/gobench" workloads.go) >"$tmp/gobuild.log" 2>&1
  then
    BENCH_GO="$tmp/gobench"
  else
    echo "bench: building bench/go failed; no Go column:" >&2
    cat "$tmp/gobuild.log" >&2
  fi
fi
export BENCH_GO

# BENCH_LOAD=n: n CPU hogs (busy shell loops) run beside every measurement,
# goro's and Go's alike, so that a figure shows what a busy machine costs
# (issue #12: goro's slowdown under load should be no worse than Go's).
hogs=
case "${BENCH_LOAD:-0}" in
  ''|*[!0-9]*) echo "bench: BENCH_LOAD=$BENCH_LOAD: give a number of CPU hogs" >&2; exit 2 ;;
esac
i=0
while [ "$i" -lt "${BENCH_LOAD:-0}" ]; do
  sh -c 'while :; do :; done' &
  hogs="$hogs $!"
  i=$((i + 1))
done
if [ -n "$hogs" ]; then
  trap 'kill $hogs 2>/dev/null; rm -rf "$tmp"' EXIT
fi

"$LUA" "$here/run.lua"
