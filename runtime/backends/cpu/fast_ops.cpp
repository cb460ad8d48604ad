#include "fast_ops.h"

#include <algorithm>
#include <cmath>

#include "cpu_kernels.h"

namespace qisa::fast {

void encode_amplitudes(float* psi, const float* x, int64_t R, int64_t d, int64_t D, bool normalized) {
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * d;
    float* p = psi + r * D;
    const float inv = normalized ? 1.0f / std::max(std::sqrt(cpu_kernels().dot(xr, xr, d)), 1e-12f) : 1.0f;
    for (int64_t i = 0; i < d; ++i) p[i] = xr[i] * inv;
    std::fill(p + d, p + D, 0.0f);
  }
}

int64_t select_positions(float* s, int64_t n, Sparsity sp, uint32_t* pos) {
  const auto k = static_cast<int64_t>(sp.top_k);
  // The k-th largest key t: every key above it is kept, and of the keys
  // equal to it the latest k - (number above) (ties to the later position).
  for (int64_t j = 0; j < n; ++j) pos[j] = selection_key(s[j]);
  std::nth_element(pos, pos + (n - k), pos + n);
  const uint32_t t = pos[n - k];
  int64_t above = 0;
  for (int64_t j = 0; j < n; ++j) above += selection_key(s[j]) > t;
  int64_t ties = k - above, first_tie = n;
  for (int64_t j = n - 1; j >= 0 && ties > 0; --j) {
    if (selection_key(s[j]) == t) {
      first_tie = j;
      --ties;
    }
  }
  const int64_t first_recent = n - static_cast<int64_t>(sp.window);
  int64_t m = 0;
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t key = selection_key(s[j]);
    if (key > t || (key == t && j >= first_tie) || j >= first_recent) {
      s[m] = s[j];
      pos[m++] = static_cast<uint32_t>(j);
    }
  }
  return m;
}

void attention_row(float* out, const float* q, const float* keys, const float* key_norms, const float* values,
                   int64_t n, int64_t h, int64_t k_stride, int64_t v_stride, int64_t norm_stride, const ScoreRule& rule,
                   float* scores, uint32_t* positions) {
  const CpuKernels& k = cpu_kernels();
  k.scores(scores, q, keys, key_norms, n, h, k_stride, norm_stride, rule.gaussian, rule.scale);
  if (rule.sparsity.sparse() && n > static_cast<int64_t>(rule.sparsity.top_k)) {
    // Only the kept positions' values are read: O(top_k + window) per head.
    const int64_t m = select_positions(scores, n, rule.sparsity, positions);
    k.attend(out, scores, positions, m, values, v_stride, h, rule.gaussian);
  } else {
    k.attend(out, scores, nullptr, n, values, v_stride, h, rule.gaussian);
  }
}

}  // namespace qisa::fast
