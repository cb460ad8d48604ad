// Decode-step time of one model shape stored in several element types,
// taken in turns (a block of steps of each type per round) in one process,
// so the ratios do not carry the machine's drift between runs. The shape is
// BM_DecodeDtype's: random weights, 6 layers, one head, B streams with 8
// cached tokens advance one token each per call. Unitaries and observables
// are stored as the weights are, or as q8_0 where the weights' type cannot
// hold them (q4_0). Issue #23 asks q4_0 >= 1.5x q8_0 on single-stream
// decode at n_embd 768 and q8_0 >= 1.3x f32 for B = 64 at n_embd 512.
//   dtype_step_ratio [--kind qisa-v3|csa] [--n-embd 768] [--batch 1] [--rounds 20]
//                    [--steps 10] [--threads 1] [--types f32,q8_0,q4_0]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "bench_support.h"
#include "dtype.h"
#include "qisa.h"
#include "synthetic_model.h"

namespace {

using qisa::bench::ContextPtr;
using qisa::bench::median;
using qisa::bench::ModelPtr;

constexpr int kCached = 8;

struct Variant {
  qisa_dtype dtype;
  ModelPtr model;
  ContextPtr ctx;
  std::vector<double> us;  // per round: microseconds per step
};

ContextPtr make_context(qisa_model* m, int B, int threads) {
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.n_threads = threads;
  p.max_sequences = B;
  p.max_batch = B * kCached;
  p.backend = QISA_BACKEND_CPU;
  qisa_context* c = nullptr;
  if (qisa_context_create(m, &p, &c, nullptr, 0) != QISA_OK) return nullptr;
  std::vector<qisa_batch_entry> e;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < kCached; ++i) e.push_back({b, (b + i) % 60, 0});
  if (qisa_decode(c, e.data(), static_cast<int32_t>(e.size())) != QISA_OK) return nullptr;
  return ContextPtr(c);
}

// Microseconds per step (B tokens, one per stream).
double time_steps(qisa_context* c, int B, int steps) {
  std::vector<qisa_batch_entry> e;
  for (int b = 0; b < B; ++b) e.push_back({b, (b * 7) % 60, 1});
  double total = 0.0;
  for (int s = 0; s < steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    qisa_decode(c, e.data(), B);
    total += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    for (int b = 0; b < B; ++b) qisa_seq_truncate(c, b, kCached);
  }
  return total / steps;
}

int usage() {
  std::fprintf(stderr,
               "usage: dtype_step_ratio [--kind qisa-v3|csa] [--n-embd N] [--batch B] [--rounds R] [--steps S] "
               "[--threads T] [--types f32,q8_0,q4_0]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long n_embd = 768, batch = 1, rounds = 20, steps = 10, threads = 1;
  qisa_attention_kind kind = QISA_ATTENTION_QISA_V3;
  std::string types = "f32,q8_0,q4_0";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    const char* v = argv[++i];
    if (a == "--kind") {
      if (std::strcmp(v, "csa") == 0) {
        kind = QISA_ATTENTION_CSA;
      } else if (std::strcmp(v, "qisa-v3") != 0) {
        return usage();
      }
      continue;
    }
    if (a == "--types") {
      types = v;
      continue;
    }
    long* field = a == "--n-embd"    ? &n_embd
                  : a == "--batch"   ? &batch
                  : a == "--rounds"  ? &rounds
                  : a == "--steps"   ? &steps
                  : a == "--threads" ? &threads
                                     : nullptr;
    if (!field) return usage();
    *field = std::strtol(v, nullptr, 10);
    if (*field < 1) return usage();
  }

  std::vector<Variant> vs;
  std::stringstream list(types);
  for (std::string name; std::getline(list, name, ',');) {
    const auto t = qisa::dtype_from_name(name);
    if (!t) {
      std::fprintf(stderr, "dtype_step_ratio: unknown type '%s' (%s)\n", name.c_str(), qisa::dtype_names().c_str());
      return 2;
    }
    qisa::writer::SyntheticSpec s;
    s.kind = kind;
    s.n_embd = static_cast<uint32_t>(n_embd);
    s.n_layer = 6;
    s.n_head = 1;
    s.n_ctx = 16;
    s.weight_dtype = *t;
    s.unitary_dtype = qisa::dtype_traits(*t).holds_unitaries ? *t : QISA_DTYPE_Q8_0;
    Variant v{*t, qisa::bench::load_synthetic(s), nullptr, {}};
    if (v.model) v.ctx = make_context(v.model.get(), static_cast<int>(batch), static_cast<int>(threads));
    if (!v.ctx) {
      std::fprintf(stderr, "dtype_step_ratio: the %s model or its context failed\n", name.c_str());
      return 1;
    }
    vs.push_back(std::move(v));
  }
  for (auto& v : vs) time_steps(v.ctx.get(), static_cast<int>(batch), static_cast<int>(steps));  // warm up
  for (long r = 0; r < rounds; ++r)
    for (auto& v : vs) v.us.push_back(time_steps(v.ctx.get(), static_cast<int>(batch), static_cast<int>(steps)));

  std::printf("%s, n_embd %ld, 6 layers, B %ld, %ld thread(s), %ld rounds of %ld steps per type\n",
              kind == QISA_ATTENTION_CSA ? "CSA" : "QISA v3", n_embd, batch, threads, rounds, steps);
  std::printf("%-6s %12s %10s   speed vs the others (per-round median of their time ratio)\n", "type", "us/step",
              "tok/s");
  for (auto& v : vs) {
    const double us = median(v.us);
    std::printf("%-6s %12.1f %10.0f  ", qisa::dtype_name(v.dtype), us, 1e6 * static_cast<double>(batch) / us);
    for (auto& o : vs) {
      if (&o == &v) continue;
      std::vector<double> ratio;
      for (size_t r = 0; r < v.us.size(); ++r) ratio.push_back(o.us[r] / v.us[r]);
      std::printf(" %.2fx %s", median(ratio), qisa::dtype_name(o.dtype));
    }
    std::printf("\n");
  }
  return 0;
}
