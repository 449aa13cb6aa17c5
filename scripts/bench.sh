#!/usr/bin/env bash
# scripts/bench.sh BUILD_DIR - the performance table of `make bench`.
#
# Makes the benchmark models with `inferd synth` (F16) and `inferd quantize`
# (Q8_0, Q4_0, Q4_K_M) into BUILD_DIR/models/ (reused when present), runs
# `inferd bench --json` on each (pp512, tg128, BENCH_REPS repetitions, 2
# threads), and prints one table with llama.cpp's figures on this machine
# class (docs/performance.md) and our ratio to them. Each run's JSON goes to
# BUILD_DIR/bench/kernels.jsonl. Then the tokenizer and engine benchmarks,
# when their scripts exist.
#
# Environment: BENCH_REPS (5), BENCH_THREADS (2), BENCH_MODELS ("bench-110m
# bench-1b"), BENCH_TYPES ("F16 Q8_0 Q4_0 Q4_K_M"), BENCH_PP (512), BENCH_TG (128).
set -euo pipefail
build=${1:?usage: scripts/bench.sh BUILD_DIR}
bin=$build/inferd
reps=${BENCH_REPS:-5}
threads=${BENCH_THREADS:-2}
pp=${BENCH_PP:-512}
tg=${BENCH_TG:-128}
models=${BENCH_MODELS:-bench-110m bench-1b}
types=${BENCH_TYPES:-F16 Q8_0 Q4_0 Q4_K_M}
vocab=tests/data/vocab/ggml-vocab-llama-spm.gguf
mdir=$build/models
out=$build/bench
mkdir -p "$mdir" "$out"
: >"$out/kernels.jsonl"

shape() {
  case "$1" in
    bench-110m) echo "--n-embd 768 --n-ff 2048 --n-layer 12 --n-head 12 --n-head-kv 12 --ctx 2048" ;;
    bench-1b) echo "--n-embd 2048 --n-ff 5632 --n-layer 22 --n-head 32 --n-head-kv 4 --ctx 4096" ;;
    *) echo "bench.sh: unknown model $1" >&2; exit 2 ;;
  esac
}

# llama.cpp (c392e509, llama-bench -t 2 -r 5) on this machine class: pp512 and
# tg128 t/s, the quieter of two runs (see docs/performance.md).
llama_ref() {
  case "$1 $2" in
    "bench-110m F16") echo "725 120" ;;
    "bench-110m Q8_0") echo "726 172" ;;
    "bench-110m Q4_0") echo "833 311" ;;
    "bench-110m Q4_K_M") echo "515 215" ;;
    "bench-1b F16") echo "77 16.5" ;;
    "bench-1b Q8_0") echo "87 25" ;;
    "bench-1b Q4_0") echo "95 46" ;;
    "bench-1b Q4_K_M") echo "59 36.5" ;;
    *) echo "- -" ;;
  esac
}

model_file() {
  local name=$1 type=$2 f16=$mdir/$1-F16.gguf f=$mdir/$1-$2.gguf
  if [ ! -s "$f16" ]; then
    echo "bench: synth $f16" >&2
    # shellcheck disable=SC2046
    "$bin" synth --vocab "$vocab" --out "$f16" $(shape "$name") --type f16 --seed 1 >&2
  fi
  if [ "$type" != F16 ] && [ ! -s "$f" ]; then
    echo "bench: quantize $f" >&2
    "$bin" quantize "$f16" "$f" "$type" --quiet >&2
  fi
  echo "$f"
}

for m in $models; do
  for t in $types; do
    f=$(model_file "$m" "$t")
    echo "bench: $m $t (pp$pp, tg$tg, $reps runs, $threads threads)" >&2
    if ! j=$("$bin" bench --model "$f" -p "$pp" -n "$tg" -r "$reps" --threads "$threads" --json); then
      echo "bench: inferd bench failed on $f" >&2; exit 1
    fi
    ref=$(llama_ref "$m" "$t")
    printf '{"name":"%s","quant":"%s","llama_pp":"%s","llama_tg":"%s","run":%s}\n' \
      "$m" "$t" "${ref% *}" "${ref#* }" "$j" >>"$out/kernels.jsonl"
  done
done

node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(l => JSON.parse(l));
  const pp = process.argv[2], tg = process.argv[3];
  const hdr = ["model", "type", "size", "pp" + pp + " t/s", "tg" + tg + " t/s", "% of bw", "llama pp", "llama tg",
               "pp ratio", "tg ratio", "RSS/(model+KV)"];
  const fmt = (v, d) => (typeof v === "number" && isFinite(v)) ? v.toFixed(d) : "-";
  const lines = rows.map(r => {
    const j = r.run, lp = parseFloat(r.llama_pp), lt = parseFloat(r.llama_tg);
    return [r.name, r.quant, (j.size_bytes / 1048576).toFixed(0) + " MiB", fmt(j.pp_tokens_per_s, 1),
            fmt(j.tg_tokens_per_s, 1), fmt(100 * j.tg_bandwidth_fraction, 0) + "%", r.llama_pp, r.llama_tg,
            fmt(j.pp_tokens_per_s / lp, 2) + "x", fmt(j.tg_tokens_per_s / lt, 2) + "x",
            fmt(j.max_rss_bytes / (j.size_bytes + j.kv_bytes), 3)];
  });
  const all = [hdr, ...lines];
  const w = hdr.map((_, i) => Math.max(...all.map(l => String(l[i]).length)));
  const put = l => console.log("| " + l.map((c, i) => String(c).padEnd(w[i])).join(" | ") + " |");
  put(hdr);
  console.log("|" + w.map(n => "-".repeat(n + 2)).join("|") + "|");
  lines.forEach(put);
  const bw = rows.map(r => r.run.read_bandwidth_bytes_per_s / 1e9);
  console.log("\nmeasured read bandwidth per run (GB/s): " + bw.map(b => b.toFixed(1)).join(" "));
' "$out/kernels.jsonl" "$pp" "$tg"

for s in scripts/bench_tokenizer.sh scripts/bench_engine.sh; do
  if [ -x "$s" ]; then
    echo
    "$s" "$build"
  fi
done
