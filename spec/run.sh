#!/bin/sh
# Runs test programs that print TAP ("ok N - name" / "not ok N - name" /
# "ok N # SKIP why"), shows their output, and ends with the line CI reads:
# "N passed, N failed, N skipped". A skipped case counts as neither a pass
# nor a failure.
# *.lua arguments are luaunit specs, run as: $GORO_LUA spec.lua -o tap.
# A program that exits non-zero or prints no result counts as one failure;
# so does one still running after SPEC_TIMEOUT seconds (default 1200): a
# hang fails instead of stopping the suite.
LUA_RUN=${GORO_LUA:-lua5.4}
LIMIT=${SPEC_TIMEOUT:-1200}
pass=0; fail=0; skip=0
for t in "$@"; do
  name=$(basename "$t")
  case "$t" in
    *.lua) out=$(timeout --foreground -k 10 "$LIMIT" "$LUA_RUN" "$t" -o tap 2>&1); rc=$? ;;
    *) out=$(timeout --foreground -k 10 "$LIMIT" "$t" 2>&1); rc=$? ;;
  esac
  printf '%s\n' "$out" | sed "s|^|$name: |"
  s=$(printf '%s\n' "$out" | grep -cE '^ok [0-9]+[[:space:]]+# SKIP')
  p=$(printf '%s\n' "$out" | grep -c '^ok ')
  p=$((p - s))
  f=$(printf '%s\n' "$out" | grep -c '^not ok ')
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "$name: still running after $LIMIT s (SPEC_TIMEOUT): stopped"; fail=$((fail + 1))
  elif [ $rc -ne 0 ] && [ $f -eq 0 ]; then
    echo "$name: exited with status $rc"; fail=$((fail + 1))
  elif [ $p -eq 0 ] && [ $f -eq 0 ] && [ $s -eq 0 ]; then
    echo "$name: ran no test"; fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
