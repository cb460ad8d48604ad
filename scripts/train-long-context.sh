#!/usr/bin/env bash
# Issue #17's comparison at long windows: CSA, dense QISA v3 and QSAT at
# three sparsity levels with the same data, model size, steps, seed and
# recipe as the 128-token table of docs/training-results.md (byte-level BPE
# 1,024, n_embd 96, 4 layers, 1 head, research split, two data-parallel
# ranks, AdamW lr 2e-3, 100 warm-up steps, cosine to 1e-4, weight decay 0.1,
# dropout 0.3, seed 1337), the same tokens per step at every window
# (2 ranks x 4,096 / CTX windows x CTX). Then, per model, libqisa's decode
# step by position and its batch-64 throughput (1 thread), and the table
# out/long-context/ctxCTX/table.md.
#
#   scripts/train-long-context.sh [CTX [RUN...]]   CTX: 256 (default), 512, 1024
#
# Runs (default all): csa qisa-v3 qsat-8-8 qsat-32-32 qsat-32-0, where
# qsat-K-W keeps each query's K nearest keys and its W most recent
# positions. STEPS=N overrides the 1,000 steps. Each run checkpoints every
# 250 steps and resumes when run again; a finished run is not repeated.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
ctx=${1:-256}
shift || true
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(csa qisa-v3 qsat-8-8 qsat-32-32 qsat-32-0)
steps=${STEPS:-1000}
batch=$((4096 / ctx))
[ "$batch" -ge 1 ] || { echo "train-long-context: CTX must be at most 4096" >&2; exit 2; }
out=out/long-context/ctx$ctx
mkdir -p "$out"
for t in qisa-train; do [ -x build/trainer/$t ] || { echo "build first: scripts/test or cmake --build build" >&2; exit 2; }; done

for run in "${runs[@]}"; do
  case $run in
    csa | qisa-v3) kind=(--attention "$run") ;;
    qsat-*-*) IFS=- read -r _ k w <<< "$run"; kind=(--attention qsat --qsat-top-k "$k" --qsat-window "$w") ;;
    *) echo "train-long-context: unknown run '$run'" >&2; exit 2 ;;
  esac
  dir=$out/$run
  mkdir -p "$dir"
  if [ ! -f "$dir/model.qisa" ]; then
    resume=()
    [ -f "$dir/ckpt/state.txt" ] && resume=(--resume)
    echo "== ctx $ctx $run: ${kind[*]}"
    scripts/train-distributed -n 2 "${kind[@]}" --tokenizer bpe --vocab-size 1024 --n-embd 96 --n-layer 4 --n-head 1 \
      --ctx "$ctx" --batch "$batch" --lr 2e-3 --lr-schedule cosine --min-lr 1e-4 --warmup 100 --weight-decay 0.1 \
      --dropout 0.3 --steps "$steps" --split research --seed 1337 --eval-every 250 --eval-windows 64 \
      --save-every 250 --checkpoint "$dir/ckpt" "${resume[@]}" --log "$dir/log.csv" --metrics "$dir/metrics.json" \
      --out "$dir/model.qisa" > "$dir/train.txt" 2>&1
  fi
  # libqisa on the stored model, one thread: a step at 9 positions of the
  # window, and 64 sequences advancing together.
  build/bench/decode_latency "$dir/model.qisa" --mode positions --threads 1 --steps 2000 > "$dir/positions.json"
  build/bench/decode_latency "$dir/model.qisa" --mode batch --batch 64 --threads 1 --steps 0 > "$dir/batch64.json"
done

python3 - "$out" "$ctx" <<'PY'
import json, os, sys
out, ctx = sys.argv[1], sys.argv[2]
rows = []
for run in sorted(os.listdir(out)):
    d = os.path.join(out, run)
    try:
        m = json.load(open(os.path.join(d, "metrics.json")))
        pos = json.load(open(os.path.join(d, "positions.json")))
        b64 = json.load(open(os.path.join(d, "batch64.json")))
    except (OSError, ValueError):
        continue
    t = m["test"]
    at = pos["p50_us_at"]
    first, last = at[min(at, key=int)], at[max(at, key=int)]
    rows.append((run, t["cross_entropy"], t.get("cross_entropy_per_char", float("nan")), t["perplexity"],
                 t["accuracy"], m["tokens_per_second"], first, last, b64["tokens_per_s"]))
with open(os.path.join(out, "table.md"), "w") as f:
    f.write(f"| run (ctx {ctx}) | CE / token | CE / char | perplexity | top-1 | training tokens/s | "
            "decode step at position 0 (µs) | at the last position (µs) | batch-64 tokens/s |\n")
    f.write("|" + "---|" * 9 + "\n")
    for r in rows:
        f.write(f"| {r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.1f} | {r[4]:.3f} | {r[5]:.0f} | {r[6]:.1f} | "
                f"{r[7]:.1f} | {r[8]:.0f} |\n")
print(open(os.path.join(out, "table.md")).read())
PY
