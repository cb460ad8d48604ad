#include "fast_ops.h"

#include <algorithm>
#include <cmath>

#include "cpu_kernels.h"

namespace qisa::fast {

namespace {

// Sum with 8 independent partial sums (vectorizable as written).
float sum(const float* x, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += x[i + k];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += x[i];
  return s;
}

}  // namespace

void layernorm(float* out, const float* x, const float* w, const float* b, int64_t R, int64_t d, float eps) {
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    const float mean = sum(xr, d) / static_cast<float>(d);
    for (int64_t i = 0; i < d; ++i) o[i] = xr[i] - mean;  // centred, then squared sum
    const float var = cpu_kernels().dot(o, o, d) / static_cast<float>(d);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < d; ++i) o[i] = o[i] * inv * w[i] + b[i];
  }
}

void attention_row(float* out, const float* q, const float* keys, const float* key_norms, const float* values,
                   int64_t n, int64_t h, int64_t k_stride, int64_t v_stride, int64_t norm_stride, bool gaussian,
                   float scale, float* scores) {
  cpu_kernels().attention(out, q, keys, key_norms, values, n, h, k_stride, v_stride, norm_stride, gaussian, scale,
                          scores);
}

}  // namespace qisa::fast
