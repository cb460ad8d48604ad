// libqisa CPU engine: decode latency by position, prefill throughput,
// batched throughput, QISA v1/v2/v3 vs CSA at equal shapes, and the QISA
// value path (unitary vs observables). Random weights of the right shapes.
//   bench_runtime --benchmark_format=json
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api_model.h"
#include "backends/cpu/cpu_kernels.h"
#include "backends/cpu/linear_op.h"
#include "backends/cpu/matmul_dnnl.h"
#include "backends/cpu/omp_threads.h"
#include "backends/cpu/quantum_layer.h"
#include "bench_support.h"
#include "dtype.h"
#include "qisa.h"
#include "synthetic_model.h"

namespace {

using qisa::bench::backend_from_env;
using qisa::bench::ContextPtr;
using qisa::bench::ModelPtr;

const char* kind_name(int kind) {
  return qisa::attention_kind(static_cast<qisa_attention_kind>(kind)).name;
}

// Models are built once per shape.
qisa_model* model(int kind, int n_embd, int n_ctx, qisa_dtype dtype = QISA_DTYPE_F32) {
  // A few recent models stay loaded (the 768-wide ones are ~0.3 GB each);
  // no context outlives the benchmark that made it, so eviction is safe.
  static std::map<std::tuple<int, int, int, int>, ModelPtr> cache;
  const std::tuple<int, int, int, int> key{kind, n_embd, n_ctx, static_cast<int>(dtype)};
  if (!cache.count(key) && cache.size() >= 4) cache.clear();
  auto& slot = cache[key];
  if (!slot) {
    qisa::writer::SyntheticSpec s;
    s.kind = static_cast<qisa_attention_kind>(kind);
    s.n_embd = static_cast<uint32_t>(n_embd);
    s.n_layer = 6;
    s.n_head = 1;
    s.n_ctx = static_cast<uint32_t>(n_ctx);
    s.weight_dtype = dtype;
    s.unitary_dtype = qisa::dtype_traits(dtype).holds_unitaries ? dtype : QISA_DTYPE_Q8_0;
    slot = qisa::bench::load_synthetic(s);
    if (!slot) std::abort();
  }
  return slot.get();
}

ContextPtr context(qisa_model* m, int max_seq, int max_batch, int threads,
                   qisa_value_path path = QISA_VALUE_PATH_AUTO) {
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.max_sequences = max_seq;
  p.max_batch = max_batch;
  p.n_threads = threads;
  p.value_path = path;
  p.backend = backend_from_env();
  qisa_context* c = nullptr;
  if (qisa_context_create(m, &p, &c, nullptr, 0) != QISA_OK) std::abort();
  return ContextPtr(c);
}

// Appends n tokens to a sequence, in calls of at most max_batch entries.
void fill(qisa_context* c, int seq, int n, int max_batch = 64) {
  std::vector<qisa_batch_entry> e;
  for (int i = 0; i < n; ++i) e.push_back({seq, i % 60, 0});
  const auto chunk = static_cast<size_t>(max_batch);
  for (size_t i = 0; i < e.size(); i += chunk) {
    const int n_here = static_cast<int>(std::min(chunk, e.size() - i));
    if (qisa_decode(c, e.data() + i, n_here) != QISA_OK) std::abort();
  }
}

// One decode step at a given cache position (args: kind, n_embd, position, threads).
void BM_DecodeAtPosition(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0)), d = static_cast<int>(state.range(1));
  const int pos = static_cast<int>(state.range(2)), threads = static_cast<int>(state.range(3));
  auto ctx = context(model(kind, d, 512), 1, 64, threads);
  fill(ctx.get(), 0, pos);
  const qisa_batch_entry e{0, 7, 1};
  for (auto _ : state) {
    qisa_decode(ctx.get(), &e, 1);
    state.PauseTiming();
    qisa_seq_truncate(ctx.get(), 0, pos);
    state.ResumeTiming();
  }
  state.SetLabel(kind_name(kind));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeAtPosition)
    ->ArgNames({"kind", "n_embd", "pos", "threads"})
    ->ArgsProduct({{0, 1, 2, 3}, {128}, {0, 64, 128, 256, 510}, {1}})
    ->Unit(benchmark::kMicrosecond);

