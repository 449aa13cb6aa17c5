#!/usr/bin/env bash
# Runs each unit-test binary given (Criterion), from the repository root so
# tests find tests/data; prints each binary's summary and every skipped test
# with its reason (a skip is never a pass), and fails if any binary failed.
set -u
build=$1; shift
fail=0; n=0; skips=0
for t in "$@"; do
  n=$((n + 1))
  if ! "$t" --jobs 2 --verbose >"$t.log" 2>&1; then
    echo "FAIL $t"; grep -vE '^\[(RUN |PASS|----)\]' "$t.log" | tail -n 40 | sed 's/^/    /'
    fail=$((fail + 1))
  else
    echo "ok   $t  ($(grep -Eo 'Synthesis: .*' "$t.log" | sed 's/\x1b\[[0-9;]*m//g'))"
  fi
  s=$(grep -a '\[SKIP\]' "$t.log" | sed 's/\x1b\[[0-9;]*m//g')
  if [ -n "$s" ]; then
    printf '%s\n' "$s" | sed 's/^/     /'
    skips=$((skips + $(printf '%s\n' "$s" | wc -l)))
  fi
done
echo "unit: $n binaries, $fail failed, $skips tests skipped (reasons above)"
[ "$fail" -eq 0 ]
