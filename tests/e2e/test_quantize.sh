#!/usr/bin/env bash
# test_quantize.sh - `inferd quantize` against llama-quantize:
#  1. regenerates every synth-tiny type with `inferd quantize --pure` into
#     $BUILD/testdata (scripts/make_synth_tiny.sh, forced) and checks every
#     tensor's data bytes, and each whole file, against the sha256 table of
#     the llama-quantize files (tests/data/models/synth-tiny.tensors.sha256);
#  2. a K-quant mix (Q4_K_M) gets llama.cpp's per-tensor types;
#  3. usage and input errors give exit codes 2 and 1 with a message.
# Needs node (JSON and sha256 of byte ranges, from `inferd inspect --json`).
set -eu
: "${INFERD_BIN:=build/inferd}" "${BUILD:=build}"
table=tests/data/models/synth-tiny.tensors.sha256
src=tests/data/models/synth-tiny-f32.gguf
tmp="$BUILD/e2e-quantize.tmp"
rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# file tensor type sha256, one line per tensor of each file given.
tensor_sha256() {
  local f
  for f in "$@"; do
    "$INFERD_BIN" inspect --json "$f" | node -e '
      const fs = require("fs"), crypto = require("crypto"), path = require("path");
      const j = JSON.parse(fs.readFileSync(0, "utf8"));
      const fd = fs.openSync(process.argv[1], "r");
      for (const t of j.tensors) {
        const b = Buffer.alloc(t.size_bytes);
        if (fs.readSync(fd, b, 0, t.size_bytes, j.data_offset + t.offset) !== t.size_bytes)
          throw new Error(`${t.name}: short read`);
        const h = crypto.createHash("sha256").update(b).digest("hex");
        console.log(`${path.basename(process.argv[1])} ${t.name} ${t.type} ${h}`);
      }' "$f" || return 1
  done
}

# 1. --pure reproduces llama-quantize's tensors (and files) byte for byte.
FORCE=1 INFERD_BIN="$INFERD_BIN" scripts/make_synth_tiny.sh "$BUILD"
files=$(grep -v '^#' "$table" | cut -d' ' -f1 | sort -u)
[ "$(echo "$files" | wc -l)" -eq 14 ] || fail "table lists $(echo "$files" | wc -l) files, expected 14"
n_checked=0
for f in $files; do
  out="$BUILD/testdata/$f"
  [ -f "$out" ] || fail "$out was not written"
  grep "^$f " "$table" | grep -v ' (file) ' | sort > "$tmp/want"
  tensor_sha256 "$out" | sort > "$tmp/got"
  if ! diff -u "$tmp/want" "$tmp/got" > "$tmp/diff"; then
    cat "$tmp/diff" >&2
    fail "$f: tensors differ from llama-quantize's"
  fi
  want_file=$(grep "^$f (file) " "$table" | cut -d' ' -f4)
  got_file=$(sha256sum < "$out" | cut -d' ' -f1)
  [ "$want_file" = "$got_file" ] || fail "$f: file sha256 $got_file, llama-quantize's $want_file"
  n_checked=$((n_checked + $(wc -l < "$tmp/want")))
done
echo "pure: $n_checked tensors in 14 files identical to llama-quantize's"

# 2. Q4_K_M on a 2-layer model: use_more_bits(i, 2) is true for layer 1 only,
#    so attn_v and ffn_down get Q6_K there and Q4_K in layer 0; output gets
#    Q6_K; norms stay f32; everything else Q4_K. general.file_type = 15.
"$INFERD_BIN" quantize "$src" "$tmp/m.gguf" Q4_K_M --quiet
"$INFERD_BIN" inspect --json "$tmp/m.gguf" | node -e '
  const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const want = (n) => n.endsWith("_norm.weight") ? "f32"
    : n === "output.weight" ? "q6_K"
    : /^blk\.1\.(attn_v|ffn_down)\./.test(n) ? "q6_K" : "q4_K";
  let bad = 0;
  for (const t of j.tensors)
    if (t.type !== want(t.name)) { console.error(`${t.name}: ${t.type}, expected ${want(t.name)}`); bad++; }
  const md = j.metadata;
  const get = (k) => { const e = Array.isArray(md) ? md.find((m) => m.key === k) : null;
                       return e ? e.value : (md && md[k] !== undefined ? md[k] : undefined); };
  const ft = get("general.file_type"), qv = get("general.quantization_version");
  const num = (v) => (v && typeof v === "object" && "value" in v) ? v.value : v;
  if (num(ft) !== 15) { console.error(`general.file_type ${JSON.stringify(ft)}, expected 15`); bad++; }
  if (num(qv) !== 2) { console.error(`general.quantization_version ${JSON.stringify(qv)}, expected 2`); bad++; }
  process.exit(bad ? 1 : 0);' || fail "Q4_K_M types"
echo "Q4_K_M: per-tensor types as llama.cpp's rules"

# Re-quantizing a quantized file works (dequantize, then quantize).
"$INFERD_BIN" quantize "$BUILD/testdata/synth-tiny-Q8_0.gguf" "$tmp/r.gguf" Q4_0 --pure --quiet \
  || fail "Q8_0 -> Q4_0"

# 3. Errors.
set +e
"$INFERD_BIN" quantize --help > "$tmp/help"; rc=$?
[ $rc -eq 0 ] && grep -q -- '--pure' "$tmp/help" || fail "--help: exit $rc"
"$INFERD_BIN" quantize "$src" "$tmp/x.gguf" Q9_9 2> "$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "Q9_9" "$tmp/err" || fail "unknown type: exit $rc, $(cat "$tmp/err")"
"$INFERD_BIN" quantize "$src" "$tmp/x.gguf" 2> "$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "missing TYPE: exit $rc"
"$INFERD_BIN" quantize "$tmp/nonexistent.gguf" "$tmp/x.gguf" Q4_0 2> "$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "nonexistent" "$tmp/err" || fail "missing input: exit $rc, $(cat "$tmp/err")"
head -c 1000 "$src" > "$tmp/trunc.gguf"
"$INFERD_BIN" quantize "$tmp/trunc.gguf" "$tmp/x.gguf" Q4_0 2> "$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "truncated input: exit $rc"
[ ! -e "$tmp/x.gguf" ] || fail "an output was left behind after a failure"
"$INFERD_BIN" quantize "$src" "$tmp/nodir/x.gguf" Q4_0 --quiet 2> "$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "unwritable output: exit $rc"
set -e
echo "errors: exit codes and messages ok"
