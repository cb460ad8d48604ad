#!/usr/bin/env bash
# Re-runs the trainer's documented experiments (README, "Training results"):
# CSA, QISA v3 and QISA v3 with --reference-transpose at the research
# configuration (n_embd 16, 1 head, 6 layers, ctx 16, batch 1024, lr 3e-3,
# dropout 0.2, 1,500 steps), then CSA and QISA v3 at the research README's
# Figure-2 configuration (n_embd 128 = 7 qubits, 1 head, ctx 16, batch 128,
# 1 epoch; FIG2_EPOCHS=0.25 for a quarter). Results (metrics JSON, CSV loss logs, models) go to out/runs/.
#   scripts/research-runs.sh [research|figure2|all]   (default all)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
train="$top/build/trainer/qisa-train"
out="$top/out/runs"
mkdir -p "$out"
which=${1:-all}
run() {
  local name=$1; shift
  echo "== $name: qisa-train $*"
  "$train" "$@" --threads 2 --seed 1337 --log "$out/$name.csv" --metrics "$out/$name.json" \
    --out "$out/$name.qisa" --quiet 2>&1 | tee "$out/$name.txt"
}
if [ "$which" = research ] || [ "$which" = all ]; then
  run research-csa --attention csa --steps 1500 --eval-every 100
  run research-qisa-v3 --attention qisa-v3 --steps 1500 --eval-every 100 --export-golden
  run research-qisa-v3-transposed --attention qisa-v3 --reference-transpose --steps 1500 --eval-every 100
fi
if [ "$which" = figure2 ] || [ "$which" = all ]; then
  run figure2-csa --attention csa --n-embd 128 --batch 128 --epochs "${FIG2_EPOCHS:-1}" --eval-every 250
  run figure2-qisa-v3 --attention qisa-v3 --n-embd 128 --batch 128 --epochs "${FIG2_EPOCHS:-1}" --eval-every 250
fi
