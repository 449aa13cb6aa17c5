#!/usr/bin/env bash
# make_synth_tiny.sh BUILD_DIR - (re)creates BUILD_DIR/testdata/synth-tiny-<T>.gguf
# for every weight type of the synth-tiny references (tests/data/greedy):
# `inferd quantize --pure` of tests/data/models/synth-tiny-f32.gguf, which
# gives the same bytes as the llama-quantize files the references were made
# with (tests/e2e/test_quantize.sh checks it). Idempotent: a file is remade
# only when it is missing or older than the binary or the f32 model
# (FORCE=1 remakes all). Uses $INFERD_BIN, else BUILD_DIR/inferd.
set -eu
build="${1:?usage: make_synth_tiny.sh BUILD_DIR}"
bin="${INFERD_BIN:-$build/inferd}"
src="tests/data/models/synth-tiny-f32.gguf"
out="$build/testdata"
types="F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q4_K_S Q5_K_S Q6_K IQ4_NL IQ4_XS"
[ -x "$bin" ] || { echo "make_synth_tiny.sh: no binary at $bin (run make first)" >&2; exit 1; }
[ -f "$src" ] || { echo "make_synth_tiny.sh: missing $src" >&2; exit 1; }
mkdir -p "$out"
made=0
for t in $types; do
  f="$out/synth-tiny-$t.gguf"
  if [ "${FORCE:-0}" != 1 ] && [ -f "$f" ] && [ "$f" -nt "$bin" ] && [ "$f" -nt "$src" ]; then
    continue
  fi
  "$bin" quantize "$src" "$f" "$t" --pure --quiet
  made=$((made + 1))
done
[ "$made" -eq 0 ] || echo "make_synth_tiny.sh: wrote $made file(s) in $out"
