// libqisa next to the trainer's LibTorch model doing the same work, in one
// run, on identical weights (the LibTorch model is exported to .qisa and
// loaded by libqisa; the first use of every pair checks that both give the
// same logits). Workloads:
//  - Forward: B windows of 16 tokens, logits at every position (the
//    research's Figure 1 "time per batch");
//  - Generate: greedy generation of N tokens from a 1-token prompt, the
//    research way in LibTorch (re-run the last <= n_ctx tokens per token) and
//    with the KV cache in libqisa (sliding exactly past n_ctx).
// Implementations: 0 LibTorch eager (U built from the angles per forward),
// 1 LibTorch with precomputed U, 2 libqisa (CPU, fast engine).
//   bench_vs_libtorch --benchmark_format=json
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_support.h"
#include "gpt_model.h"
#include "model_export.h"
#include "qisa.h"

namespace {

using qisa::bench::backend_from_env;
using qisa::bench::ContextPtr;
using qisa::bench::ModelPtr;
using qisa::train::Gpt;

constexpr int kCtx = 16;
const char* kImplNames[] = {"libtorch", "libtorch-precomputed", "libqisa"};

// One LibTorch model and the same weights loaded in libqisa.
struct Pair {
  Gpt torch_model{nullptr};
  ModelPtr lib_model;
  std::string error;  // set when the two disagree
};

std::vector<float> qisa_logits(qisa_model* m, const std::vector<int64_t>& tokens);

Pair& pair(int kind, int n_embd) {
  static std::map<std::pair<int, int>, Pair> cache;
  Pair& p = cache[{kind, n_embd}];
  if (p.torch_model) return p;
  torch::manual_seed(static_cast<uint64_t>(1000 + 10 * kind + n_embd));
  qisa::train::ModelOptions o;
  o.n_embd = n_embd;
  o.n_layer = 6;
  o.n_head = 1;
  o.n_ctx = kCtx;
  o.dropout = 0.0;
  o.attention = static_cast<qisa_attention_kind>(kind);
  p.torch_model = Gpt(o);
  p.torch_model->eval();
  qisa::train::ExportOptions e;
  for (int i = 0; i < o.vocab_size; ++i) e.tokenizer.pieces.emplace_back(1, static_cast<char>('0' + i));
  const auto bytes = qisa::writer::serialize(qisa::train::export_model(p.torch_model, e));
  qisa_model_params mp;
  qisa_model_default_params(&mp);
  mp.check_unitaries = 0;
  qisa_model* m = nullptr;
  char err[256] = "";
  if (qisa_model_load_buffer(bytes.data(), bytes.size(), &mp, &m, err, sizeof err) != QISA_OK) {
    p.error = std::string("load: ") + err;
    return p;
  }
  p.lib_model.reset(m);
  // Same work: the logits of one window must agree.
  std::vector<int64_t> tokens;
  for (int i = 0; i < kCtx; ++i) tokens.push_back((i * 7 + 3) % o.vocab_size);
  torch::NoGradGuard ng;
  const auto ref = p.torch_model(torch::tensor(tokens).view({1, kCtx})).contiguous();
  const auto got = qisa_logits(m, tokens);
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - ref.data_ptr<float>()[i]));
  if (got.size() != static_cast<size_t>(ref.numel()) || worst > 1e-3)
    p.error = "libqisa and LibTorch logits differ by " + std::to_string(worst);
  return p;
}

ContextPtr context(qisa_model* m, int max_seq, int max_batch, int threads) {
  qisa_context_params cp;
  qisa_context_default_params(&cp);
  cp.max_sequences = max_seq;
  cp.max_batch = max_batch;
  cp.n_threads = threads;
  cp.backend = backend_from_env();
  qisa_context* c = nullptr;
  if (qisa_context_create(m, &cp, &c, nullptr, 0) != QISA_OK) return nullptr;
  return ContextPtr(c);
}

std::vector<float> qisa_logits(qisa_model* m, const std::vector<int64_t>& tokens) {
  auto ctx = context(m, 1, kCtx, 1);
  std::vector<qisa_batch_entry> e;
  for (auto t : tokens) e.push_back({0, static_cast<int32_t>(t), 1});
  if (!ctx || qisa_decode(ctx.get(), e.data(), static_cast<int32_t>(e.size())) != QISA_OK) return {};
  qisa_model_info info{};
  info.struct_size = sizeof info;
  qisa_model_get_info(m, &info);
  std::vector<float> out;
  for (size_t i = 0; i < e.size(); ++i) {
    const float* l = nullptr;
    qisa_get_logits(ctx.get(), static_cast<int32_t>(i), &l);
    out.insert(out.end(), l, l + info.vocab_size);
  }
  return out;
}

int argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return static_cast<int>(best);
}

// The pair for (kind, d) with the benchmark's label set, or nullptr after
// reporting why it cannot run.
Pair* checked_pair(benchmark::State& state, int impl, int kind, int d) {
  Pair& p = pair(kind, d);
  if (!p.error.empty()) {
    state.SkipWithError(p.error.c_str());
    return nullptr;
  }
  state.SetLabel(std::string(kImplNames[impl]) + " " +
                 qisa_attention_kind_string(static_cast<qisa_attention_kind>(kind)));
  return &p;
}

