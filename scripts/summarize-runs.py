#!/usr/bin/env python3
"""Prints a markdown table of the qisa-train metrics JSON files given (or
out/runs/*.json): one row per run, all-position and last-position metrics."""
import glob
import json
import os
import sys

paths = sys.argv[1:] or sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "out", "runs", "*.json")))
print("| run | attention | n_embd | batch | steps | wall time | tokens/s | CE all | CE last | ppl all | "
      "acc all | acc last | CER | WER | BLEU | ms/batch |")
print("|" + "---|" * 16)
for p in paths:
    with open(p) as f:
        r = json.load(f)
    t = r["test"]
    name = os.path.splitext(os.path.basename(p))[0]
    att = r["attention"] + (" (transposed)" if r.get("reference_transpose") else "")
    m, s = divmod(int(round(r["train_seconds"])), 60)
    print(f"| {name} | {att} | {r['n_embd']} | {r['batch']} | {r['steps']} | {m}m{s:02d}s | "
          f"{r['tokens_per_second']:.0f} | {t['cross_entropy']:.3f} | {t['cross_entropy_last']:.3f} | "
          f"{t['perplexity']:.2f} | {t['accuracy']:.3f} | {t['accuracy_last']:.3f} | {t['cer']:.3f} | "
          f"{t['wer']:.3f} | {t['bleu']:.4f} | {t['ms_per_batch']:.1f} |")
