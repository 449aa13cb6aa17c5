#!/usr/bin/env bash
# scripts/bench_engine.sh BUILD_DIR - the engine's batching table of
# `make bench` (called by scripts/bench.sh when present).
#
# For each model (bench-110m Q8_0, bench-1b Q4_0, made in BUILD_DIR/models/
# like scripts/bench.sh does when missing) and each concurrency C: C
# requests of 128 prompt tokens (unique random ids, so no prefix is shared)
# and 64 generated tokens each (ignore_eos, greedy) go through
# `inferd generate --batch` with --max-num-seqs C, 2 threads. Reported:
# aggregate generated tokens/s (wall time, prefill included), decode tokens/s
# while all C sequences run, both speed-ups over C = 1, and llama.cpp's
# llama-batched-bench decode figure at the same C (docs/performance.md).
# Each configuration runs BENCH_ENGINE_REPS times, in rounds; the table has
# the medians.
#
# Environment: BENCH_THREADS (2), BENCH_ENGINE_MODELS ("bench-110m:Q8_0
# bench-1b:Q4_0"), BENCH_ENGINE_CONC ("1 4 16 32 64"), BENCH_PROMPT (128),
# BENCH_GEN (64), BENCH_ENGINE_REPS (3).
set -euo pipefail
build=${1:?usage: scripts/bench_engine.sh BUILD_DIR}
bin=$build/inferd
threads=${BENCH_THREADS:-2}
models=${BENCH_ENGINE_MODELS:-bench-110m:Q8_0 bench-1b:Q4_0}
conc=${BENCH_ENGINE_CONC:-1 4 16 32 64}
npp=${BENCH_PROMPT:-128}
ntg=${BENCH_GEN:-64}
reps=${BENCH_ENGINE_REPS:-3}
vocab=tests/data/vocab/ggml-vocab-llama-spm.gguf
mdir=$build/models
out=$build/bench
mkdir -p "$mdir" "$out"
: >"$out/engine.jsonl"

shape() {
  case "$1" in
    bench-110m) echo "--n-embd 768 --n-ff 2048 --n-layer 12 --n-head 12 --n-head-kv 12 --ctx 2048" ;;
    bench-1b) echo "--n-embd 2048 --n-ff 5632 --n-layer 22 --n-head 32 --n-head-kv 4 --ctx 4096" ;;
    *) echo "bench_engine.sh: unknown model $1" >&2; exit 2 ;;
  esac
}

# llama-batched-bench -npp 128 -ntg 64 -t 2, decode t/s summed over the
# sequences, on this machine class (docs/performance.md). 64 was not run.
llama_batched() {
  case "$1 $2" in
    "bench-110m 1") echo 142 ;; "bench-110m 4") echo 195 ;; "bench-110m 16") echo 242 ;;
    "bench-110m 32") echo 176 ;; "bench-1b 1") echo 45 ;; "bench-1b 4") echo 65 ;;
    "bench-1b 16") echo 56 ;; "bench-1b 32") echo 34 ;; *) echo - ;;
  esac
}

model_file() {
  local name=$1 type=$2 f16=$mdir/$1-F16.gguf f=$mdir/$1-$2.gguf
  if [ -s "$f" ]; then echo "$f"; return; fi
  if [ ! -s "$f16" ]; then
    echo "bench_engine: synth $f16" >&2
    # shellcheck disable=SC2046
    "$bin" synth --vocab "$vocab" --out "$f16" $(shape "$name") --type f16 --seed 1 >&2
  fi
  echo "bench_engine: quantize $f" >&2
  "$bin" quantize "$f16" "$f" "$type" --quiet >&2
  echo "$f"
}

