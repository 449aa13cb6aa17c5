#!/usr/bin/env bash
# End-to-end: `inferd inspect` on the vendored GGUF files (text and JSON,
# abbreviated and --full) and on broken input (exit 1 with a message on
# stderr; usage errors exit 2). JSON validity is checked with node.
set -euo pipefail
bin=${INFERD_BIN:-build/inferd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# json FILE EXPR: evaluates the JS expression EXPR with j = JSON.parse(FILE); fails unless truthy.
json() {
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
           if (!eval(process.argv[2])) { console.error("false: " + process.argv[2]); process.exit(1); }' "$1" "$2" \
    || fail "JSON check '$2' on $1"
}

m=models/stories260K.gguf
"$bin" inspect "$m" >"$tmp/out.txt" || fail "inspect $m"
grep -q '^version:      3$' "$tmp/out.txt" || fail "version line"
grep -q '^tensors:      48$' "$tmp/out.txt" || fail "tensor count line"
grep -q '^  parameters:  292800$' "$tmp/out.txt" || fail "parameter total"
grep -Eq '^ +0  token_embd\.weight +f32 +\[64, 512\] +131072 +0$' "$tmp/out.txt" || fail "tensor row"
grep -q 'general.architecture  *string  "llama"' "$tmp/out.txt" || fail "string metadata"
grep -q 'string\[512\]  \["<unk>", "<s>", "</s>",.*\.\.\. 496 more\]' "$tmp/out.txt" || fail "abbreviated array"
grep -q 'layer_norm_rms_epsilon  float32  1e-05$' "$tmp/out.txt" || fail "float formatting"

"$bin" inspect --json "$m" >"$tmp/out.json" || fail "inspect --json"
json "$tmp/out.json" 'j.version === 3 && j.n_tensors === 48 && j.n_kv === 19 && j.alignment === 32'
json "$tmp/out.json" 'j.metadata["general.architecture"].value === "llama"'
json "$tmp/out.json" 'j.metadata["llama.block_count"].type === "uint32" && j.metadata["llama.block_count"].value === 5'
json "$tmp/out.json" 'j.metadata["tokenizer.ggml.tokens"].abbreviated && j.metadata["tokenizer.ggml.tokens"].value.length === 16'
json "$tmp/out.json" 'j.tensors[0].name === "token_embd.weight" && j.tensors[0].shape.join() === "64,512"'
json "$tmp/out.json" 'j.totals.n_params === 292800 && j.totals.by_type.f32.size_bytes === 1171200'

"$bin" inspect "$m" --json --full >"$tmp/full.json" || fail "inspect --json --full"
json "$tmp/full.json" 'j.metadata["tokenizer.ggml.tokens"].value.length === 512 && !j.metadata["tokenizer.ggml.tokens"].abbreviated'
json "$tmp/full.json" 'j.metadata["tokenizer.ggml.scores"].value.length === 512'
# Output goes to a file first: `inspect | grep -q` would let grep exit early
# and kill inspect with SIGPIPE, which pipefail reports as a failure.
"$bin" inspect --full "$m" >"$tmp/full.txt" || fail "inspect --full"
grep -q '"<unk>", "<s>", "</s>"' "$tmp/full.txt" || fail "--full text"
grep -q 'more\]' "$tmp/full.txt" && fail "--full text still abbreviated"
# A full disk is a runtime error (exit 1, message), not a silent success.
if [ -w /dev/full ]; then
  set +e; "$bin" inspect "$m" >/dev/full 2>"$tmp/e"; rc=$?; set -e
  [ "$rc" -eq 1 ] && grep -q 'cannot write' "$tmp/e" || fail "inspect >/dev/full: exit $rc"
else
  echo "skip: no /dev/full here, the full-disk check did not run"
fi

# Every vendored GGUF gives valid JSON, with and without --full (vocabularies
# hold odd bytes and control characters).
for f in tests/data/vocab/*.gguf tests/data/models/*.gguf; do
  "$bin" inspect --json "$f" >"$tmp/v.json" || fail "inspect --json $f"
  json "$tmp/v.json" 'typeof j.metadata === "object" && Array.isArray(j.tensors)'
  "$bin" inspect --json --full "$f" >"$tmp/v.json" || fail "inspect --json --full $f"
  json "$tmp/v.json" 'j.metadata["tokenizer.ggml.tokens"].value.length === j.metadata["tokenizer.ggml.tokens"].n'
  "$bin" inspect "$f" >/dev/null || fail "inspect $f"
done

# Errors: message on stderr, exit 1; usage errors exit 2.
expect_exit() { # CODE PATTERN ARGS...
  local code=$1 pat=$2; shift 2
  set +e; "$bin" inspect "$@" >"$tmp/o" 2>"$tmp/e"; local rc=$?; set -e
  [ "$rc" -eq "$code" ] || fail "inspect $*: exit $rc, expected $code"
  grep -q -- "$pat" "$tmp/e" || fail "inspect $*: stderr lacks '$pat': $(cat "$tmp/e")"
  [ "$code" -ne 1 ] || [ ! -s "$tmp/o" ] || fail "inspect $*: printed to stdout on error"
}
expect_exit 1 "cannot open '$tmp/absent.gguf'" "$tmp/absent.gguf"
head -c 5000 "$m" >"$tmp/trunc.gguf"
expect_exit 1 "past the end of the file (5000 bytes)" "$tmp/trunc.gguf"
expect_exit 1 "past the end of the file (5000 bytes)" --json "$tmp/trunc.gguf"
printf 'not a gguf file at all, just text\n' >"$tmp/text.gguf"
expect_exit 1 "bad magic" "$tmp/text.gguf"
expect_exit 2 "expected one FILE"
expect_exit 2 "unknown option '--bogus'" --bogus "$m"
"$bin" inspect --help | grep 'usage: inferd inspect FILE' >/dev/null || fail "--help"
echo "inspect: ok"
