#!/usr/bin/env bash
# End-to-end: `inferd tokenize` / `inferd detokenize` with the real binary.
# stories260K: every prompt of tests/data/greedy/*.jsonl must give its
# prompt_ids (with BOS) and detokenize back to the prompt; a few vector cases
# of other vocabularies (--no-bos); --parse-special; usage and input errors.
set -euo pipefail
bin=${INFERD_BIN:-build/inferd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
m=models/stories260K.gguf

printf 'Once upon a time' | "$bin" tokenize --model "$m" >"$tmp/ids" || fail "tokenize"
[ "$(cat "$tmp/ids")" = "1 403 407 261 378" ] || fail "Once upon a time -> $(cat "$tmp/ids")"
printf 'Once upon a time' | "$bin" tokenize --model "$m" --no-bos >"$tmp/ids"
[ "$(cat "$tmp/ids")" = "403 407 261 378" ] || fail "--no-bos -> $(cat "$tmp/ids")"
printf '1 403 407 261 378' | "$bin" detokenize --model "$m" >"$tmp/txt"
[ "$(cat "$tmp/txt")" = "Once upon a time" ] || fail "detokenize -> '$(cat "$tmp/txt")'"

# Every prompt of the greedy references: prompt -> prompt_ids -> prompt.
n=0
for f in tests/data/greedy/stories260K_greedy.jsonl tests/data/greedy/stories260K_greedy_long.jsonl; do
  [ -f "$f" ] || continue
  node -e '
    const fs = require("fs"), path = require("path");
    const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
    lines.forEach((l, i) => {
      const j = JSON.parse(l);
      if (typeof j.prompt !== "string" || !Array.isArray(j.prompt_ids)) return;
      fs.writeFileSync(path.join(process.argv[2], "p" + i + ".txt"), j.prompt);
      fs.writeFileSync(path.join(process.argv[2], "p" + i + ".ids"), j.prompt_ids.join(" ") + "\n");
    });' "$f" "$tmp"
  for p in "$tmp"/p*.txt; do
    [ -e "$p" ] || continue
    want=${p%.txt}.ids
    "$bin" tokenize --model "$m" <"$p" >"$tmp/got" || fail "tokenize $p"
    cmp -s "$tmp/got" "$want" || fail "$f: prompt '$(head -c 60 "$p")' -> $(cat "$tmp/got"), want $(cat "$want")"
    "$bin" detokenize --model "$m" <"$tmp/got" >"$tmp/back" || fail "detokenize $p"
    cmp -s "$tmp/back" "$p" || fail "$f: detokenize(tokenize('$(head -c 60 "$p")')) = '$(head -c 60 "$tmp/back")'"
    n=$((n + 1))
    rm -f "$p" "$want"
  done
done
[ "$n" -gt 0 ] || fail "no greedy prompts found"
echo "stories260K: $n prompts ok"

# A few vector cases of other vocabularies (ids from tests/data/vocab/*.out).
check() { # vocab text expected-ids
  printf '%s' "$2" | "$bin" tokenize --model "tests/data/vocab/ggml-vocab-$1.gguf" --no-bos >"$tmp/got" \
    || fail "tokenize with $1"
  [ "$(cat "$tmp/got")" = "$3" ] || fail "$1: '$2' -> $(cat "$tmp/got"), want $3"
  "$bin" detokenize --model "tests/data/vocab/ggml-vocab-$1.gguf" <"$tmp/got" >"$tmp/back"
  [ "$(cat "$tmp/back")" = "$2" ] || [ "$1" = bert-bge ] || fail "$1: detokenize gave '$(cat "$tmp/back")'"
}
check llama-spm "Hello world" "15043 3186"
check llama-spm " " "259"
check gpt-2 "Hello world" "15496 995"
check gpt-2 " Hello world" "18435 995"
check llama-bpe "Hello world" "9906 1917"
check qwen2 "Hello world" "9707 1879"
check bert-bge "Hello world" "7592 2088"
check deepseek-coder "Hello world" "17535 1835"

# BOS from the file's defaults and --parse-special.
printf 'Hello' | "$bin" tokenize --model tests/data/vocab/ggml-vocab-llama-bpe.gguf >"$tmp/got"
[ "$(cat "$tmp/got")" = "128000 9906" ] || fail "llama-bpe BOS: $(cat "$tmp/got")"
printf '<|im_start|>' | "$bin" tokenize --model tests/data/vocab/ggml-vocab-qwen2.gguf --parse-special >"$tmp/got"
[ "$(cat "$tmp/got")" = "151644" ] || fail "--parse-special: $(cat "$tmp/got")"
printf '<|im_start|>' | "$bin" tokenize --model tests/data/vocab/ggml-vocab-qwen2.gguf >"$tmp/got"
[ "$(cat "$tmp/got")" != "151644" ] || fail "control token matched without --parse-special"
printf '' | "$bin" tokenize --model "$m" --no-bos >"$tmp/got"
[ "$(cat "$tmp/got")" = "" ] || fail "empty input"
printf '\xff\xfe\xc3' | "$bin" tokenize --model tests/data/vocab/ggml-vocab-gpt-2.gguf >/dev/null || fail "invalid UTF-8"

# --bench R: throughput on stderr, nothing on stdout.
printf 'Once upon a time there was a cat.' | "$bin" tokenize --model "$m" --no-bos --bench 3 >"$tmp/out" 2>"$tmp/err" \
  || fail "--bench"
grep -Eq '^tokenize: 33 bytes, [0-9]+ tokens, median [0-9.]+ MB/s over 3 runs$' "$tmp/err" || fail "--bench output: $(cat "$tmp/err")"
[ ! -s "$tmp/out" ] || fail "--bench prints no ids"

# Errors: usage (2), bad model / bad ids (1), --help (0).
set +e
"$bin" tokenize --model "$m" --bench 0 </dev/null >/dev/null 2>&1; [ $? -eq 2 ] || fail "--bench 0 must exit 2"
"$bin" tokenize </dev/null >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing --model must exit 2"
"$bin" tokenize --model "$m" --bogus </dev/null >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown flag must exit 2"
"$bin" tokenize --model "$tmp/none.gguf" </dev/null >/dev/null 2>"$tmp/err"; [ $? -eq 1 ] || fail "missing file must exit 1"
printf '1 99999' | "$bin" detokenize --model "$m" >/dev/null 2>"$tmp/err"; [ $? -eq 1 ] || fail "bad id must exit 1"
grep -q 99999 "$tmp/err" || fail "the bad id is named"
printf '1 x' | "$bin" detokenize --model "$m" >/dev/null 2>&1; [ $? -eq 1 ] || fail "non-number must exit 1"
if [ -w /dev/full ]; then
  printf 'Hello' | "$bin" tokenize --model "$m" >/dev/full 2>"$tmp/err"; [ $? -eq 1 ] || fail "a full stdout must exit 1"
  grep -q "cannot write" "$tmp/err" || fail "a full stdout is reported: $(cat "$tmp/err")"
else
  echo "skip: /dev/full is not writable here, the write-error check did not run"
fi
"$bin" tokenize --help >/dev/null || fail "--help"
"$bin" detokenize --help >/dev/null || fail "detokenize --help"
set -e
echo "ok"