# Rounds: every concurrency once per round, so that a drift of the machine's
# load between the runs hits all of them alike; medians over the rounds.
for ((rep = 1; rep <= reps; rep++)); do
for mt in $models; do
  m=${mt%%:*} t=${mt#*:}
  f=$(model_file "$m" "$t")
  for c in $conc; do
    in=$out/engine-$m-$c.jsonl
    node -e '
      const [c, npp, ntg] = process.argv.slice(1).map(Number);
      let s = 12345 + c, lines = [];
      const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648);
      for (let i = 0; i < c; i++) {
        const ids = [1];
        while (ids.length < npp) ids.push(3 + rnd() % 31000);
        lines.push(JSON.stringify({prompt: ids, max_tokens: ntg, temperature: 0, ignore_eos: true}));
      }
      process.stdout.write(lines.join("\n") + "\n");
    ' "$c" "$npp" "$ntg" >"$in"
    echo "bench_engine: round $rep/$reps: $m $t, $c concurrent x ($npp prompt + $ntg generated), $threads threads" >&2
    if ! err=$("$bin" generate --model "$f" --batch "$in" --out /dev/null --threads "$threads" \
          --max-num-seqs "$c" --max-model-len $((npp + ntg)) 2>&1 >/dev/null); then
      echo "bench_engine: generate failed on $f: $err" >&2; exit 1
    fi
    agg=$(sed -n 's/.* \([0-9.]*\) generated tokens\/s$/\1/p' <<<"$err" | head -n 1)
    dec=$(sed -n 's/.*running: \([0-9.]*\) generated tokens\/s.*/\1/p' <<<"$err" | head -n 1)
    printf '{"model":"%s","type":"%s","c":%s,"rep":%s,"aggregate":%s,"decode":%s,"llama":"%s"}\n' \
      "$m" "$t" "$c" "$rep" "${agg:-0}" "${dec:-0}" "$(llama_batched "$m" "$c")" >>"$out/engine.jsonl"
  done
done
done

node -e '
  const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(l => JSON.parse(l));
  const med = a => { const b = [...a].sort((x, y) => x - y), n = b.length;
                     return n % 2 ? b[(n - 1) / 2] : (b[n / 2 - 1] + b[n / 2]) / 2; };
  const rows = [];
  runs.forEach(r => {
    let g = rows.find(x => x.model === r.model && x.c === r.c);
    if (!g) rows.push(g = {model: r.model, type: r.type, c: r.c, llama: r.llama, agg: [], dec: []});
    g.agg.push(r.aggregate); g.dec.push(r.decode);
  });
  rows.forEach(g => { g.aggregate = med(g.agg); g.decode = med(g.dec); });
  const one = {};
  rows.forEach(r => { if (r.c === 1) one[r.model] = r; });
  const ratio = (x, y) => y ? (x / y).toFixed(2) + "x" : "-";
  const hdr = ["model", "type", "concurrent", "aggregate t/s", "aggregate vs 1", "decode t/s", "decode vs 1",
               "llama batched decode", "vs llama"];
  const lines = rows.map(r => [r.model, r.type, r.c, r.aggregate.toFixed(1),
    one[r.model] ? ratio(r.aggregate, one[r.model].aggregate) : "-", r.decode.toFixed(1),
    one[r.model] ? ratio(r.decode, one[r.model].decode) : "-", r.llama,
    r.llama === "-" ? "-" : ratio(r.decode, parseFloat(r.llama))]);
  const all = [hdr, ...lines];
  const w = hdr.map((_, i) => Math.max(...all.map(l => String(l[i]).length)));
  const put = l => console.log("| " + l.map((c, i) => String(c).padEnd(w[i])).join(" | ") + " |");
  console.log("Engine: continuous batching, " + process.argv[2] + " threads, prompts of " + process.argv[3] +
              " tokens, " + process.argv[4] + " generated each; medians of " + process.argv[5] + " rounds");
  put(hdr);
  console.log("|" + w.map(n => "-".repeat(n + 2)).join("|") + "|");
  lines.forEach(put);
' "$out/engine.jsonl" "$threads" "$npp" "$ntg" "$reps"
