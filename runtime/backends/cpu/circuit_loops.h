// The loops of the gate-by-gate circuit (CircuitKernel, cpu_kernels.h),
// included by both kernel files: compiled once for the baseline target and
// once with AVX2/FMA, where the compiler vectorizes them 8 wide. Internal
// linkage and no library calls, so the AVX2 copy is never shared with the
// rest of the library.
#pragma once

#include <cstdint>

#include "cpu_kernels.h"

namespace qisa {
namespace {

// One complex gate on the pairs (a[t], b[t]), t < len, in split real and
// imaginary planes.
inline void circuit_complex_pairs(float* __restrict ar, float* __restrict ai, float* __restrict br,
                                  float* __restrict bi, int64_t len, const float* g) {
  const float r00 = g[0], i00 = g[1], r01 = g[2], i01 = g[3], r10 = g[4], i10 = g[5], r11 = g[6], i11 = g[7];
  for (int64_t t = 0; t < len; ++t) {
    const float xr = ar[t], xi = ai[t], yr = br[t], yi = bi[t];
    ar[t] = r00 * xr - i00 * xi + r01 * yr - i01 * yi;
    ai[t] = r00 * xi + i00 * xr + r01 * yi + i01 * yr;
    br[t] = r10 * xr - i10 * xi + r11 * yr - i11 * yi;
    bi[t] = r10 * xi + i10 * xr + r11 * yi + i11 * yr;
  }
}

// RY on the pairs (a[t], b[t]) of one real plane.
inline void circuit_rotate_pairs(float* __restrict a, float* __restrict b, int64_t len, float c, float s) {
  for (int64_t t = 0; t < len; ++t) {
    const float x = a[t], y = b[t];
    a[t] = c * x - s * y;
    b[t] = s * x + c * y;
  }
}

// A K x K complex matrix ([column][row]) on each run of K amplitudes, K <= 8.
inline void circuit_complex_runs(float* __restrict xr, float* __restrict xi, int64_t D, int64_t K,
                                 const float* __restrict m_re, const float* __restrict m_im) {
  for (int64_t i0 = 0; i0 < D; i0 += K) {
    float yr[8] = {}, yi[8] = {};
    for (int64_t c = 0; c < K; ++c) {
      const float ar = xr[i0 + c], ai = xi[i0 + c];
      const float* mr = m_re + c * K;
      const float* mi = m_im + c * K;
      for (int64_t r = 0; r < 8; ++r) {
        yr[r] += mr[r & (K - 1)] * ar - mi[r & (K - 1)] * ai;
        yi[r] += mr[r & (K - 1)] * ai + mi[r & (K - 1)] * ar;
      }
    }
    for (int64_t r = 0; r < K; ++r) {
      xr[i0 + r] = yr[r];
      xi[i0 + r] = yi[r];
    }
  }
}

// A K x K real matrix ([column][row]) on each run of K values of one plane.
inline void circuit_real_runs(float* __restrict x, int64_t D, int64_t K, const float* __restrict m) {
  for (int64_t i0 = 0; i0 < D; i0 += K) {
    float y[8] = {};
    for (int64_t c = 0; c < K; ++c) {
      const float a = x[i0 + c];
      const float* mc = m + c * K;
      for (int64_t r = 0; r < 8; ++r) y[r] += mc[r & (K - 1)] * a;
    }
    for (int64_t r = 0; r < K; ++r) x[i0 + r] = y[r];
  }
}

inline void circuit_apply(const CircuitPlan& plan, const float* psi, int64_t d, float* re, float* im, float* scratch) {
  const int64_t D = plan.D, n = plan.n, K = plan.K;
  float* xr = scratch;
  float* xi = scratch + D;
  for (int64_t j = 0; j < D; ++j) {
    xr[j] = j < d ? psi[j] : 0.0f;
    xi[j] = 0.0f;
  }
  // L1: qubit j acts on the bit b = 2^(n-1-j) of a basis index; the last
  // `low` qubits together.
  circuit_complex_runs(xr, xi, D, K, plan.l1_low_re, plan.l1_low_im);
  for (int64_t j = 0; j + plan.low < n; ++j) {
    const int64_t b = int64_t{1} << (n - 1 - j);
    for (int64_t i0 = 0; i0 < D; i0 += 2 * b)
      circuit_complex_pairs(xr + i0, xi + i0, xr + i0 + b, xi + i0 + b, b, plan.l1 + 8 * j);
  }
  for (int64_t s = 0; s < D; ++s) {  // P
    re[s] = xr[plan.inv_perm[s]];
    im[s] = xi[plan.inv_perm[s]];
  }
  circuit_real_runs(re, D, K, plan.l3_low);  // L3
  circuit_real_runs(im, D, K, plan.l3_low);
  for (int64_t j = 0; j + plan.low < n; ++j) {
    const int64_t b = int64_t{1} << (n - 1 - j);
    for (int64_t i0 = 0; i0 < D; i0 += 2 * b) {
      circuit_rotate_pairs(re + i0, re + i0 + b, b, plan.l3[2 * j], plan.l3[2 * j + 1]);
      circuit_rotate_pairs(im + i0, im + i0 + b, b, plan.l3[2 * j], plan.l3[2 * j + 1]);
    }
  }
}

}  // namespace
}  // namespace qisa
