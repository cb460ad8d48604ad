// All quantum-inspired projections of one layer, evaluated together: the
// rows' amplitude encodings psi go through one GEMM against every
// projection's stacked [Re U; Im U] (unitary path) or dense Re O' (the
// observables path), then each projection's Pauli values are formed.
#pragma once

#include <cstdint>
#include <vector>

#include "fast_ops.h"
#include "linear_op.h"
#include "model.h"

namespace qisa {

class QuantumLayer {
 public:
  // All projections share the input width d and produce h values each.
  QuantumLayer(std::vector<const QuantumProjection*> projections, int64_t d, int64_t h, qisa_value_path path,
               qisa_engine engine, DnnlContext* dnnl, int64_t max_rows);

  size_t size() const { return projections_.size(); }
  // u [R, d] -> projection p's values of row r at dest[p] + r * stride.
  void run(const float* u, int64_t R, float* const* dest, int64_t stride);

 private:
  std::vector<const QuantumProjection*> projections_;
  int64_t d_, h_, D_;
  qisa_value_path path_;
  qisa_engine engine_;
  bool normalized_;
  std::vector<float> stacked_;  // the GEMM's weight
  LinearOp gemm_;
  std::vector<fast::PauliPlan> plans_;
  std::vector<float> psi_, out_, scratch_;
};

}  // namespace qisa
