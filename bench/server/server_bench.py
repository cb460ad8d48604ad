#!/usr/bin/env python3
"""Load test for qisa-server: aggregate generated tokens/s and p50/p99
request latency at several numbers of concurrent clients, against the same
requests sent one after another. Starts the server itself on a free
loopback port and stops it at the end.

  bench/server/server_bench.py --server build/tools/qisa-server/qisa-server \\
      --model models/default.qisa [--clients 1,4,16,64] [--requests 64] \\
      [--max-tokens 64] [--parallel 64] [--threads 1] [--rounds 3] [--json OUT]
"""
import argparse
import json
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def post(port, body, timeout=600):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/completions" % port, data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def percentile(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def run(port, requests, clients):
    """Sends every request, `clients` at a time; returns wall time, tokens, latencies and texts."""
    latencies = [0.0] * len(requests)
    tokens = [0] * len(requests)
    texts = [None] * len(requests)
    next_index = [0]
    lock = threading.Lock()
    failures = []

    def worker():
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(requests):
                return
            t0 = time.perf_counter()
            try:
                body = post(port, requests[i])
            except Exception as e:  # counted, reported, and the run fails
                failures.append(repr(e))
                return
            latencies[i] = time.perf_counter() - t0
            tokens[i] = body["usage"]["completion_tokens"]
            texts[i] = body["choices"][0]["text"]

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise RuntimeError("%d requests failed: %s" % (len(failures), failures[0]))
    return wall, sum(tokens), latencies, texts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--parallel", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="runs per level; the median run is reported")
    ap.add_argument("--json")
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    srv = subprocess.Popen([a.server, "-m", a.model, "--port", "0", "--parallel", str(a.parallel), "--threads",
                            str(a.threads), "--max-queue", str(4 * a.requests), "--lifetime", "3600", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        port = int(line.strip().rsplit(":", 1)[1])
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5)
                break
            except Exception:
                time.sleep(0.05)
        info = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/v1/models" % port).read())["data"][0]["meta"]
        rng = random.Random(1)
        # Prompts as token ids (any vocabulary), 8 to 32 tokens; each request
        # generates exactly max_tokens (no stop strings; the models have no EOS).
        requests = [dict(prompt=[rng.randrange(info["vocab_size"]) for _ in range(rng.randint(8, 32))],
                         max_tokens=a.max_tokens, seed=i, temperature=0.8) for i in range(a.requests)]
        run(port, requests[:4], 4)  # warm up
        rows = []
        baseline_texts = None
        levels = [1] + [int(x) for x in a.clients.split(",") if int(x) != 1]
        runs = {c: [] for c in levels}
        for _ in range(a.rounds):  # levels interleaved, so machine noise spreads over all of them
            for c in levels:
                wall, toks, lat, texts = run(port, requests, c)
                if baseline_texts is None:
                    baseline_texts = texts
                same = sum(t == b for t, b in zip(texts, baseline_texts))
                runs[c].append(dict(clients=c, wall_s=wall, tokens=toks, tokens_per_s=toks / wall,
                                    p50_s=percentile(lat, 0.5), p99_s=percentile(lat, 0.99), same_text=same))
        for c in levels:
            ordered = sorted(runs[c], key=lambda r: r["tokens_per_s"])
            row = dict(ordered[len(ordered) // 2])
            row["tokens_per_s_all"] = [r["tokens_per_s"] for r in runs[c]]
            row["same_text"] = min(r["same_text"] for r in runs[c])
            rows.append(row)
        base = rows[0]["tokens_per_s"]
        name = a.label or a.model
        print("%s: n_embd %d, n_layer %d, n_ctx %d; %d requests x %d tokens, --parallel %d, --threads %d; "
              "median of %d rounds" % (name, info["n_embd"], info["n_layer"], info["n_ctx"], a.requests, a.max_tokens,
                                       a.parallel, a.threads, a.rounds))
        print("| clients | tokens/s | vs one after another | p50 latency | p99 latency | same text as sequential (all rounds) |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            r["speedup"] = r["tokens_per_s"] / base
            print("| %d | %.0f | %.2f× | %.3f s | %.3f s | %d/%d |" % (r["clients"], r["tokens_per_s"], r["speedup"],
                                                                    r["p50_s"], r["p99_s"], r["same_text"],
                                                                    a.requests))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(dict(model=name, meta=info, requests=a.requests, max_tokens=a.max_tokens,
                               parallel=a.parallel, threads=a.threads, rows=rows), f, indent=1)
    finally:
        srv.terminate()
        srv.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
