#!/usr/bin/env bash
# The bundled default model, two recipes:
#
#   scripts/train-default-model.sh [--research] [qisa-train flags]
#
# default: the bundled model (issue #18): causal QISA v3, byte-level BPE
#   (1,024 tokens learned on the training part), n_embd 96, 4 layers, 1 head,
#   a window of 128 tokens, AdamW lr 2e-3 with 100 warm-up steps and a cosine
#   decay to 1e-4, weight decay 0.1, dropout 0.3, two data-parallel ranks x
#   batch 16 windows (scripts/train-distributed), 5,000 steps, trained on the
#   first 96% of tiny Shakespeare: everything except the research split's
#   test part (its last 4%), on which it is evaluated. About 30 minutes on
#   this 2-core machine; it checkpoints into out/default-model/ckpt every 250
#   steps and resumes from there when run again (Ctrl-C saves a checkpoint).
#   At the end it writes out/default-model/model.qisa (f32), its metrics, the
#   stored form (f16 weights and unitaries), a q8 copy and their comparison on the
#   research test part; `--install` then copies the stored form and its
#   metrics to models/.
#     scripts/train-default-model.sh             (STEPS=N overrides the 5,000 steps)
#     scripts/train-default-model.sh --install   copy the finished model
#
# --research: the previously bundled model, QISA v3 at the research
#   configuration (n_embd 16, 1 head, 6 layers, ctx 16, batch 1024, lr 3e-3,
#   dropout 0.2), 1,500 steps, seed 1337, 2 threads: about 12 minutes; writes
#   out/research-model/model.qisa and its metrics.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x build/trainer/qisa-train ] || { bash scripts/bootstrap && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2 --target qisa-train qisa-quantize qisa-eval; }

if [ "${1:-}" = --research ]; then
  shift
  mkdir -p out/research-model
  exec build/trainer/qisa-train --attention qisa-v3 --n-embd 16 --n-head 1 --n-layer 6 --ctx 16 --batch 1024 \
    --lr 3e-3 --dropout 0.2 --steps 1500 --split research --seed 1337 --threads 2 --eval-every 100 \
    --out out/research-model/model.qisa --metrics out/research-model/model.metrics.json "$@"
fi

out=out/default-model
mkdir -p "$out"
if [ "${1:-}" = --install ]; then
  [ -f "$out/model.f16.qisa" ] || { echo "train-default-model: no finished model in $out" >&2; exit 2; }
  cp "$out/model.f16.qisa" models/default.qisa
  # The trainer's metrics (f32, its own test part) with qisa-eval's of the
  # stored f16 file on the research split's test part.
  python3 - "$out/model.metrics.json" "$out/eval.json" models/default.metrics.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
stored = [e for e in json.load(open(sys.argv[2])) if e["model"] == "model.f16.qisa"][0]
m["recipe"] = "scripts/train-default-model.sh"
m["stored"] = dict(stored, model="default.qisa", split="research (test: the last 4% of the tokens)")
json.dump(m, open(sys.argv[3], "w"), indent=1)
open(sys.argv[3], "a").write("\n")
PY
  echo "installed $out/model.f16.qisa as models/default.qisa"
  exit 0
fi
steps=${STEPS:-5000}
resume=()
[ -f "$out/ckpt/state.txt" ] && resume=(--resume)
scripts/train-distributed -n 2 --attention qisa-v3 --tokenizer bpe --vocab-size 1024 --n-embd 96 --n-layer 4 \
  --n-head 1 --ctx 128 --batch 16 --lr 2e-3 --lr-schedule cosine --min-lr 1e-4 --warmup 100 --weight-decay 0.1 \
  --dropout 0.3 --steps "$steps" --split 0.96 --seed 1337 --eval-every 250 --eval-windows 128 --save-every 250 \
  --checkpoint "$out/ckpt" "${resume[@]}" --log "$out/log.csv" --metrics "$out/model.metrics.json" \
  --out "$out/model.qisa" "$@"
build/tools/qisa-quantize/qisa-quantize "$out/model.qisa" "$out/model.f16.qisa" --all f16
build/tools/qisa-quantize/qisa-quantize "$out/model.qisa" "$out/model.q8.qisa" --weights q8 --unitaries q8
# The research split's test part (the last 4%): the same tokens as the
# training run's own test part, named explicitly.
build/tools/qisa-eval/qisa-eval "$out/model.qisa" "$out/model.f16.qisa" "$out/model.q8.qisa" --split research \
  --threads 1 --json "$out/eval.json"
ls -l "$out"
