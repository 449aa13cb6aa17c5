#!/usr/bin/env bash
# End-to-end: `inferd synth` writes a llama GGUF with the vocabulary file's
# tokenizer metadata, the requested shape and type, the same bytes for the
# same seed whatever the thread count, other bytes for another seed; weights
# have the requested spread; bad arguments exit 2, a bad vocabulary exits 1.
set -euo pipefail
bin=${INFERD_BIN:-build/inferd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json() {
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
           if (!eval(process.argv[2])) { console.error("false: " + process.argv[2]); process.exit(1); }' "$1" "$2" \
    || fail "JSON check '$2' on $1"
}
vocab=tests/data/vocab/ggml-vocab-llama-spm.gguf
shape=(--n-embd 64 --n-ff 256 --n-layer 2 --n-head 4 --n-head-kv 2 --ctx 128)

"$bin" synth --vocab "$vocab" --out "$tmp/a.gguf" "${shape[@]}" --threads 1 || fail "synth f16"
"$bin" inspect --json "$tmp/a.gguf" >"$tmp/a.json" || fail "inspect"
json "$tmp/a.json" 'j.n_tensors === 3 + 9 * 2'
json "$tmp/a.json" 'j.metadata["general.architecture"].value === "llama"'
json "$tmp/a.json" 'j.metadata["llama.block_count"].value === 2 && j.metadata["llama.attention.head_count_kv"].value === 2'
json "$tmp/a.json" 'j.metadata["llama.embedding_length"].value === 64 && j.metadata["llama.context_length"].value === 128'
json "$tmp/a.json" 'j.metadata["tokenizer.ggml.model"].value === "llama"'
json "$tmp/a.json" 'j.metadata["tokenizer.ggml.tokens"].n === 32000 && j.metadata["tokenizer.ggml.scores"].n === 32000'
json "$tmp/a.json" 'j.tensors.find(t => t.name === "blk.1.attn_k.weight").shape.join() === "64,32"'
json "$tmp/a.json" 'j.tensors.find(t => t.name === "output.weight").shape.join() === "64,32000"'
json "$tmp/a.json" 'j.tensors.find(t => t.name === "blk.0.ffn_down.weight").type === "f16"'
json "$tmp/a.json" 'j.tensors.find(t => t.name === "blk.0.ffn_norm.weight").type === "f32"'

# Same seed, other thread count: same bytes. Other seed: other bytes.
"$bin" synth --vocab "$vocab" --out "$tmp/b.gguf" "${shape[@]}" --threads 2 || fail "synth 2 threads"
cmp -s "$tmp/a.gguf" "$tmp/b.gguf" || fail "thread count changed the bytes"
"$bin" synth --vocab "$vocab" --out "$tmp/c.gguf" "${shape[@]}" --seed 7 || fail "synth seed 7"
cmp -s "$tmp/a.gguf" "$tmp/c.gguf" && fail "seed did not change the bytes"

# Weight spread: f32 output, sample standard deviation of a matrix ~ 0.02,
# norms exactly 1 (read with the inspect offsets).
"$bin" synth --vocab "$vocab" --out "$tmp/f.gguf" "${shape[@]}" --type f32 || fail "synth f32"
"$bin" inspect --json "$tmp/f.gguf" >"$tmp/f.json"
node -e '
  const fs = require("fs");
  const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const buf = fs.readFileSync(process.argv[2]);
  const get = n => { const t = j.tensors.find(t => t.name === n);
    const off = j.data_offset + t.offset; return new Float32Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + t.size_bytes)); };
  const w = get("blk.0.ffn_up.weight"); let s = 0, s2 = 0;
  for (const v of w) { s += v; s2 += v * v; }
  const sd = Math.sqrt(s2 / w.length - (s / w.length) ** 2);
  if (!(sd > 0.019 && sd < 0.021) || Math.abs(s / w.length) > 0.001) { console.error("sd " + sd); process.exit(1); }
  if (!get("output_norm.weight").every(v => v === 1)) { console.error("norm not 1"); process.exit(1); }
' "$tmp/f.json" "$tmp/f.gguf" || fail "weight statistics"

# A quantized type.
"$bin" synth --vocab "$vocab" --out "$tmp/q.gguf" "${shape[@]}" --type q4_0 || fail "synth q4_0"
"$bin" inspect --json "$tmp/q.gguf" >"$tmp/q.json"
json "$tmp/q.json" 'j.tensors.find(t => t.name === "blk.0.attn_q.weight").type === "q4_0"'

# Usage errors exit 2, runtime errors 1.
set +e
"$bin" synth --vocab "$vocab" --out "$tmp/x.gguf" --n-embd 64 >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing flags: exit 2"
"$bin" synth --vocab "$vocab" --out "$tmp/x.gguf" "${shape[@]}" --type nope >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad type: exit 2"
"$bin" synth --vocab "$vocab" --out "$tmp/x.gguf" --n-embd 60 --n-ff 256 --n-layer 1 --n-head 4 --ctx 8 --type q4_0 2>"$tmp/err"; [ $? -eq 2 ] || fail "n_embd not a block multiple: exit 2"
grep -q "60" "$tmp/err" || fail "message names the value"
"$bin" synth --vocab "$tmp/none.gguf" --out "$tmp/x.gguf" "${shape[@]}" 2>/dev/null; [ $? -eq 1 ] || fail "missing vocab: exit 1"
"$bin" synth --help | grep -- "--n-head-kv" >/dev/null || fail "--help"
set -e
[ -e "$tmp/x.gguf" ] && fail "a failed synth left a file"
echo "synth: ok"
