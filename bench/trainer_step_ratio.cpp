// Training-step time of CSA, QISA v3 and QSAT taken in turns, one step of
// each per round, in one process: on a shared machine whose speed drifts
// over seconds, the per-round ratio QISA v3 / CSA (and its median) is far
// steadier than medians of separate benchmark runs. Issue #17 asks
// QISA v3 / CSA <= 1.3x at n_embd 128.
//   trainer_step_ratio [--n-embd 128] [--ctx 16] [--batch 128] [--layers 4]
//                      [--rounds 30] [--threads 1] [--malloc-default]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "allocator_tuning.h"
#include "bench_support.h"
#include "gpt_model.h"

namespace {

using qisa::bench::median;
using qisa::train::Gpt;

struct Options {
  int64_t n_embd = 128, ctx = 16, batch = 128, layers = 4, rounds = 30, threads = 1;
  bool malloc_default = false;  // glibc's allocator settings, to show their cost
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--malloc-default") {
      o.malloc_default = true;
      continue;
    }
    int64_t* field = a == "--n-embd"    ? &o.n_embd
                     : a == "--ctx"     ? &o.ctx
                     : a == "--batch"   ? &o.batch
                     : a == "--layers"  ? &o.layers
                     : a == "--rounds"  ? &o.rounds
                     : a == "--threads" ? &o.threads
                                        : nullptr;
    if (!field || i + 1 >= argc) return false;
    char* end = nullptr;
    *field = std::strtoll(argv[++i], &end, 10);
    if (*end != '\0' || *field < 1) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: trainer_step_ratio [--n-embd N] [--ctx T] [--batch B] [--layers L] [--rounds R] "
                 "[--threads N] [--malloc-default]\n");
    return 2;
  }
  torch::set_num_threads(static_cast<int>(o.threads));
  if (!o.malloc_default) qisa::train::keep_freed_memory_for_reuse();  // as qisa-train does
  torch::manual_seed(3);
  const qisa_attention_kind kinds[] = {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V3, QISA_ATTENTION_QSAT};
  constexpr size_t K = std::size(kinds);
  std::vector<Gpt> models;
  std::vector<std::unique_ptr<torch::optim::AdamW>> opts;
  for (const auto kind : kinds) {
    qisa::train::ModelOptions mo;
    mo.attention = kind;
    mo.n_embd = o.n_embd;
    mo.n_ctx = o.ctx;
    mo.n_layer = o.layers;
    mo.n_head = 1;
    mo.vocab_size = 65;
    mo.qsat_top_k = kind == QISA_ATTENTION_QSAT ? 8 : 0;
    mo.qsat_window = mo.qsat_top_k;
    models.emplace_back(mo);
    models.back()->train();
    opts.push_back(
        std::make_unique<torch::optim::AdamW>(models.back()->parameters(), torch::optim::AdamWOptions(1e-3)));
  }
  const auto x = torch::randint(0, 65, {o.batch, o.ctx}, torch::kInt64);
  const auto y = torch::randint(0, 65, {o.batch, o.ctx}, torch::kInt64);
  std::vector<std::vector<double>> ms(K);
  for (int64_t r = -2; r < o.rounds; ++r) {  // two warm-up rounds
    for (size_t k = 0; k < K; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto loss = torch::nn::functional::cross_entropy(models[k](x).view({-1, 65}), y.flatten());
      opts[k]->zero_grad();
      loss.backward();
      opts[k]->step();
      const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r >= 0) ms[k].push_back(t);
    }
  }
  std::printf("n_embd %lld, ctx %lld, batch %lld, %lld layers, %lld thread(s), %lld rounds\n",
              static_cast<long long>(o.n_embd), static_cast<long long>(o.ctx), static_cast<long long>(o.batch),
              static_cast<long long>(o.layers), static_cast<long long>(o.threads), static_cast<long long>(o.rounds));
  for (size_t k = 0; k < K; ++k) {
    std::vector<double> ratio;
    for (size_t i = 0; i < ms[k].size(); ++i) ratio.push_back(ms[k][i] / ms[0][i]);
    std::printf("%-8s step median %8.1f ms  min %8.1f ms  per-round ratio to CSA: median %.2fx\n",
                qisa::train::attention_name(kinds[k]), median(ms[k]), *std::min_element(ms[k].begin(), ms[k].end()),
                median(ratio));
  }
  return 0;
}
