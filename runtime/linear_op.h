// y = x W^T + b for one weight, on the weight as stored (f32, f16, bf16 or
// Q8_0): the fast engine runs oneDNN on f32 weights for large products and
// the CPU kernels (cpu_kernels.h) on few rows of any type; many rows of a
// non-f32 weight are dequantized into a scratch shared by the engine's
// operations and run through oneDNN. The reference engine uses an f32 copy
// and the plain loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "matmul_dnnl.h"
#include "model.h"
#include "qisa.h"

namespace qisa {

// A row-major [out, in] matrix as stored; a row may be longer than `in`
// (only its first `in` values are used).
struct MatrixRef {
  qisa_dtype dtype = QISA_DTYPE_F32;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;

  static MatrixRef of(const float* w, int64_t in) {
    return {QISA_DTYPE_F32, reinterpret_cast<const uint8_t*>(w), static_cast<size_t>(in) * sizeof(float)};
  }
  static MatrixRef of(const TensorView& t) { return {t.dtype, t.data, static_cast<size_t>(t.row_stride())}; }
};

// Buffers shared by the operations of one engine, sized once at init.
struct LinearScratch {
  std::vector<float> weights;  // one weight dequantized, for many-row calls
};

struct LinearOp {
  MatrixRef w;
  const float* w_f32 = nullptr;  // f32 view for the reference engine (or nullptr)
  const float* b = nullptr;      // [out] or nullptr
  int64_t in = 0, out = 0;
  std::unique_ptr<DnnlLinear> fast;  // set for the fast engine
  LinearScratch* scratch = nullptr;

  // dnnl: nullptr for the reference engine, which needs w_f32.
  void init(MatrixRef weight, const float* weight_f32, const float* bias, int64_t in_dim, int64_t out_dim,
            DnnlContext* dnnl, LinearScratch* scratch);
  void init(const float* weight, const float* bias, int64_t in_dim, int64_t out_dim, DnnlContext* dnnl,
            LinearScratch* s) {
    init(MatrixRef::of(weight, in_dim), weight, bias, in_dim, out_dim, dnnl, s);
  }
  void run(qisa_engine engine, const float* x, float* y, int64_t rows);
};

}  // namespace qisa