// Decode one token into a window of 15 cached tokens (the research ctx 16):
// the per-token cost at equal shapes, per kind and width.
void BM_DecodeStep(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0)), d = static_cast<int>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  auto ctx = context(model(kind, d, 16), 1, 64, threads);
  fill(ctx.get(), 0, 15);
  const qisa_batch_entry e{0, 7, 1};
  for (auto _ : state) {
    qisa_decode(ctx.get(), &e, 1);
    state.PauseTiming();
    qisa_seq_truncate(ctx.get(), 0, 15);
    state.ResumeTiming();
  }
  state.SetLabel(kind_name(kind));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeStep)
    ->ArgNames({"kind", "n_embd", "threads"})
    ->ArgsProduct({{0, 1, 2, 3}, {4, 16, 128, 768}, {1, 2}})
    ->Unit(benchmark::kMicrosecond);

// Prefill a whole window in one call (args: kind, n_embd, n_tokens, threads).
void BM_Prefill(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0)), d = static_cast<int>(state.range(1));
  const int n = static_cast<int>(state.range(2)), threads = static_cast<int>(state.range(3));
  auto ctx = context(model(kind, d, 512), 1, n, threads);
  std::vector<qisa_batch_entry> e;
  for (int i = 0; i < n; ++i) e.push_back({0, i % 60, i + 1 == n});
  for (auto _ : state) {
    state.PauseTiming();
    qisa_seq_clear(ctx.get(), 0);
    state.ResumeTiming();
    qisa_decode(ctx.get(), e.data(), n);
  }
  state.SetLabel(kind_name(kind));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Prefill)
    ->ArgNames({"kind", "n_embd", "tokens", "threads"})
    ->ArgsProduct({{0, 1, 2, 3}, {4, 16, 128}, {16, 512}, {1, 2}})
    ->ArgsProduct({{0, 1, 2, 3}, {768}, {16}, {1, 2}})
    ->Unit(benchmark::kMicrosecond);

// B streams with `cached` tokens advance one token each per timed call;
// items/s = tokens/s over all streams.
void decode_streams(benchmark::State& state, qisa_model* m, int B, int threads, int cached = 8) {
  auto ctx = context(m, B, B, threads);
  for (int b = 0; b < B; ++b) fill(ctx.get(), b, cached, B);
  std::vector<qisa_batch_entry> e;
  for (int b = 0; b < B; ++b) e.push_back({b, (b * 7) % 60, 1});
  for (auto _ : state) {
    qisa_decode(ctx.get(), e.data(), B);
    state.PauseTiming();
    for (int b = 0; b < B; ++b) qisa_seq_truncate(ctx.get(), b, cached);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * B);
}

// B streams advance one token each per call, windows of 16 (args: kind,
// n_embd, B, threads). items/s = tokens/s over all streams.
void BM_Batched(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0)), d = static_cast<int>(state.range(1));
  const int B = static_cast<int>(state.range(2)), threads = static_cast<int>(state.range(3));
  decode_streams(state, model(kind, d, 16), B, threads);
  state.SetLabel(kind_name(kind));
}
BENCHMARK(BM_Batched)
    ->ArgNames({"kind", "n_embd", "B", "threads"})
    ->ArgsProduct({{0, 1, 2, 3}, {4, 16, 128}, {1, 8, 64, 256, 1024}, {1, 2}})
    ->ArgsProduct({{0, 1, 2, 3}, {768}, {1, 8, 64}, {1, 2}})
    ->ArgsProduct({{0, 3}, {768}, {1024}, {1, 2}})
    ->Unit(benchmark::kMicrosecond);

// What batching buys a server (docs/server.md): B streams of the 6-layer
// n_embd-128 model with `position` cached tokens each, one call per step
// (args: kind, B, position, threads). items/s = tokens/s over all streams.
void BM_Streams(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0)), B = static_cast<int>(state.range(1));
  const int pos = static_cast<int>(state.range(2)), threads = static_cast<int>(state.range(3));
  decode_streams(state, model(kind, 128, 256), B, threads, pos);
  state.SetLabel(kind_name(kind));
}
BENCHMARK(BM_Streams)
    ->ArgNames({"kind", "B", "position", "threads"})
    ->ArgsProduct({{0, 3}, {1, 4, 16, 64}, {16, 64, 200}, {1}})
    ->Unit(benchmark::kMicrosecond);

