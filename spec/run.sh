#!/bin/sh
# Runs test programs that print TAP ("ok N - name" / "not ok N - name"),
# shows their output, and ends with the line CI reads: "N passed, N failed".
# *.lua arguments are luaunit specs, run as: $GORO_LUA spec.lua -o tap.
# A program that exits non-zero or prints no result counts as one failure.
LUA_RUN=${GORO_LUA:-lua5.4}
pass=0; fail=0
for t in "$@"; do
  name=$(basename "$t")
  case "$t" in
    *.lua) out=$("$LUA_RUN" "$t" -o tap 2>&1); rc=$? ;;
    *) out=$("$t" 2>&1); rc=$? ;;
  esac
  printf '%s\n' "$out" | sed "s|^|$name: |"
  p=$(printf '%s\n' "$out" | grep -c '^ok ')
  f=$(printf '%s\n' "$out" | grep -c '^not ok ')
  pass=$((pass + p)); fail=$((fail + f))
  if [ $rc -ne 0 ] && [ $f -eq 0 ]; then
    echo "$name: exited with status $rc"; fail=$((fail + 1))
  elif [ $p -eq 0 ] && [ $f -eq 0 ]; then
    echo "$name: ran no test"; fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
