// Fast CPU kernels for the pieces oneDNN does not cover well: small
// products (one decode row) and the Pauli sums. Tested against
// reference_ops through the engine (QISA_ENGINE_FAST vs _REFERENCE).
#pragma once

#include <cstdint>
#include <vector>

#include "circuit.h"

namespace qisa::fast {

// out[r][o] = bias[o] + in[r] . w[o], with 8 independent partial sums per dot
// product so the compiler can vectorize without reordering a single sum.
void linear_small(float* out, const float* in, const float* w, const float* bias, int64_t R, int64_t I, int64_t O);

// The h Pauli strings of one projection, grouped by X mask: strings that
// share a mask share the products conj(phi[j ^ x]) phi[j], so those are
// formed once per group and each string is then one signed dot product.
class PauliPlan {
 public:
  PauliPlan(const std::vector<PauliString>& paulis, int64_t D);
  // out [h] from phi = (re [D], im [D]); scratch holds 2 * groups * D floats.
  void values(float* out, const float* phi_re, const float* phi_im, float* scratch) const;
  int64_t scratch_size() const { return 2 * static_cast<int64_t>(masks_.size()) * D_; }

 private:
  int64_t D_;
  std::vector<uint64_t> masks_;  // distinct X masks
  std::vector<int32_t> group_;   // per string: its mask's index
  std::vector<uint8_t> use_im_;  // per string: needs Im(sum) (odd number of Y) or Re(sum)
  std::vector<float> coef_;      // [h, D]: phase sign * (-1)^popcount(j & z)
};

}  // namespace qisa::fast
