#!/usr/bin/env bash
# Runs the end-to-end tests against the real binary ($INFERD_BIN):
# every tests/e2e/test_*.sh, then the Node tests (tests/e2e/*.test.mjs) with
# node:test. Each shell test gets INFERD_BIN and BUILD in its environment.
set -u
: "${INFERD_BIN:=build/inferd}" "${BUILD:=build}"
export INFERD_BIN BUILD
fail=0; n=0
for t in tests/e2e/test_*.sh; do
  [ -e "$t" ] || continue
  n=$((n + 1))
  log="$BUILD/e2e-$(basename "$t" .sh).log"
  start=$(date +%s)
  if bash "$t" >"$log" 2>&1; then
    echo "ok   $t ($(( $(date +%s) - start ))s)"
  else
    echo "FAIL $t"; tail -n 40 "$log" | sed 's/^/    /'
    fail=$((fail + 1))
  fi
done
shopt -s nullglob
node_tests=(tests/e2e/*.test.mjs)
if ((${#node_tests[@]})); then
  n=$((n + 1))
  if ! node --test --test-concurrency=1 "${node_tests[@]}"; then fail=$((fail + 1)); fi
fi
echo "e2e: $n suites, $fail failed"
[ "$fail" -eq 0 ]
