#!/bin/sh
# valgrind.sh — runs test programs under valgrind's memcheck and prints one
# TAP line per program: "ok" when memcheck found no error and no leak,
# "not ok" (with the report) otherwise. Ends with "N passed, N failed".
#
#   sh spec/valgrind.sh build/spec/core/test_chan ... spec/foo_spec.lua ...
#
# *.lua arguments run as: $GORO_LUA spec.lua -o tap, with os.exit made to
# close the Lua state (LUA_INIT_5_4), so that lua_close and goro's shutdown
# run and whatever they do not free is a real leak. The programs' own test
# results are shown as notes: valgrind runs one thread at a time, so tests
# that measure time or parallelism may fail under it without a memory
# problem (spec/preempt_spec.lua's overlap of sleeps, test_runq's fairness
# counts); they are checked by `make test`.
# Env: VALGRIND (default: valgrind), VALGRIND_OPTS (extra options).
LUA_RUN=${GORO_LUA:-lua5.4}
export GORO_VALGRIND=1 # specs scale their time limits and sizes
VG=${VALGRIND:-valgrind}
here=$(dirname "$0")
supp="$here/valgrind.supp"
logdir=${VALGRIND_LOGS:-build/valgrind}
mkdir -p "$logdir"
pass=0; fail=0; n=0
for t in "$@"; do
  n=$((n + 1))
  name=$(basename "$t")
  log="$logdir/$name.log"
  start=$(date +%s)
  case "$t" in
    *.lua)
      out=$(LUA_INIT_5_4='local exit = os.exit; os.exit = function(c) return exit(c, true) end' \
        $VG --leak-check=full --show-leak-kinds=definite,indirect,possible \
          --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=97 \
          --suppressions="$supp" --log-file="$log" $VALGRIND_OPTS \
          "$LUA_RUN" "$t" -o tap 2>&1); rc=$? ;;
    *)
      out=$($VG --leak-check=full --show-leak-kinds=definite,indirect,possible \
          --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=97 \
          --suppressions="$supp" --log-file="$log" $VALGRIND_OPTS "$t" 2>&1); rc=$? ;;
  esac
  secs=$(( $(date +%s) - start ))
  tp=$(printf '%s\n' "$out" | grep -c '^ok ')
  tf=$(printf '%s\n' "$out" | grep -c '^not ok ')
  summary=$(grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost' "$log" | sed 's/^==[0-9]*== *//' | tr '\n' ';')
  if [ $rc -eq 97 ] || grep -q 'Invalid \|uninitialised\|Mismatched free\|definitely lost: [1-9]' "$log"; then
    echo "not ok $n - valgrind: $name ($secs s): $summary"
    sed 's/^/#   /' "$log" | grep -v '^#   ==[0-9]*== *$' | head -200
    fail=$((fail + 1))
  else
    echo "ok $n - valgrind: $name: no memory error, no leak ($secs s; its tests: $tp ok, $tf not ok)"
    pass=$((pass + 1))
  fi
  if [ "$tf" -gt 0 ] || { [ $rc -ne 0 ] && [ $rc -ne 97 ] && [ "$tp" -eq 0 ]; }; then
    printf '%s\n' "$out" | grep -A3 '^not ok ' | sed "s|^|# note ($name under valgrind): |" | head -20
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
