#!/bin/sh
# Runs test programs that print TAP ("ok N - name" / "not ok N - name"),
# shows their output, and ends with the line CI reads: "N passed, N failed".
# A program that exits non-zero or prints no result counts as one failure.
pass=0; fail=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out" | sed "s|^|$(basename "$t"): |"
  p=$(printf '%s\n' "$out" | grep -c '^ok ')
  f=$(printf '%s\n' "$out" | grep -c '^not ok ')
  pass=$((pass + p)); fail=$((fail + f))
  if [ $rc -ne 0 ] && [ $f -eq 0 ]; then
    echo "$(basename "$t"): exited with status $rc"; fail=$((fail + 1))
  elif [ $p -eq 0 ] && [ $f -eq 0 ]; then
    echo "$(basename "$t"): ran no test"; fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