// The QISA value computation alone (one v3 head's value projection, rows
// of random inputs): unitary (phi = U psi with the dense U, then O(D) Pauli
// sums), gates (U psi gate by gate, the same sums) and the research code's
// dense observables (psi^T O' psi). Args: path, n_embd, rows.
void BM_ValuePath(benchmark::State& state) {
  const auto path = static_cast<qisa_value_path>(state.range(0));
  const int d = static_cast<int>(state.range(1)), R = static_cast<int>(state.range(2));
  const qisa::Model& m = qisa::model_of(model(3, d, 16));
  auto dnnl = qisa::make_dnnl_context();
  omp_set_num_threads(1);
  qisa::LinearScratch scratch;
  qisa::QuantumLayer layer({&*m.layers[0].heads[0].qp(qisa::Role::V)}, d, d, path, 1, dnnl.get(), R, &scratch);
  std::vector<float> u(static_cast<size_t>(R * d)), out(static_cast<size_t>(R * d));
  for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  float* dest[] = {out.data()};
  for (auto _ : state) {
    layer.run(u.data(), R, dest, d);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(path == QISA_VALUE_PATH_OBSERVABLES ? "observables"
                 : path == QISA_VALUE_PATH_GATES     ? "gates"
                                                     : "unitary");
  state.SetItemsProcessed(state.iterations() * R);
}
BENCHMARK(BM_ValuePath)
    ->ArgNames({"path", "n_embd", "rows"})
    ->ArgsProduct({{QISA_VALUE_PATH_UNITARY, QISA_VALUE_PATH_GATES, QISA_VALUE_PATH_OBSERVABLES},
                   {4, 8, 16, 128},
                   {1, 8, 64}})
    ->ArgsProduct({{QISA_VALUE_PATH_UNITARY, QISA_VALUE_PATH_GATES}, {256, 512}, {1, 8, 64}})
    // n_embd 768: the dense observables would be 768 x 1024 x 1024 floats
    // (3.2 GB) for one projection; only the unitary and gates paths are measured.
    ->ArgsProduct({{QISA_VALUE_PATH_UNITARY, QISA_VALUE_PATH_GATES}, {768}, {1, 8, 64}})
    ->Unit(benchmark::kMicrosecond);

// One query's attention over n cached positions (keys of one head) with
// each kernel set: 0 generic, 1 AVX2 (skipped without it). Args: set, n,
// gaussian, head size h (16: the research models' heads). items/s = cached
// positions per second.
void BM_AttentionKernel(benchmark::State& state) {
  const qisa::CpuKernels* k = state.range(0) == 0 ? &qisa::generic_cpu_kernels() : qisa::avx2_cpu_kernels();
  if (!k) {
    state.SkipWithError("no AVX2 on this CPU");
    return;
  }
  const int64_t n = state.range(1), h = state.range(3);
  const bool gaussian = state.range(2) != 0;
  std::vector<float> q(h), keys(static_cast<size_t>(n * h)), values(keys.size()), norms(static_cast<size_t>(n));
  std::vector<float> out(h), scores(static_cast<size_t>(n));
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i] = static_cast<float>((i * 2654435761u) % 1000) / 5000.0f - 0.1f;
    values[i] = static_cast<float>((i * 40503u) % 1000) / 500.0f - 1.0f;
  }
  for (int64_t i = 0; i < h; ++i) q[static_cast<size_t>(i)] = keys[static_cast<size_t>(i * 7 % (n * h))];
  for (int64_t j = 0; j < n; ++j) {
    float s = 0.0f;
    for (int64_t i = 0; i < h; ++i) s += keys[static_cast<size_t>(j * h + i)] * keys[static_cast<size_t>(j * h + i)];
    norms[static_cast<size_t>(j)] = s;
  }
  for (auto _ : state) {
    k->scores(scores.data(), q.data(), keys.data(), norms.data(), n, h, h, 1, gaussian, 0.088f);
    k->attend(out.data(), scores.data(), nullptr, n, values.data(), h, h, gaussian);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(std::string(k->name) + (gaussian ? " gaussian" : " dot"));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_AttentionKernel)
    ->ArgNames({"set", "n", "gaussian", "h"})
    ->ArgsProduct({{0, 1}, {16, 128, 512}, {0, 1}, {16, 128}})
    ->Unit(benchmark::kMicrosecond);

