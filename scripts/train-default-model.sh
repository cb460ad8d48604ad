#!/usr/bin/env bash
# Re-creates models/default.qisa, the bundled model: QISA v3 at the research
# configuration (n_embd 16, 1 head, 6 layers, ctx 16, batch 1024, AdamW lr
# 3e-3, dropout 0.2), 1,500 steps on tiny Shakespeare with the research
# split, seed 1337, 2 threads. About 6 minutes on 2 cores.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x build/trainer/qisa-train ] || { bash scripts/bootstrap && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2 --target qisa-train; }
build/trainer/qisa-train --attention qisa-v3 --n-embd 16 --n-head 1 --n-layer 6 --ctx 16 --batch 1024 \
  --lr 3e-3 --dropout 0.2 --steps 1500 --split research --seed 1337 --threads 2 --eval-every 100 \
  --out models/default.qisa --metrics models/default.metrics.json "$@"