// Args: impl, kind, n_embd, B, threads.
void BM_Forward(benchmark::State& state) {
  const int impl = static_cast<int>(state.range(0)), kind = static_cast<int>(state.range(1));
  const int d = static_cast<int>(state.range(2)), B = static_cast<int>(state.range(3));
  const int threads = static_cast<int>(state.range(4));
  Pair* pp = checked_pair(state, impl, kind, d);
  if (!pp) return;
  Pair& p = *pp;
  std::vector<int32_t> tokens(static_cast<size_t>(B * kCtx));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 2654435761u) % 65);
  if (impl < 2) {
    torch::set_num_threads(threads);
    torch::NoGradGuard ng;
    p.torch_model->precompute_unitaries(impl == 1);
    const auto idx = torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.end())).view({B, kCtx});
    for (auto _ : state) benchmark::DoNotOptimize(p.torch_model(idx).data_ptr<float>());
    p.torch_model->precompute_unitaries(false);
  } else {
    auto ctx = context(p.lib_model.get(), B, B * kCtx, threads);
    if (!ctx) return state.SkipWithError("context");
    std::vector<qisa_batch_entry> e;
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < kCtx; ++t) e.push_back({b, tokens[static_cast<size_t>(b * kCtx + t)], 1});
    for (auto _ : state) {
      qisa_seq_clear(ctx.get(), -1);
      if (qisa_decode(ctx.get(), e.data(), static_cast<int32_t>(e.size())) != QISA_OK)
        return state.SkipWithError(qisa_context_last_error(ctx.get()));
    }
  }
  state.SetItemsProcessed(state.iterations() * B * kCtx);
}

// Greedy generation of N tokens after a 1-token prompt; items = tokens.
// Args: impl, kind, n_embd, N, threads.
void BM_Generate(benchmark::State& state) {
  const int impl = static_cast<int>(state.range(0)), kind = static_cast<int>(state.range(1));
  const int d = static_cast<int>(state.range(2)), N = static_cast<int>(state.range(3));
  const int threads = static_cast<int>(state.range(4));
  Pair* pp = checked_pair(state, impl, kind, d);
  if (!pp) return;
  Pair& p = *pp;
  if (impl < 2) {
    torch::set_num_threads(threads);
    torch::NoGradGuard ng;
    p.torch_model->precompute_unitaries(impl == 1);
    for (auto _ : state) {
      std::vector<int64_t> seq{1};
      for (int i = 0; i < N; ++i) {  // crop to the last n_ctx tokens, re-run, take the last logits
        const auto n = std::min<int64_t>(static_cast<int64_t>(seq.size()), kCtx);
        const auto window = torch::tensor(std::vector<int64_t>(seq.end() - n, seq.end())).view({1, n});
        const auto logits = p.torch_model(window).select(1, n - 1).contiguous();
        seq.push_back(argmax(logits.data_ptr<float>(), logits.numel()));
      }
      benchmark::DoNotOptimize(seq.data());
    }
    p.torch_model->precompute_unitaries(false);
  } else {
    auto ctx = context(p.lib_model.get(), 1, kCtx, threads);
    if (!ctx) return state.SkipWithError("context");
    qisa_model_info info{};
    info.struct_size = sizeof info;
    qisa_model_get_info(p.lib_model.get(), &info);
    for (auto _ : state) {
      qisa_seq_clear(ctx.get(), 0);
      int32_t token = 1;
      for (int i = 0; i < N; ++i) {
        const qisa_batch_entry e{0, token, 1};
        const float* logits = nullptr;
        if (qisa_decode(ctx.get(), &e, 1) != QISA_OK || qisa_get_logits(ctx.get(), 0, &logits) != QISA_OK)
          return state.SkipWithError(qisa_context_last_error(ctx.get()));
        token = argmax(logits, info.vocab_size);
      }
      benchmark::DoNotOptimize(token);
    }
  }
  state.SetItemsProcessed(state.iterations() * N);
}

// Widths 4, 16, 128: batch 1024 (768: batch 16, GPT-1 width, 10 qubits).
void forward_args(benchmark::internal::Benchmark* b) {
  for (int impl : {0, 1, 2})
    for (int kind : {0, 1, 2, 3})
      for (int threads : {1, 2}) {
        if (impl == 1 && kind == 0) continue;  // CSA has no unitaries
        for (int d : {4, 16, 128}) b->Args({impl, kind, d, 1024, threads});
        b->Args({impl, kind, 768, 16, threads});
      }
}
BENCHMARK(BM_Forward)
    ->ArgNames({"impl", "kind", "n_embd", "B", "threads"})
    ->Apply(forward_args)
    ->Unit(benchmark::kMillisecond);

// 15 tokens stay within the window; 64 slide past it. At n_embd 768 (10
// qubits) building U from the angles costs ~4 GFLOP per projection, so
// LibTorch generates with precomputed U only, and only within the window.
void generate_args(benchmark::internal::Benchmark* b) {
  for (int impl : {0, 1, 2})
    for (int kind : {0, 1, 2, 3})
      for (int threads : {1, 2})
        for (int d : {4, 16, 128, 768}) {
          if (impl == 1 && kind == 0) continue;
          if (d == 768 && impl == 0 && kind != 0) continue;
          for (int n : {15, 64})
            if (d != 768 || n == 15) b->Args({impl, kind, d, n, threads});
        }
}
BENCHMARK(BM_Generate)
    ->ArgNames({"impl", "kind", "n_embd", "N", "threads"})
    ->Apply(generate_args)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
