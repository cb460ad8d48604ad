#!/usr/bin/env bash
# Regenerates tests/fixtures/: one tiny trained model per attention kind
# (n_embd 16, 2 layers, 2 heads, 40 steps; QSAT keeps 3 + 2 positions) with its dense observables, and
# the trainer's eval-mode logits for a fixed prompt (.golden), and the same
# for transposed-attention CSA and QISA v3 models. The runtime's
# golden tests compare against these, so they never need LibTorch.
# Needs the trainer: build with scripts/test or cmake first.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
train="$top/build/trainer/qisa-train"
out="$top/tests/fixtures"
mkdir -p "$out"
for kind in csa qisa-v1 qisa-v2 qisa-v3 qsat; do
  sparse=()  # QSAT: 3 nearest keys and the 2 most recent of up to 16 positions
  [ "$kind" = qsat ] && sparse=(--qsat-top-k 3 --qsat-window 2)
  "$train" --attention "$kind" "${sparse[@]}" --n-embd 16 --n-layer 2 --n-head 2 --ctx 16 --batch 64 --steps 40 \
    --eval-every 40 --eval-windows 8 --eval-batch 256 --seed 7 --threads 1 --observables --export-golden \
    --out "$out/tiny-$kind.qisa" --quiet > /dev/null
done
# The research code's transposed (future-reading) attention, which only
# qisa_evaluate_window runs: the trainer's logits of whole windows.
for kind in csa qisa-v3; do
  "$train" --attention "$kind" --n-embd 16 --n-layer 2 --n-head 2 --ctx 16 --batch 64 --steps 40 \
    --eval-every 40 --eval-windows 8 --eval-batch 256 --seed 7 --threads 1 --reference-transpose --export-golden \
    --out "$out/tiny-$kind-transposed.qisa" --quiet > /dev/null
done
# Byte-level BPE (384 tokens learned on the training part): the trainer's
# logits, and the tokenizer table tests/tokenizer checks independently.
"$train" --attention qisa-v3 --tokenizer bpe --vocab-size 384 --n-embd 16 --n-layer 2 --n-head 2 --ctx 16 \
  --batch 64 --steps 40 --eval-every 40 --eval-windows 8 --eval-batch 256 --seed 7 --threads 1 --export-golden \
  --out "$out/tiny-qisa-v3-bpe.qisa" --quiet > /dev/null
ls -l "$out"
