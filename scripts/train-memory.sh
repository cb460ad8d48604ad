#!/usr/bin/env bash
# Peak memory (max RSS) and speed of a few training steps of CSA, QISA v3
# and QSAT (top 8 + window 8) at long windows, with the long-context
# recipe's model (scripts/train-long-context.sh: BPE 1,024, n_embd 96,
# 4 layers, 1 head) and 4,096 tokens per step, one process, one thread.
# The trainer's attention is dense ([B, T, T] scores per head and layer);
# this shows what that costs as the window grows.
#   scripts/train-memory.sh [CTX...]        default: 256 512 1024
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
train=${QISA_TRAIN:-build/trainer/qisa-train}
[ -x "$train" ] || { echo "build first: scripts/test or cmake --build build" >&2; exit 2; }
ctxs=("$@")
[ ${#ctxs[@]} -gt 0 ] || ctxs=(256 512 1024)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '| ctx | attention | peak RSS (MiB) | training tokens/s |\n|---:|---|---:|---:|\n'
for ctx in "${ctxs[@]}"; do
  for kind in csa qisa-v3 qsat; do
    extra=()
    [ "$kind" = qsat ] && extra=(--qsat-top-k 8 --qsat-window 8)
    python3 - "$ctx" "$kind" "$tmp/m.json" "$train" --attention "$kind" "${extra[@]}" --tokenizer bpe \
      --vocab-size 1024 --n-embd 96 --n-layer 4 --n-head 1 --ctx "$ctx" --batch $((4096 / ctx)) --steps 6 \
      --threads 1 --split research --seed 1337 --eval-batch $((4096 / ctx)) --metrics "$tmp/m.json" --out "$tmp/m.qisa" --quiet <<'PY'
import json, resource, subprocess, sys
ctx, kind, metrics, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
run = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if run.returncode:
    sys.exit(run.stderr)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
print(f"| {ctx} | {kind} | {rss:.0f} | {json.load(open(metrics))['tokens_per_second']:.0f} |")
PY
  done
done
