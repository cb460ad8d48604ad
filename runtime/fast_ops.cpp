#include "fast_ops.h"

#include <algorithm>
#include <bit>

namespace qisa::fast {

namespace {

inline float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void linear_small(float* out, const float* in, const float* w, const float* bias, int64_t R, int64_t I, int64_t O) {
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t o = 0; o < O; ++o) out[r * O + o] = (bias ? bias[o] : 0.0f) + dot(in + r * I, w + o * I, I);
  }
}

PauliPlan::PauliPlan(const std::vector<PauliString>& paulis, int64_t D) : D_(D) {
  const auto h = static_cast<int64_t>(paulis.size());
  coef_.resize(static_cast<size_t>(h * D));
  for (int64_t k = 0; k < h; ++k) {
    const PauliString p = paulis[static_cast<size_t>(k)];
    auto it = std::find(masks_.begin(), masks_.end(), p.x_mask);
    if (it == masks_.end()) it = masks_.insert(masks_.end(), p.x_mask);
    group_.push_back(static_cast<int32_t>(it - masks_.begin()));
    // Re(i^ny S): ny%4 = 0 -> +Re S, 1 -> -Im S, 2 -> -Re S, 3 -> +Im S.
    const int ny = std::popcount(p.x_mask & p.z_mask) & 3;
    use_im_.push_back(ny & 1);
    const float phase = (ny == 1 || ny == 2) ? -1.0f : 1.0f;
    for (int64_t j = 0; j < D; ++j) {
      const bool odd = std::popcount(static_cast<uint64_t>(j) & p.z_mask) & 1;
      coef_[static_cast<size_t>(k * D + j)] = odd ? -phase : phase;
    }
  }
}

void PauliPlan::values(float* out, const float* phi_re, const float* phi_im, float* scratch) const {
  const int64_t D = D_;
  for (size_t g = 0; g < masks_.size(); ++g) {  // conj(phi[j ^ x]) * phi[j]
    const auto x = static_cast<int64_t>(masks_[g]);
    float* pr = scratch + 2 * static_cast<int64_t>(g) * D;
    float* pi = pr + D;
    for (int64_t j = 0; j < D; ++j) {
      const float ar = phi_re[j ^ x], ai = phi_im[j ^ x];
      pr[j] = ar * phi_re[j] + ai * phi_im[j];
      pi[j] = ar * phi_im[j] - ai * phi_re[j];
    }
  }
  for (size_t k = 0; k < group_.size(); ++k) {
    const float* prod = scratch + 2 * static_cast<int64_t>(group_[k]) * D + (use_im_[k] ? D : 0);
    out[k] = dot(coef_.data() + static_cast<int64_t>(k) * D, prod, D);
  }
}

}  // namespace qisa::fast
