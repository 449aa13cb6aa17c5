#!/usr/bin/env bash
# Runs each unit-test binary given (Criterion), from the repository root so
# tests find tests/data; prints a summary and fails if any binary failed.
set -u
build=$1; shift
fail=0; n=0
for t in "$@"; do
  n=$((n + 1))
  if ! "$t" --jobs 2 >"$t.log" 2>&1; then
    echo "FAIL $t"; sed 's/^/    /' "$t.log" | tail -n 40
    fail=$((fail + 1))
  else
    echo "ok   $t  ($(grep -Eo 'Synthesis: .*' "$t.log" | tr -d '\033' | sed 's/\[[0-9;]*m//g'))"
  fi
done
echo "unit: $n binaries, $fail failed"
[ "$fail" -eq 0 ]
