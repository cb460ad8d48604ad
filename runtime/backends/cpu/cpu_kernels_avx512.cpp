// AVX-512 F/DQ/BW/VL kernels that need no VNNI: the Pauli sums of small
// states with the strings in vector lanes. This file alone is compiled
// with those instructions and is entered only after avx512_kernels()
// checked the CPU and the OS. cpu_kernels() adds its entries to the AVX2
// set.
#include <immintrin.h>

#include "avx512_support.h"
#include "cpu_kernels.h"

namespace qisa {

namespace {

// Strings in lanes (PauliPlan lane_*, D <= 16): per state j, lane k takes
// phi[j ^ x_k] by one permute of the zero-padded state, Re or Im of
// conj(phi[j ^ x_k]) phi[j] by its flag and the sign of popcount(j & z_k)
// by a sign-bit mask; 16 strings per pass, their sums stored in order.
// (The groups of pauli_sums need one horizontal sum per string and a
// pass per X mask; here a D = 16 projection of 16 strings is 16 steps.)
void pauli_lanes(const PauliPlan& plan, const float* re, const float* im, float* out, float* /*scratch*/) {
  const int64_t D = plan.D, L = plan.lane_count;
  const auto states = static_cast<__mmask16>((1u << D) - 1);
  const __m512 r = _mm512_maskz_loadu_ps(states, re), m = _mm512_maskz_loadu_ps(states, im);
  for (int64_t c = 0; c < L; c += 16) {
    const __m512i x = _mm512_loadu_si512(plan.lane_x + c);
    const __mmask16 imag = _mm512_movepi32_mask(_mm512_loadu_si512(plan.lane_imag + c));
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    for (int64_t j = 0; j < D; ++j) {
      const __m512i idx = _mm512_xor_si512(x, _mm512_set1_epi32(static_cast<int>(j)));
      const __m512 pr = _mm512_permutexvar_ps(idx, r), pm = _mm512_permutexvar_ps(idx, m);
      const __m512 rj = _mm512_set1_ps(re[j]), mj = _mm512_set1_ps(im[j]);
      // conj(pr + i pm) (rj + i mj) = (pr rj + pm mj) + i (pr mj - pm rj)
      const __m512 vre = _mm512_fmadd_ps(pr, rj, _mm512_mul_ps(pm, mj));
      const __m512 vim = _mm512_fmsub_ps(pr, mj, _mm512_mul_ps(pm, rj));
      const __m512i sign = _mm512_loadu_si512(plan.lane_sign + j * L + c);
      const __m512 v =
          _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_mask_blend_ps(imag, vre, vim)), sign));
      if (j & 1)  // two accumulators: consecutive adds do not wait on each other
        a1 = _mm512_add_ps(a1, v);
      else
        a0 = _mm512_add_ps(a0, v);
    }
    const __m512 sum = _mm512_mul_ps(_mm512_add_ps(a0, a1), _mm512_loadu_ps(plan.lane_scale + c));
    const int64_t left = plan.strings - c;
    _mm512_mask_storeu_ps(out + c, static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1), sum);
  }
}

}  // namespace

const CpuKernels* avx512_kernels() {
  static const CpuKernels table = [] {
    CpuKernels k{};
    k.name = "avx512";
    k.pauli_lanes = pauli_lanes;
    return k;
  }();
  static const bool ok = [] {
    Cpuid7 leaf7;
    return avx512_usable(&leaf7);
  }();
  return ok ? &table : nullptr;
}

}  // namespace qisa
