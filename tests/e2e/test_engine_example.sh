#!/usr/bin/env bash
# The C API example (examples/simple.c, built by `make e2e` into
# $BUILD/examples/simple) on models/stories260K.gguf: its greedy output is
# llama.cpp's reference continuation, and n = 2 sampled choices both finish.
set -euo pipefail
: "${BUILD:=build}"
bin="$BUILD/examples/simple"
[ -x "$bin" ] || { echo "missing $bin (make e2e builds it)"; exit 1; }
model=models/stories260K.gguf
want=$(head -n 1 tests/data/greedy/stories260K_greedy.jsonl | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).text))')
out=$("$bin" "$model" "Once upon a time" 48 2>/dev/null)
got=$(printf '%s\n' "$out" | head -n 1)
if [ "$got" != "$want" ]; then
  echo "greedy text differs"; echo " got: $got"; echo "want: $want"; exit 1
fi
printf '%s\n' "$out" | grep '^\[choice 0: finish length, 5 prompt + 48 generated tokens\]$' >/dev/null
out=$("$bin" "$model" "The little dog" 12 0.8 2 2>/dev/null)
[ "$(printf '%s\n' "$out" | grep -c '^\[choice [01]: finish length, [0-9]* prompt + 12 generated tokens\]$')" = 2 ]
# Bad input: a missing model is a clear error, exit 1.
errf=$(mktemp)
trap 'rm -f "$errf"' EXIT
if "$bin" no-such-model.gguf "x" 2>"$errf"; then echo "expected failure"; exit 1; fi
grep -q "no-such-model.gguf" "$errf" || { cat "$errf"; exit 1; }
echo "ok"
