// y = x W^T + b for one weight: oneDNN for large products, a vectorizable
// loop for small ones (fast engine), or the reference loop.
#pragma once

#include <cstdint>
#include <memory>

#include "matmul_dnnl.h"
#include "qisa.h"

namespace qisa {

struct LinearOp {
  const float* w = nullptr;  // [out, in]
  const float* b = nullptr;  // [out] or nullptr
  int64_t in = 0, out = 0;
  std::unique_ptr<DnnlLinear> fast;  // set for the fast engine

  // dnnl: nullptr for the reference engine.
  void init(const float* weight, const float* bias, int64_t in_dim, int64_t out_dim, DnnlContext* dnnl);
  void run(qisa_engine engine, const float* x, float* y, int64_t rows);
};

}  // namespace qisa
