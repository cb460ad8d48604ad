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
  const DotKernel dot = cpu_kernels().dot;
  const float qn = gaussian ? dot(q, q, h) : 0.0f;
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    const float qk = dot(q, keys + j * k_stride, h);
    // Gaussian kernel: exp(-|q-k|^2) with |q-k|^2 = |q|^2 + |k|^2 - 2 q.k
    scores[j] = gaussian ? std::exp(-(qn + key_norms[j * norm_stride] - 2.0f * qk)) : scale * qk;
    mx = std::max(mx, scores[j]);
  }
  float total = 0.0f;
  for (int64_t j = 0; j < n; ++j) total += (scores[j] = std::exp(scores[j] - mx));
  const float inv = 1.0f / total;
  std::fill(out, out + h, 0.0f);
  for (int64_t j = 0; j < n; ++j) {  // out += a_j v_j: no reduction, vectorizes
    const float a = scores[j] * inv;
    const float* v = values + j * v_stride;
    for (int64_t i = 0; i < h; ++i) out[i] += a * v[i];
  }
}

}  // namespace qisa::fast
