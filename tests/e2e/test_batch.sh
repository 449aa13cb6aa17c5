#!/usr/bin/env bash
# End-to-end: `inferd generate --batch` (offline batch, vLLM's LLM.generate)
# on stories260K. Every greedy reference row in one batch gives llama.cpp's
# text, one OpenAI completion object per line in input order; seeded n = 2
# choices repeat; stop strings; the summary; bad lines exit 1 naming the line.
set -euo pipefail
bin=${INFERD_BIN:-build/inferd}
m=models/stories260K.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# All greedy rows in one file (reverse order, so batch order != file order
# of the references), f32 KV as the references.
node -e '
const fs = require("fs");
const rows = fs.readFileSync("tests/data/greedy/stories260K_greedy.jsonl", "utf8").trim().split("\n").map(JSON.parse).reverse();
fs.writeFileSync(process.argv[1], rows.map(r => JSON.stringify({prompt: r.prompt, max_tokens: r.ids.length, temperature: 0})).join("\n") + "\n");
fs.writeFileSync(process.argv[2], JSON.stringify(rows.map(r => r.text_hex)));
' "$tmp/in.jsonl" "$tmp/want.json"
"$bin" generate --model "$m" --batch "$tmp/in.jsonl" --out "$tmp/out.jsonl" --kv-type f32 \
  --threads 2 2>"$tmp/err" || fail "batch run: $(cat "$tmp/err")"
grep -Eq "generate: 30 requests \(30 choices\), [0-9]+ prompt tokens, 1440 generated tokens, [0-9.]+ s, [0-9.]+ generated tokens/s" "$tmp/err" \
  || fail "summary: $(cat "$tmp/err")"
node -e '
const fs = require("fs");
const want = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const got = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
if (got.length !== want.length) { console.error(`${got.length} lines, want ${want.length}`); process.exit(1); }
let bad = 0;
got.forEach((o, i) => {
  const ok = o.object === "text_completion" && o.id && o.model === "stories260K" && o.created > 0 &&
    o.choices.length === 1 && o.choices[0].index === 0 && o.choices[0].finish_reason === "length" &&
    Buffer.from(o.choices[0].text, "utf8").toString("hex") === want[i] &&
    o.usage.completion_tokens === 48 && o.usage.total_tokens === o.usage.prompt_tokens + 48;
  if (!ok) { console.error(`line ${i + 1}: ${JSON.stringify(o)}`); bad++; }
});
process.exit(bad ? 1 : 0);
' "$tmp/out.jsonl" "$tmp/want.json" || fail "batch output differs from the references"

# Seeded n = 2 repeats; stop strings cut the text; stdout when no --out.
cat >"$tmp/s.jsonl" <<'JSON'
{"prompt": "The little dog", "max_tokens": 12, "temperature": 0.8, "top_p": 0.9, "n": 2, "seed": 5}
{"prompt": "Once upon a time", "max_tokens": 48, "temperature": 0, "stop": ["girl n", "zzz"]}
{"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0, "stop": "never"}
JSON
a=$("$bin" generate --model "$m" --batch "$tmp/s.jsonl" 2>/dev/null | sed 's/"created":[0-9]*//')
b=$(INFERD_BATCH="$tmp/s.jsonl" "$bin" generate --model "$m" 2>/dev/null | sed 's/"created":[0-9]*//')
[ "$a" = "$b" ] || fail "seeded batch differs between runs"
[ "$(wc -l <<<"$a")" -eq 3 ] || fail "want 3 lines: $a"
sed -n 1p <<<"$a" | grep -q '"index":1' || fail "n=2: no second choice"
sed -n 2p <<<"$a" | grep -q '"text":", there was a little ","logprobs":null,"finish_reason":"stop"' \
  || fail "stop string: $(sed -n 2p <<<"$a")"
sed -n 3p <<<"$a" | grep -q '"finish_reason":"length"' || fail "max_tokens 5"

# Bad lines: exit 1 with the file and line number; nothing runs.
set +e
printf '{"prompt":"a"}\n\n{"prompt":"b","max_token":3}\n' >"$tmp/bad.jsonl"
"$bin" generate --model "$m" --batch "$tmp/bad.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q 'bad.jsonl:3: unknown field "max_token"' "$tmp/err" || fail "unknown field: rc $rc $(cat "$tmp/err")"
printf '{"prompt":"a"}\nnot json\n' >"$tmp/bad.jsonl"
"$bin" generate --model "$m" --batch "$tmp/bad.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q 'bad.jsonl:2: bad JSON' "$tmp/err" || fail "bad JSON: rc $rc $(cat "$tmp/err")"
printf '{"prompt":"a","temperature":-1}\n' >"$tmp/bad.jsonl"
"$bin" generate --model "$m" --batch "$tmp/bad.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q 'bad.jsonl:1: "temperature" is -1' "$tmp/err" || fail "temperature: rc $rc $(cat "$tmp/err")"
printf '{"prompt":"a","max_tokens":5000}\n' >"$tmp/bad.jsonl"
"$bin" generate --model "$m" --batch "$tmp/bad.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q 'bad.jsonl:1: .*exceeds max_model_len 2048' "$tmp/err" || fail "too long: rc $rc $(cat "$tmp/err")"
"$bin" generate --model "$m" --batch "$tmp/none.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "cannot open" "$tmp/err" || fail "missing file: rc $rc"
"$bin" generate --model "$m" --batch "$tmp/s.jsonl" --prompt x >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] || fail "--batch with --prompt: rc $rc"
set -e
echo "batch: ok"
