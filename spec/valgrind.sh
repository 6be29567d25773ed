#!/bin/sh
# valgrind.sh — runs test programs under valgrind's memcheck and prints one
# TAP line per program: "ok" when memcheck found no error and no leak in it
# nor in the processes it started, "not ok" (with the reports) otherwise.
# Ends with "N passed, N failed".
#
#   sh spec/valgrind.sh build/spec/core/test_chan ... spec/foo_spec.lua ...
#
# *.lua arguments run as: $GORO_LUA spec.lua -o tap, with os.exit made to
# close the Lua state (LUA_INIT_5_4), so that lua_close and goro's shutdown
# run and whatever they do not free is a real leak.
#
# Children are followed (--trace-children): many specs run scripts in a
# child lua5.4 (exit statuses, deadlocks, os.exit, the REPL, examples/), and
# those paths are checked too; each process gets its own log,
# $VALGRIND_LOGS/<program>.<pid>.log. Every process fails on a memcheck
# error or on memory definitely or indirectly lost. "Possibly lost" fails
# the program itself; in a child it is only noted: a child that exits with
# goroutines still running (os.exit in a goroutine, a step stuck in C, the
# exit status 1 of an unhandled goroutine error) leaves their Lua states
# alive on purpose, reachable only through interior pointers.
#
# The programs' own test results are shown as notes: valgrind runs one
# thread at a time, so tests that measure time or parallelism may fail
# under it without a memory problem (spec/preempt_spec.lua's overlap of
# sleeps, test_runq's fairness counts); they are checked by `make test`.
# Env: VALGRIND (default: valgrind), VALGRIND_OPTS (extra options),
# VALGRIND_CHILDREN=0 (do not follow children).
LUA_RUN=${GORO_LUA:-lua5.4}
export GORO_VALGRIND=1 # specs scale their time limits and sizes
VG=${VALGRIND:-valgrind}
here=$(dirname "$0")
supp="$here/valgrind.supp"
logdir=${VALGRIND_LOGS:-build/valgrind}
children=--trace-children=yes
[ "${VALGRIND_CHILDREN:-1}" = 0 ] && children=--trace-children=no
# leaf programs the specs start: nothing of goro's runs in them
skip='*/ldd,*/sleep,*/mkdir,*/rm,*/cat,*/script,*/find,*/true'
mkdir -p "$logdir"
pass=0; fail=0; n=0; total=$(date +%s)

# bad LOG MAIN: the reason the process of LOG fails, or nothing.
bad() {
  if grep -q 'Invalid \|uninitialised\|Mismatched free\|Syscall param\|overlap in' "$1"; then
    echo "memcheck error"
  elif grep -q 'definitely lost: [1-9]\|indirectly lost: [1-9]' "$1"; then
    echo "leak"
  elif [ "$2" = 1 ] && grep -q 'possibly lost: [1-9]' "$1"; then
    echo "leak (possibly lost)"
  fi
}

for t in "$@"; do
  n=$((n + 1))
  name=$(basename "$t")
  rm -f "$logdir/$name".*log
  start=$(date +%s)
  case "$t" in
    *.lua) run="$LUA_RUN $t -o tap" ;;
    *) run=$t ;;
  esac
  out=$(LUA_INIT_5_4='local exit = os.exit; os.exit = function(c) return exit(c, true) end' \
    $VG $children --trace-children-skip="$skip" --leak-check=full \
      --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
      --suppressions="$supp" --log-file="$logdir/$name.%p.log" $VALGRIND_OPTS $run 2>&1)
  rc=$?
  secs=$(( $(date +%s) - start ))
  ts=$(printf '%s\n' "$out" | grep -cE '^ok [0-9]+[[:space:]]+# SKIP')
  tp=$(printf '%s\n' "$out" | grep -c '^ok ')
  tp=$((tp - ts))
  tf=$(printf '%s\n' "$out" | grep -c '^not ok ')
  failed=""; notes=""; nproc=0
  for log in "$logdir/$name".*.log; do
    [ -e "$log" ] || continue
    nproc=$((nproc + 1))
    cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -1)
    main=0; [ "$cmd" = "$run" ] && main=1
    why=$(bad "$log" $main)
    if [ -n "$why" ]; then
      failed="$failed $log"
      echo "# $why in: $cmd ($log)"
    elif grep -q 'possibly lost: [1-9]' "$log"; then
      notes="$notes $log"
    fi
  done
  if [ -n "$failed" ] || [ $nproc -eq 0 ]; then
    echo "not ok $n - valgrind: $name ($secs s, $nproc processes)"
    for log in $failed; do
      sed 's/^/#   /' "$log" | grep -v '^#   ==[0-9]*== *$' | head -150
    done
    fail=$((fail + 1))
  else
    echo "ok $n - valgrind: $name: no memory error, no leak ($secs s, $nproc processes; its tests: $tp ok, $tf not ok, $ts skipped)"
    pass=$((pass + 1))
  fi
  for log in $notes; do
    echo "# note ($name): possibly lost at exit in a child, $(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -1): $(grep -h 'possibly lost:' "$log" | sed 's/^==[0-9]*== *//')"
  done
  if [ "$tf" -gt 0 ] || { [ $rc -ne 0 ] && [ "$tp" -eq 0 ]; }; then
    printf '%s\n' "$out" | grep -A3 '^not ok ' | sed "s|^|# note ($name under valgrind): |" | head -20
  fi
done
echo "# valgrind: $n programs in $(( $(date +%s) - total )) s"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
