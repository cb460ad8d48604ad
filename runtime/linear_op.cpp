

#include "linear_op.h"

#include <omp.h>

#include <algorithm>

#include "cpu_kernels.h"
#include "dtype.h"
#include "error.h"
#include "reference_ops.h"

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
// Own kernels split the output columns over threads from this much work.
constexpr int64_t kParallelMinMacs = int64_t{1} << 16;

void LinearOp::init(MatrixRef weight, const float* weight_f32, const float* bias, int64_t in_dim, int64_t out_dim,
                    DnnlContext* dnnl, LinearScratch* s) {
  w = weight;
  w_f32 = weight_f32;
  b = bias;
  in = in_dim;
  out = out_dim;
  scratch = s;
  if (!dnnl) {
    if (!w_f32) fail(QISA_ERR_INTERNAL, "linear: the reference engine needs f32 weights");
    return;
  }
  if (w.dtype == QISA_DTYPE_F32) {
    fast = std::make_unique<DnnlLinear>(*dnnl, reinterpret_cast<const float*>(w.data), b, in, out,
                                        static_cast<int64_t>(w.row_bytes / sizeof(float)));
    return;
  }
  if (!scratch) fail(QISA_ERR_INTERNAL, "linear: a quantized weight needs scratch");
  const auto n = static_cast<size_t>(in * out);
  if (scratch->weights.size() < n) scratch->weights.resize(n);
  // The weight handle is re-pointed at the scratch on every call.
  fast = std::make_unique<DnnlLinear>(*dnnl, nullptr, b, in, out);
}

void LinearOp::run(qisa_engine engine, const float* x, float* y, int64_t rows) {
  if (engine == QISA_ENGINE_REFERENCE || !fast) {
    ref::linear(y, x, w_f32, b, rows, in, out);
    return;
  }
  const int64_t macs = rows * in * out;
  if (w.dtype == QISA_DTYPE_F32 && macs >= kDnnlMinMacs && rows >= kDnnlMinRows) {
    fast->run(x, y, rows);
    return;
  }
  const CpuKernels& k = cpu_kernels();
  if (w.dtype != QISA_DTYPE_F32 && rows >= kDequantMinRows) {
    float* dense = scratch->weights.data();
    const WidenKernel widen = w.dtype == QISA_DTYPE_F16    ? k.widen_f16
                              : w.dtype == QISA_DTYPE_BF16 ? k.widen_bf16
                                                           : k.widen_q8;
    // The expansion is memory-bound and as large as the weight: split over
    // the context's threads like the product that follows.
    const int wt = in * out >= kParallelMinMacs ? omp_get_max_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(wt) if (wt > 1)
    for (int64_t o = 0; o < out; ++o) widen(w.data + static_cast<size_t>(o) * w.row_bytes, in, dense + o * in);
    fast->run(x, y, rows, dense);
    return;
  }
  const int threads = macs >= kParallelMinMacs ? omp_get_max_threads() : 1;
  auto columns = [&](int64_t o0, int64_t n) {
    const uint8_t* wc = w.data + static_cast<size_t>(o0) * w.row_bytes;
    const float* bc = b ? b + o0 : nullptr;
    const LinearKernel fn = w.dtype == QISA_DTYPE_F32    ? k.linear_f32
                            : w.dtype == QISA_DTYPE_F16  ? k.linear_f16
                            : w.dtype == QISA_DTYPE_BF16 ? k.linear_bf16
                                                         : k.linear_q8;
    fn(y + o0, out, x, in, wc, w.row_bytes, bc, rows, in, n);
  };
  if (threads <= 1) {  // no OpenMP region at all: its fixed cost dominates small products
    columns(0, out);
    return;
  }
  // Chunks of whole 8-column groups, one per thread.
  const int64_t chunk = std::max<int64_t>(8, (out / threads + 7) / 8 * 8);
  const int64_t chunks = (out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t c = 0; c < chunks; ++c) columns(c * chunk, std::min(chunk, out - c * chunk));
}

}  // namespace qisa
