#!/usr/bin/env bash
# Tokenizer throughput (one thread, no BOS, no special parsing, median of 5
# runs) on tests/data/bench/tokenizer-text.txt for the four vocabularies that
# llama.cpp's figures exist for; prints a markdown table with the ratio to
# llama.cpp. Usage: scripts/bench_tokenizer.sh BUILD_DIR (called by make bench).
set -euo pipefail
build=${1:-build}
bin=$build/inferd
text=tests/data/bench/tokenizer-text.txt
[ -x "$bin" ] || { echo "bench_tokenizer: no $bin (run make first)" >&2; exit 1; }
# vocab, llama.cpp MB/s and token count (llama.cpp c392e509, same text, 1 thread, median of 5)
rows=(
  "llama-spm 1.06 582587"
  "llama-bpe 8.6 524427"
  "qwen2 2.4 524462"
  "gpt-2 3.0 549091"
)
echo "Tokenizer throughput on $text ($(wc -c <"$text") bytes), 1 thread, median of 5"
echo
echo "| vocab | tokens | MB/s | llama.cpp MB/s | ratio |"
echo "|---|---|---|---|---|"
for r in "${rows[@]}"; do
  read -r v ref ref_tokens <<<"$r"
  line=$("$bin" tokenize --model "tests/data/vocab/ggml-vocab-$v.gguf" --no-bos --bench 5 <"$text" 2>&1 >/dev/null |
    grep '^tokenize:')
  tokens=$(sed -E 's/.* ([0-9]+) tokens.*/\1/' <<<"$line")
  mbs=$(sed -E 's/.*median ([0-9.]+) MB\/s.*/\1/' <<<"$line")
  ratio=$(awk -v a="$mbs" -v b="$ref" 'BEGIN { printf "%.1fx", a / b }')
  note=""
  [ "$tokens" = "$ref_tokens" ] || note=" (llama.cpp: $ref_tokens)"
  echo "| $v | $tokens$note | $mbs | $ref | $ratio |"
done
