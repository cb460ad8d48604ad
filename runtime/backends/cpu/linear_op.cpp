

#include "linear_op.h"

#include <omp.h>

#include <algorithm>

#include "backends/ref/reference_ops.h"
#include "cpu_kernels.h"
#include "dtype.h"
#include "error.h"
#include "omp_threads.h"

namespace qisa {

// Below this many multiply-adds a oneDNN call costs more than it saves
// (measured: a 16x64 decode-step product takes ~4 us through oneDNN, well
// under 1 us as a plain loop).
constexpr int64_t kDnnlMinMacs = int64_t{1} << 15;
// ... nor below this many rows (measured: the AVX2 loop beats its GEMV for
// one decode row, e.g. 74 vs 89 us per n_embd-128 CSA step).
constexpr int64_t kDnnlMinRows = 4;
// From this many rows a non-f32 weight is expanded into the scratch and
// multiplied by oneDNN: the expansion is then a small part of the work.
constexpr int64_t kDequantMinRows = 16;
// Many-row products of a weight whose kernels round the activations
// (Q8_0, Q4_0) round this many rows into the scratch per oneDNN call
// (context_budget.cpp counts it).
constexpr int64_t kRoundedRows = 256;
// oneDNN products run on the context's threads from this much work, on
// one thread below it (measured: bench/thread_ratio).
constexpr int64_t kDnnlParallelMinMacs = int64_t{1} << 22;
// Own kernels split the output columns over threads from this much work.
constexpr int64_t kParallelMinMacs = int64_t{1} << 16;

void LinearOp::init(MatrixRef weight, const float* bias, int64_t in_dim, int64_t out_dim, ThreadPolicy max_threads,
                    DnnlContext* ctx, LinearScratch* s, bool round_activations, PostOp activation) {
  w = weight;
  post = activation;
  round = round_activations && cpu_kernels().activations[w.dtype] != nullptr;
  b = bias;
  in = in_dim;
  out = out_dim;
  threads = max_threads;
  scratch = s;
  auto make = [&](const float* wf, int64_t ld) {
    dnnl = std::make_unique<DnnlLinear>(*ctx, wf, b, in, out, ld);
    if (post != PostOp::None) dnnl_post = std::make_unique<DnnlLinear>(*ctx, wf, b, in, out, ld, post);
    if (threads.count > 1) {
      const OmpThreadsScope one(1);
      dnnl_one = std::make_unique<DnnlLinear>(*ctx, wf, b, in, out, ld);
      if (post != PostOp::None) dnnl_post_one = std::make_unique<DnnlLinear>(*ctx, wf, b, in, out, ld, post);
    }
  };
  if (w.dtype == QISA_DTYPE_F32) {
    make(reinterpret_cast<const float*>(w.data), static_cast<int64_t>(w.row_bytes / sizeof(float)));
    return;
  }
  if (!scratch) fail(QISA_ERR_INTERNAL, "linear: a quantized weight needs scratch");
  const BatchKernel& bk = cpu_kernels().batch[w.dtype];
  batch = round && bk.product && in <= kBatchMaxIn;
  if (batch) {  // many rows: packed rows, then one work area per thread; the weight as stored
    const size_t bytes = bk.bytes(kRoundedRows, in) + static_cast<size_t>(threads.count) * bk.work_bytes(in);
    if (scratch->packed.size() < bytes) scratch->packed.resize(bytes);
  } else {  // many rows: the rounded rows (if the type rounds them) and the widened weight
    const auto a = static_cast<size_t>(kRoundedRows * in), n = static_cast<size_t>(in * out);
    if (round && scratch->activations.size() < a) scratch->activations.resize(a);
    if (scratch->weights.size() < n) scratch->weights.resize(n);
  }
  // The weight handle is re-pointed at the scratch on every call; a batch
  // kernel needs no oneDNN primitive.
  if (!batch) make(nullptr, 0);
}

bool LinearOp::multiply(const float* x, float* y, int64_t rows, bool fused) {
  const int64_t macs = rows * in * out;
  // The oneDNN primitive for this call: fused or not, one thread or all.
  auto matmul = [&]() -> DnnlLinear& {
    const bool one = dnnl_one && !threads.split(macs, kDnnlParallelMinMacs);
    return fused ? (one ? *dnnl_post_one : *dnnl_post) : (one ? *dnnl_one : *dnnl);
  };
  if (w.dtype == QISA_DTYPE_F32 && macs >= kDnnlMinMacs && rows >= kDnnlMinRows) {
    matmul().run(x, y, rows);
    return fused;  // oneDNN applied the post-op if asked
  }
  const CpuKernels& k = cpu_kernels();
  if (batch && rows >= k.batch[w.dtype].min_rows) {
    // The stored weight as it is (AMX, VNNI, AVX2): rows packed kRoundedRows at a time,
    // outputs split over threads in whole 16-output tiles.
    const BatchKernel& bk = k.batch[w.dtype];
    uint8_t* packed = scratch->packed.data();
    uint8_t* work = packed + bk.bytes(kRoundedRows, in);
    const size_t work_bytes = bk.work_bytes(in);
    for (int64_t r0 = 0; r0 < rows; r0 += kRoundedRows) {
      const int64_t g = std::min(kRoundedRows, rows - r0);
      bk.pack(x + r0 * in, in, g, in, packed);
      const int nt = threads.split(g * in * out, kParallelMinMacs) ? threads.count : 1;
      const int64_t chunk = std::max<int64_t>(16, (out / nt + 15) / 16 * 16);
      const int64_t chunks = (out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t o0 = c * chunk;
        bk.product(y + r0 * out + o0, out, packed, g, in, w.data + static_cast<size_t>(o0) * w.row_bytes, w.row_bytes,
                   b ? b + o0 : nullptr, std::min(chunk, out - o0),
                   work + static_cast<size_t>(c) * work_bytes);  // chunks <= nt <= threads
      }
    }
    return false;
  }
  if (w.dtype != QISA_DTYPE_F32 && rows >= kDequantMinRows) {
    float* dense = scratch->weights.data();
    const WidenKernel widen = k.widen[w.dtype];
    // The expansion is memory-bound and as large as the weight: split over
    // the context's threads like the product that follows.
    const int wt = threads.split(in * out, kParallelMinMacs) ? threads.count : 1;
#pragma omp parallel for schedule(static) num_threads(wt) if (wt > 1)
    for (int64_t o = 0; o < out; ++o) widen(w.data + static_cast<size_t>(o) * w.row_bytes, in, dense + o * in);
    if (!round) {
      matmul().run(x, y, rows, dense);
      return fused;
    }
    const ActivationsKernel round_rows = k.activations[w.dtype];
    // The rows as the few-row kernel sees them, kRoundedRows at a time.
    float* xr = scratch->activations.data();
    for (int64_t r0 = 0; r0 < rows; r0 += kRoundedRows) {
      const int64_t g = std::min(kRoundedRows, rows - r0);
      const int rt = threads.split(g * in, kParallelMinMacs) ? threads.count : 1;
#pragma omp parallel for schedule(static) num_threads(rt) if (rt > 1)
      for (int64_t r = 0; r < g; ++r) round_rows(x + (r0 + r) * in, in, xr + r * in);
      matmul().run(xr, y + r0 * out, g, dense);
    }
    return fused;
  }
  const int nt = threads.split(macs, kParallelMinMacs) ? threads.count : 1;
  auto columns = [&](int64_t o0, int64_t n) {
    const uint8_t* wc = w.data + static_cast<size_t>(o0) * w.row_bytes;
    const float* bc = b ? b + o0 : nullptr;
    const LinearKernel fn =
        round || !k.linear_f32_activations[w.dtype] ? k.linear[w.dtype] : k.linear_f32_activations[w.dtype];
    fn(y + o0, out, x, in, wc, w.row_bytes, bc, rows, in, n);
  };
  if (nt <= 1) {  // no OpenMP region at all: its fixed cost dominates small products
    columns(0, out);
    return false;
  }
  // Chunks of whole 8-column groups, one per thread.
  const int64_t chunk = std::max<int64_t>(8, (out / nt + 7) / 8 * 8);
  const int64_t chunks = (out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t c = 0; c < chunks; ++c) columns(c * chunk, std::min(chunk, out - c * chunk));
  return false;
}

void LinearOp::run(const float* x, float* y, int64_t rows, PostOp act) {
  if (multiply(x, y, rows, act != PostOp::None && act == post) || act == PostOp::None) return;
  if (act == PostOp::Relu) ref::relu(y, rows * out);
  if (act == PostOp::GeluErf) ref::gelu(y, rows * out);
}

}  // namespace qisa
