// y = x W^T + b for one weight, on the weight as stored (any stored type):
// oneDNN on f32 weights for large products and the CPU kernels
// (cpu_kernels.h) on few rows of any type; many rows of a non-f32 weight are
// widened into a scratch shared by the backend's operations and run through
// oneDNN.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "matmul_dnnl.h"
#include "model.h"
#include "omp_threads.h"
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
  std::vector<float> weights;      // one weight dequantized, for many-row calls
  std::vector<float> activations;  // rows rounded as a type's products use them (cpu_kernels.h)
  std::vector<uint8_t> packed;     // rows packed for a BatchKernel
};

struct LinearOp {
  MatrixRef w;
  const float* b = nullptr;  // [out] or nullptr
  int64_t in = 0, out = 0;
  ThreadPolicy threads;  // the most threads one call may use, and when it pays
  std::unique_ptr<DnnlLinear> dnnl;
  // The same primitive made for one thread (when threads > 1): products
  // too small to gain from more threads run on it, without an OpenMP region.
  std::unique_ptr<DnnlLinear> dnnl_one;
  // Both again with `post` applied inside oneDNN (only when post is set).
  std::unique_ptr<DnnlLinear> dnnl_post, dnnl_post_one;
  LinearScratch* scratch = nullptr;

  // round: the stored type's products round the activations as its traits
  // say (false: keep them f32, for the quantum layers' unitaries).
  bool round = true;
  bool batch = false;  // many rows go through the type's BatchKernel (AMX, VNNI)

  PostOp post = PostOp::None;  // the activation callers usually ask for: fused into oneDNN's products

  void init(MatrixRef weight, const float* bias, int64_t in_dim, int64_t out_dim, ThreadPolicy max_threads,
            DnnlContext* dnnl, LinearScratch* scratch, bool round_activations = true, PostOp activation = PostOp::None);
  // y = act(x W^T + b).
  void run(const float* x, float* y, int64_t rows, PostOp act = PostOp::None);

 private:
  // The product, with `post` when `fused`; true when oneDNN applied it.
  bool multiply(const float* x, float* y, int64_t rows, bool fused);
};

}  // namespace qisa
