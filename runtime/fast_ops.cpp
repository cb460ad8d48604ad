#include "fast_ops.h"

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

}  // namespace qisa::fast
