#include "linear_op.h"

#include "fast_ops.h"
#include "reference_ops.h"

namespace qisa {

// Below this many multiply-adds a oneDNN call costs more than it saves
// (measured: a 16x64 decode-step product takes ~4 us through oneDNN, well
// under 1 us as a plain loop).
constexpr int64_t kDnnlMinMacs = int64_t{1} << 15;

void LinearOp::init(const float* weight, const float* bias, int64_t in_dim, int64_t out_dim, DnnlContext* dnnl) {
  w = weight;
  b = bias;
  in = in_dim;
  out = out_dim;
  if (dnnl) fast = std::make_unique<DnnlLinear>(*dnnl, w, b, in, out);
}

void LinearOp::run(qisa_engine engine, const float* x, float* y, int64_t rows) {
  if (engine == QISA_ENGINE_REFERENCE) {
    ref::linear(y, x, w, b, rows, in, out);
  } else if (fast && rows * in * out >= kDnnlMinMacs) {
    fast->run(x, y, rows);
  } else {
    fast::linear_small(y, x, w, b, rows, in, out);
  }
}

}  // namespace qisa
