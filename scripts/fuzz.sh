#!/usr/bin/env bash
# Builds every libFuzzer target tests/fuzz/fuzz_<name>.c with clang
# (-fsanitize=fuzzer,address,undefined) against the library compiled with
# clang into build-fuzz/, then runs each for SECONDS (default 20) on its seed
# corpus tests/fuzz/corpus/<name>/. New inputs go to build-fuzz/corpus/<name>/
# (the seed corpus is only read); crashes to build-fuzz/artifacts/. A libFuzzer
# dictionary tests/fuzz/fuzz_<name>.dict is used when present.
# Usage: scripts/fuzz.sh [SECONDS] [NAME...]   (NAME: e.g. gguf; default all)
set -u
secs=${1:-20}
shift || true
cd "$(dirname "$0")/.."
build=build-fuzz
cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (scripts/deps.sh installs clang)" >&2; exit 1; }

san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cflags="-O1 -g -std=c11 -pthread -fno-strict-aliasing -Wall -Wextra $san -fsanitize=fuzzer-no-link"
# The library, through the Makefile (incremental, same source list and per-file flags).
make --no-print-directory -s -j2 BUILD=$build CC="$cc" CFLAGS="$cflags" "$build/libinferd.a" \
  || { echo "fuzz: building the library with $cc failed" >&2; exit 1; }
ldlibs=$(make --no-print-directory -s --eval='fuzz-print-ldlibs: ; @echo $(LDLIBS)' fuzz-print-ldlibs)

targets=()
if [ $# -gt 0 ]; then
  for n in "$@"; do targets+=("tests/fuzz/fuzz_$n.c"); done
else
  for t in tests/fuzz/fuzz_*.c; do [ -e "$t" ] && targets+=("$t"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in tests/fuzz/" >&2; exit 1; }

mkdir -p "$build/fuzz" "$build/artifacts"
fail=0
for src in "${targets[@]}"; do
  name=$(basename "$src" .c); name=${name#fuzz_}
  exe="$build/fuzz/fuzz_$name"
  if ! "$cc" -Iinclude -Isrc -D_GNU_SOURCE $cflags -fsanitize=fuzzer -o "$exe" "$src" \
        "$build/libinferd.a" $ldlibs; then
    echo "FAIL fuzz_$name (build)"; fail=$((fail + 1)); continue
  fi
  seeds="tests/fuzz/corpus/$name"
  work="$build/corpus/$name"
  mkdir -p "$work"
  dirs=("$work"); [ -d "$seeds" ] && dirs+=("$seeds")
  log="$build/fuzz_$name.log"
  dict=(); [ -f "tests/fuzz/fuzz_$name.dict" ] && dict=(-dict="tests/fuzz/fuzz_$name.dict")
  "$exe" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/${name}-" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 || true)
  if [ $rc -eq 0 ]; then
    echo "ok   fuzz_$name  (${secs}s, ${runs:-?} runs, ${cov:-cov: ?})"
  else
    echo "FAIL fuzz_$name (exit $rc; log $log; crash inputs in $build/artifacts/)"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 10 | sed 's/^/    /'
    fail=$((fail + 1))
  fi
done
echo "fuzz: ${#targets[@]} targets, $fail failed"
[ "$fail" -eq 0 ]