// Weights and unitaries stored as f32, f16, bf16, Q8_0 or Q4_0 (with Q8_0
// unitaries; args: kind,
// n_embd, dtype, B, threads): B streams advance one token each into windows
// of 8 (B = 1: single-stream decode latency).
void BM_DecodeDtype(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0)), d = static_cast<int>(state.range(1));
  const auto dtype = static_cast<qisa_dtype>(state.range(2));
  const int B = static_cast<int>(state.range(3)), threads = static_cast<int>(state.range(4));
  decode_streams(state, model(kind, d, 16, dtype), B, threads);
  state.SetLabel(std::string(kind_name(kind)) + " " + qisa::dtype_name(dtype));
}
BENCHMARK(BM_DecodeDtype)
    ->ArgNames({"kind", "n_embd", "dtype", "B", "threads"})
    ->ArgsProduct({{0, 3}, {128, 512}, {0, 1, 2, 3, 4}, {1, 64}, {1, 2}})
    ->ArgsProduct({{0, 3}, {768}, {0, 3, 4}, {1}, {1, 2}})
    ->Unit(benchmark::kMicrosecond);

// The machine's two roofline bounds, measured in the same run as the
// workloads (scripts/bench_report.py divides by them). Peak: a 1024^3 f32
// matmul through oneDNN (2 * 1024^3 FLOPs per iteration). Bandwidth: a sum
// over 8, 64 or 256 MiB split over the threads (bytes/s); the report reads
// a workload's weights at the bandwidth of the smallest size that holds
// them (on a VM the caches' share varies, so one size would mislead).
void BM_PeakGemm(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const qisa::OmpThreadsScope omp(threads);
  constexpr int64_t n = 1024;
  std::vector<float> w(n * n, 0.5f), x(n * n, 0.25f), y(n * n);
  auto dnnl = qisa::make_dnnl_context();
  qisa::DnnlLinear mm(*dnnl, w.data(), nullptr, n, n);
  for (auto _ : state) mm.run(x.data(), y.data(), n);
  state.SetItemsProcessed(state.iterations() * 2 * n * n * n);  // FLOPs
}
BENCHMARK(BM_PeakGemm)->ArgNames({"threads"})->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The six-layer models' products alone, as the CPU engine makes and runs
// them (LinearOp, f32; per layer Q, K, V and the output d -> d, up d -> 4d
// with GELU fused, down 4d -> d; each layer its own weights, as in the
// model) on `rows` rows: what the products of a batched workload reach at
// its row count, against BM_PeakGemm's 1024^3. Items/s: FLOPs (2 * rows *
// 12 d^2 per layer).
void BM_LayerProducts(benchmark::State& state) {
  constexpr int kLayers = 6;
  const int64_t d = state.range(0), rows = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const qisa::OmpThreadsScope omp(threads);
  const qisa::ThreadPolicy policy = qisa::measure_thread_policy(threads);
  auto dnnl = qisa::make_dnnl_context();
  qisa::LinearScratch scratch;
  const int64_t shapes[6][2] = {{d, d}, {d, d}, {d, d}, {d, d}, {d, 4 * d}, {4 * d, d}};  // in, out
  std::vector<std::vector<float>> w(kLayers * 6), b(kLayers * 6);
  std::vector<qisa::LinearOp> ops(kLayers * 6);
  for (size_t i = 0; i < ops.size(); ++i) {
    const auto [in, out] = shapes[i % 6];
    w[i].resize(static_cast<size_t>(in * out));
    for (size_t j = 0; j < w[i].size(); ++j) w[i][j] = static_cast<float>((j * 37 + i) % 101) / 500.0f - 0.1f;
    b[i].assign(static_cast<size_t>(out), 0.01f);
    ops[i].init(qisa::MatrixRef::of(w[i].data(), in), b[i].data(), in, out, policy, dnnl.get(), &scratch, true,
                i % 6 == 4 ? qisa::PostOp::GeluErf : qisa::PostOp::None);
  }
  std::vector<float> x(static_cast<size_t>(rows * d), 0.25f), hidden(static_cast<size_t>(rows * 4 * d)),
      y(static_cast<size_t>(rows * d));
  for (auto _ : state) {
    for (size_t l = 0; l < kLayers; ++l) {
      qisa::LinearOp* op = ops.data() + l * 6;
      for (size_t i = 0; i < 4; ++i) op[i].run(x.data(), y.data(), rows);
      op[4].run(x.data(), hidden.data(), rows, qisa::PostOp::GeluErf);
      op[5].run(hidden.data(), y.data(), rows);
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * 2 * rows * 12 * d * d * kLayers);
}
BENCHMARK(BM_LayerProducts)
    ->ArgNames({"n_embd", "rows", "threads"})
    ->ArgsProduct({{128}, {64, 1024}, {1, 2}})
    ->ArgsProduct({{768}, {64}, {1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_StreamRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const size_t n = (static_cast<size_t>(state.range(1)) << 20) / sizeof(uint32_t);
  std::vector<uint32_t> a(n, 1u);
  for (auto _ : state) {
    uint32_t total = 0;  // integer sums vectorize (no rounding order to keep)
#pragma omp parallel for reduction(+ : total) num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; ++i) total += a[i];
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(uint32_t)));
}
BENCHMARK(BM_StreamRead)
    ->ArgNames({"threads", "mib"})
    ->ArgsProduct({{1, 2}, {8, 64, 256}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// How a few-row product's order of reading a weight matrix streams from
// memory (kSequentialRowsBytes, runtime/backends/cpu/rounded_linear.h): 48
// MiB of rows of `row_bytes` (a q8_0 row of 768 values is 816 bytes, here
// 832: whole lines; an f32 one 3072), read `in_flight` rows at a time in
// step (the four-row dots) or one row after another, 1 thread.
void BM_StreamRows(benchmark::State& state) {
  const auto in_flight = static_cast<size_t>(state.range(0));
  const size_t row = static_cast<size_t>(state.range(1)) / sizeof(uint32_t);
  const size_t rows = (size_t{48} << 20) / sizeof(uint32_t) / row / 4 * 4;
  std::vector<uint32_t> a(rows * row, 1u);
  for (auto _ : state) {
    uint32_t lanes[16] = {};  // one 64-byte line per step: a vector add
    for (size_t r = 0; r < rows; r += in_flight) {
      const uint32_t* p = a.data() + r * row;
      for (size_t i = 0; i < row; i += 16)  // one line of each row in turn
        for (size_t k = 0; k < in_flight; ++k)
          for (size_t j = 0; j < 16; ++j) lanes[j] += p[k * row + i + j];
    }
    benchmark::DoNotOptimize(lanes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * rows * row * sizeof(uint32_t)));
}
BENCHMARK(BM_StreamRows)
    ->ArgNames({"in_flight", "row_bytes"})
    ->ArgsProduct({{1, 2, 4}, {832, 3072}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The few-row product kernel alone (cpu_kernels().linear[dtype], one row,
// 1 thread) over `out` rows of `in` weights. mib 0: one matrix multiplied
// 64 times (kept in the caches as far as it fits: the kernel's compute
// bound for small matrices); else distinct matrices in turn, `mib` MiB per
// iteration (48: streamed from memory). Bytes/s are the weights' bytes.
void BM_LinearKernel(benchmark::State& state) {
  const auto dtype = static_cast<qisa_dtype>(state.range(0));
  const auto in = static_cast<size_t>(state.range(1)), out = static_cast<size_t>(state.range(2));
  const size_t stride = *qisa::row_bytes(dtype, in), matrix = stride * out;
  const size_t mib = static_cast<size_t>(state.range(3)), repeats = mib == 0 ? 64 : 1;
  const size_t count = std::max<size_t>(1, (mib << 20) / matrix);
  std::vector<float> row(in), x(in), y(out);
  for (size_t i = 0; i < in; ++i) {
    row[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
    x[i] = static_cast<float>((i * 53) % 97) / 48.0f - 1.0f;
  }
  std::vector<uint8_t> w(matrix * count);
  for (size_t r = 0; r < out * count; ++r) qisa::quantize_row(dtype, row.data(), in, w.data() + r * stride);
  const qisa::LinearKernel linear = qisa::cpu_kernels().linear[dtype];
  for (auto _ : state) {
    for (size_t m = 0; m < count * repeats; ++m)
      linear(y.data(), static_cast<int64_t>(out), x.data(), static_cast<int64_t>(in), w.data() + m % count * matrix,
             stride, nullptr, 1, static_cast<int64_t>(in), static_cast<int64_t>(out));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(qisa::dtype_name(dtype));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * matrix * count * repeats));
}
BENCHMARK(BM_LinearKernel)
    ->ArgNames({"dtype", "in", "out", "mib"})
    ->ArgsProduct({{0, 3, 4}, {768}, {768, 3072}, {0, 48}})
    ->ArgsProduct({{0, 3, 4}, {3072}, {768}, {0, 48}})
    ->Unit(benchmark::kMicrosecond);

// The many-row product kernel alone (cpu_kernels().batch[dtype]: pack and
// product, 1 thread) of `rows` rows by one matrix of `out` x `in` weights,
// which stays in the caches as far as it fits. Items/s: multiply-adds.
void BM_BatchKernel(benchmark::State& state) {
  const auto dtype = static_cast<qisa_dtype>(state.range(0));
  const int64_t rows = state.range(1), in = state.range(2), out = state.range(3);
  const qisa::BatchKernel& batch = qisa::cpu_kernels().batch[dtype];
  if (!batch.product) {
    state.SkipWithError("this kernel set has no batch kernel for the type");
    return;
  }
  const size_t stride = *qisa::row_bytes(dtype, static_cast<size_t>(in));
  std::vector<float> row(static_cast<size_t>(in)), x(static_cast<size_t>(rows * in)),
      y(static_cast<size_t>(rows * out));
  for (int64_t i = 0; i < rows * in; ++i) x[static_cast<size_t>(i)] = static_cast<float>((i * 53) % 97) / 48.0f - 1.0f;
  std::vector<uint8_t> w(stride * static_cast<size_t>(out));
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t i = 0; i < in; ++i)
      row[static_cast<size_t>(i)] = static_cast<float>((i * 37 + r) % 101) / 50.0f - 1.0f;
    qisa::quantize_row(dtype, row.data(), static_cast<size_t>(in), w.data() + static_cast<size_t>(r) * stride);
  }
  std::vector<uint8_t> packed(batch.bytes(rows, in)), work(batch.work_bytes(in));
  for (auto _ : state) {
    batch.pack(x.data(), in, rows, in, packed.data());
    batch.product(y.data(), out, packed.data(), rows, in, w.data(), stride, nullptr, out, work.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(qisa::dtype_name(dtype));
  state.SetItemsProcessed(state.iterations() * rows * in * out);
}
BENCHMARK(BM_BatchKernel)
    ->ArgNames({"dtype", "rows", "in", "out"})
    ->ArgsProduct({{3, 4}, {8, 64}, {512}, {2048}})
    ->ArgsProduct({{3, 4}, {8, 64}, {2048}, {512}})
    ->ArgsProduct({{3, 4}, {16, 64}, {128}, {64}})
    ->Unit(benchmark::kMicrosecond);

// The kernel sets this run uses (cpu_kernels() with QISA_CPU_KERNELS
// applied), for the report: "avx2 + AVX-512 + VNNI" and the like.
std::string kernels_in_use() {
  const qisa::CpuKernels& k = qisa::cpu_kernels();
  std::string s = k.name;
  if (const auto* a = qisa::avx512_kernels(); a && k.pauli_lanes == a->pauli_lanes) s += " + AVX-512";
  if (const auto* v = qisa::vnni_kernels(); v && k.linear[QISA_DTYPE_Q8_0] == v->linear[QISA_DTYPE_Q8_0])
    s += " + AVX-512 VNNI";
  if (const auto* amx = qisa::amx_batch_kernels();
      amx && amx[QISA_DTYPE_Q8_0].product && k.batch[QISA_DTYPE_Q8_0].product == amx[QISA_DTYPE_Q8_0].product)
    s += " + AMX";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_kernels", kernels_in_use());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
