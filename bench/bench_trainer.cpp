// The trainer's step in one run: CSA, QISA v3 and QSAT training steps
// (forward, backward, AdamW) on random windows, and the parts of a QISA v3
// value projection against the CSA linear map it replaces, so ratios come
// from one process on one machine state (medians with
// --benchmark_repetitions=5). Issue #17 asks QISA v3 / CSA <= 1.3x at n_embd 128.
//   bench_trainer --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <string>

#include "allocator_tuning.h"
#include "gpt_model.h"
#include "quantum_projection.h"
#include "synthetic_model.h"

namespace {

using qisa::train::Gpt;

// Args: kind (0 CSA, 3 QISA v3, 4 QSAT with 8 + 8 positions), n_embd, ctx,
// windows per step. items/s = training tokens per second.
void BM_TrainStep(benchmark::State& state) {
  torch::set_num_threads(1);
  qisa::train::keep_freed_memory_for_reuse();  // as qisa-train does
  torch::manual_seed(3);
  qisa::train::ModelOptions o;
  o.attention = static_cast<qisa_attention_kind>(state.range(0));
  o.n_embd = state.range(1);
  o.n_ctx = state.range(2);
  o.n_layer = 4;
  o.n_head = 1;
  o.vocab_size = 65;
  o.qsat_top_k = o.attention == QISA_ATTENTION_QSAT ? 8 : 0;
  o.qsat_window = o.qsat_top_k;
  Gpt model(o);
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  const int64_t B = state.range(3), T = o.n_ctx;
  const auto x = torch::randint(0, o.vocab_size, {B, T}, torch::kInt64);
  const auto y = torch::randint(0, o.vocab_size, {B, T}, torch::kInt64);
  for (auto _ : state) {
    const auto loss = torch::nn::functional::cross_entropy(model(x).view({-1, o.vocab_size}), y.flatten());
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  state.SetLabel(qisa::train::attention_name(o.attention));
  state.SetItemsProcessed(state.iterations() * B * T);
}
BENCHMARK(BM_TrainStep)
    ->ArgNames({"kind", "n_embd", "ctx", "B"})
    ->Args({0, 128, 16, 128})
    ->Args({3, 128, 16, 128})
    ->Args({0, 96, 256, 16})
    ->Args({3, 96, 256, 16})
    ->Args({4, 96, 256, 16})
    ->Unit(benchmark::kMillisecond);

// One value projection, forward and backward, over N rows: 0 the CSA
// linear map, 1 QISA's psi -> U psi -> Pauli expectations (U built from the
// angles, as in training), 2 the same with U fixed (the measurement and
// the U product alone). Args: part, n_embd, N.
void BM_ValueProjection(benchmark::State& state) {
  torch::set_num_threads(1);
  torch::manual_seed(4);
  const int64_t part = state.range(0), d = state.range(1), N = state.range(2);
  const auto n = static_cast<int64_t>(qisa::qubits_for_width(static_cast<uint64_t>(d)));
  torch::nn::Linear lin(torch::nn::LinearOptions(d, d).bias(false));
  qisa::train::QuantumProjection qp(n,
                                    qisa::writer::draw_paulis(static_cast<uint32_t>(n), static_cast<uint32_t>(d), 7));
  if (part == 2) qp->precompute();
  const auto x = torch::randn({N, d}, torch::requires_grad());
  const auto psi = qisa::train::encode_amplitudes(x.detach(), n, true).requires_grad_();
  const auto [u_re, u_im] = qp->unitary();
  for (auto _ : state) {
    if (part == 5) {  // building U from the angles, forward and backward
      const auto [re, im] = qp->unitary();
      (re.sum() + im.sum()).backward();
      continue;
    }
    if (part == 4) {  // forward only
      torch::NoGradGuard ng;
      benchmark::DoNotOptimize(qp(psi).data_ptr());
      continue;
    }
    if (part == 3) {  // the U product alone
      const auto f_re = torch::matmul(psi, u_re.detach().t()), f_im = torch::matmul(psi, u_im.detach().t());
      (f_re.sum() + f_im.sum()).backward();
      continue;
    }
    const auto out = part == 0 ? lin(x) : qp(psi);
    out.sum().backward();
  }
  static const char* const kParts[] = {"linear",          "quantum",      "quantum, U fixed",
                                       "U product alone", "forward only", "U from the angles"};
  state.SetLabel(kParts[part]);
  state.SetItemsProcessed(state.iterations() * N);
}
BENCHMARK(BM_ValueProjection)
    ->ArgNames({"part", "n_embd", "N"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {128}, {2048}})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
