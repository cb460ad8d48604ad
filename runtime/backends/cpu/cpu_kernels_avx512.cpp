// AVX-512 F/DQ/BW/VL kernels that need no VNNI: the Pauli sums of small
// states with the strings in vector lanes, and of many rows with the rows
// in vector lanes. This file alone is compiled
// with those instructions and is entered only after avx512_kernels()
// checked the CPU and the OS. cpu_kernels() adds its entries to the AVX2
// set.
#include <immintrin.h>

#include "avx512_support.h"
#include "cpu_kernels.h"
#include "rows_in_lanes.h"

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

// Sign bits of lane k (of 16) where popcount(k & m) is odd, per m < 16.
struct LaneSigns16 {
  alignas(64) uint32_t mask[16][16];
};
constexpr LaneSigns16 make_lane_signs16() {
  LaneSigns16 t{};
  for (int m = 0; m < 16; ++m)
    for (int k = 0; k < 16; ++k)
      t.mask[m][k] = (__builtin_popcount(static_cast<unsigned>(k & m)) & 1) ? 0x80000000u : 0u;
  return t;
}
constexpr LaneSigns16 kLaneSigns16 = make_lane_signs16();

// f(t0, v) for each block of 16 products v = Re or Im of conj(phi[j ^ x])
// phi[j] over the states a group sums over (one row, D >= 32), t0 the
// block's first index among them: 16 consecutive states, their partners
// one permuted block; a halved group's runs of 8 (bit 3) two at a time.
template <bool IM, class F>
inline void row_blocks(const PauliPlanGroup& g, int64_t D, const float* re, const float* im, F f) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const auto x = static_cast<int64_t>(g.x);
  auto product = [](__m512 rj, __m512 ij, __m512 rx, __m512 ix) {
    return IM ? _mm512_fmsub_ps(rx, ij, _mm512_mul_ps(ix, rj)) : _mm512_fmadd_ps(rx, rj, _mm512_mul_ps(ix, ij));
  };
  if (g.bit == 3) {  // partners 8 further, x mod 8 apart
    const __m512i idx = _mm512_xor_si512(iota, _mm512_set1_epi32(static_cast<int>(x & 7)));
    auto pair = [](const float* a) {
      return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(a)), _mm256_loadu_ps(a + 16), 1);
    };
    for (int64_t j0 = 0, t0 = 0; j0 < D; j0 += 32, t0 += 16)
      f(t0, product(pair(re + j0), pair(im + j0), _mm512_permutexvar_ps(idx, pair(re + j0 + 8)),
                    _mm512_permutexvar_ps(idx, pair(im + j0 + 8))));
    return;
  }
  const __m512i idx = _mm512_xor_si512(iota, _mm512_set1_epi32(static_cast<int>(x & 15)));
  const int64_t high = x & ~int64_t{15}, run = g.bit < 0 ? D : int64_t{1} << g.bit;
  for (int64_t base = 0, t0 = 0; base < D; base += 2 * run)
    for (int64_t j0 = base; j0 < base + run; j0 += 16, t0 += 16) {
      const int64_t jx = j0 ^ high;
      f(t0, product(_mm512_loadu_ps(re + j0), _mm512_loadu_ps(im + j0),
                    _mm512_permutexvar_ps(idx, _mm512_loadu_ps(re + jx)),
                    _mm512_permutexvar_ps(idx, _mm512_loadu_ps(im + jx))));
    }
}

// C strings of a group from plan string `first`, one row: each string's
// signed sum in a register (a sign per lane from Z mod 16, one per block
// from the parity of its index), one horizontal sum at the end.
template <int C, bool IM>
void row_direct(const PauliPlan& plan, const PauliPlanGroup& g, int32_t first, const float* re, const float* im,
                float* out) {
  const __m512 flip = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  __m512 acc[C], lane_sign[C];
  for (int c = 0; c < C; ++c) {
    acc[c] = _mm512_setzero_ps();
    lane_sign[c] = _mm512_castsi512_ps(_mm512_load_si512(kLaneSigns16.mask[plan.z[first + c] & 15]));
  }
  row_blocks<IM>(g, plan.D, re, im, [&](int64_t t0, __m512 v) {
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const bool odd = __builtin_popcountll(static_cast<uint64_t>(t0) & plan.z[first + c]) & 1;
      acc[c] = _mm512_add_ps(acc[c], _mm512_xor_ps(v, odd ? _mm512_xor_ps(lane_sign[c], flip) : lane_sign[c]));
    }
  });
  for (int c = 0; c < C; ++c) out[plan.out[first + c]] = plan.scale[first + c] * _mm512_reduce_add_ps(acc[c]);
}
using RowDirect = void (*)(const PauliPlan&, const PauliPlanGroup&, int32_t, const float*, const float*, float*);
template <int C>
constexpr RowDirect kRowDirect[2] = {row_direct<C, false>, row_direct<C, true>};
constexpr const RowDirect* kRowDirectKernels[8] = {kRowDirect<1>, kRowDirect<2>, kRowDirect<3>, kRowDirect<4>,
                                                   kRowDirect<5>, kRowDirect<6>, kRowDirect<7>, kRowDirect<8>};

// A walsh group, one row: its products into p, the transform (strides 16
// and up through memory, 1 to 8 in registers), each string's sum at its Z.
template <bool IM>
void row_walsh(const PauliPlan& plan, const PauliPlanGroup& g, const float* re, const float* im, float* out, float* p) {
  const int64_t n = g.bit < 0 ? plan.D : plan.D / 2;
  row_blocks<IM>(g, plan.D, re, im, [&](int64_t t0, __m512 v) { _mm512_storeu_ps(p + t0, v); });
  for (int64_t h = 16; h < n; h *= 2)
    for (int64_t j0 = 0; j0 < n; j0 += 2 * h)
      for (int64_t j = j0; j < j0 + h; j += 16) {
        const __m512 a = _mm512_loadu_ps(p + j), b = _mm512_loadu_ps(p + j + h);
        _mm512_storeu_ps(p + j, _mm512_add_ps(a, b));
        _mm512_storeu_ps(p + j + h, _mm512_sub_ps(a, b));
      }
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i swap[4] = {_mm512_xor_si512(iota, _mm512_set1_epi32(1)), _mm512_xor_si512(iota, _mm512_set1_epi32(2)),
                           _mm512_xor_si512(iota, _mm512_set1_epi32(4)), _mm512_xor_si512(iota, _mm512_set1_epi32(8))};
  constexpr __mmask16 upper[4] = {0xAAAA, 0xCCCC, 0xF0F0, 0xFF00};  // lanes with the stride's bit set
  for (int64_t j = 0; j < n; j += 16) {
    __m512 v = _mm512_loadu_ps(p + j);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {  // (a, b) -> (a + b, a - b)
      const __m512 w = _mm512_permutexvar_ps(swap[k], v);
      v = _mm512_mask_sub_ps(_mm512_add_ps(v, w), upper[k], w, v);
    }
    _mm512_storeu_ps(p + j, v);
  }
  for (int32_t c = g.first; c < g.first + g.count; ++c) out[plan.out[c]] = plan.scale[c] * p[plan.z[c]];
}

// One row, states D >= 32 (smaller ones: pauli_lanes), 16 states per
// vector; groups of up to kPauliDirectStrings strings summed directly
// (several passes for more), larger ones (walsh) by the transform.
void pauli_sums(const PauliPlan& plan, const float* re, const float* im, float* out, float* p) {
  if (plan.D < 32) {
    pauli_lanes(plan, re, im, out, p);
    return;
  }
  for (int64_t gi = 0; gi < plan.n_groups; ++gi) {
    const PauliPlanGroup& g = plan.groups[gi];
    if (g.walsh) {
      (g.imaginary ? row_walsh<true> : row_walsh<false>)(plan, g, re, im, out, p);
      continue;
    }
    for (int32_t first = g.first; first < g.first + g.count; first += kPauliDirectStrings) {
      const int32_t left = g.first + g.count - first;
      const int32_t C = left < kPauliDirectStrings ? left : kPauliDirectStrings;
      kRowDirectKernels[C - 1][g.imaginary](plan, g, first, re, im, out);
    }
  }
}

// Per row: the encoding in one register, U psi as d broadcast
// multiply-adds of U's columns (two sums per plane so that consecutive
// FMAs do not wait on each other; 1 / |x| applied to phi, which is linear
// in psi), then pauli_lanes on phi from the stack.
void small_value_rows(const PauliPlan& plan, const float* u_cols, const float* x, int64_t ldx, int64_t d, int64_t rows,
                      bool normalized, float* out, int64_t stride) {
  alignas(64) float phi[2][16];
  const auto in = static_cast<__mmask16>((1u << d) - 1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    __m512 re0 = _mm512_setzero_ps(), im0 = re0, re1 = re0, im1 = re0;
    int64_t c = 0;
    for (; c + 1 < d; c += 2) {
      const __m512 a = _mm512_set1_ps(xr[c]), b = _mm512_set1_ps(xr[c + 1]);
      re0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(u_cols + c * 32), re0);
      im0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(u_cols + c * 32 + 16), im0);
      re1 = _mm512_fmadd_ps(b, _mm512_loadu_ps(u_cols + c * 32 + 32), re1);
      im1 = _mm512_fmadd_ps(b, _mm512_loadu_ps(u_cols + c * 32 + 48), im1);
    }
    if (c < d) {
      const __m512 a = _mm512_set1_ps(xr[c]);
      re0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(u_cols + c * 32), re0);
      im0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(u_cols + c * 32 + 16), im0);
    }
    __m512 re = _mm512_add_ps(re0, re1), im = _mm512_add_ps(im0, im1);
    if (normalized) {
      const __m512 v = _mm512_maskz_loadu_ps(in, xr);
      const float norm = __builtin_sqrtf(_mm512_reduce_add_ps(_mm512_mul_ps(v, v)));
      const __m512 inv = _mm512_set1_ps(1.0f / (norm > 1e-12f ? norm : 1e-12f));
      re = _mm512_mul_ps(re, inv);
      im = _mm512_mul_ps(im, inv);
    }
    _mm512_store_ps(phi[0], re);
    _mm512_store_ps(phi[1], im);
    pauli_lanes(plan, phi[0], phi[1], out + r * stride, nullptr);
  }
}

// v[i] lane l <-> v[l] lane i: at each stage s, rows i and i + s (bit s
// of i clear) swap the lanes with bit s set in row i for those with it
// clear in row i + s (the off-diagonal s x s blocks of each 2s x 2s block),
// two 2-source permutes per pair of rows.
struct TransposeIndices {
  alignas(64) int32_t lo[4][16];
  alignas(64) int32_t hi[4][16];
};
constexpr TransposeIndices make_transpose_indices() {
  TransposeIndices t{};
  for (int k = 0; k < 4; ++k) {
    const int s = 8 >> k;
    for (int l = 0; l < 16; ++l) {
      t.lo[k][l] = (l & s) ? 16 + l - s : l;
      t.hi[k][l] = (l & s) ? 16 + l : l + s;
    }
  }
  return t;
}
constexpr TransposeIndices kTranspose = make_transpose_indices();

// Unrolled fully so that v stays in registers (a rolled loop spilled v to
// the stack and branched on i & s).
inline void transpose16(__m512 v[16]) {
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const int s = 8 >> k;
    const __m512i lo = _mm512_load_si512(kTranspose.lo[k]), hi = _mm512_load_si512(kTranspose.hi[k]);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      if (i & s) continue;
      const __m512 a = v[i], b = v[i + s];
      v[i] = _mm512_permutex2var_ps(a, lo, b);
      v[i + s] = _mm512_permutex2var_ps(a, hi, b);
    }
  }
}

// The 16-lane vector for rows_in_lanes.h.
struct Lanes16 {
  using T = __m512;
  static constexpr int64_t kLanes = 16;
  // 4 sums for a group of one string, 2 for more (32 registers).
  static constexpr int accumulators(int c) { return c == 1 ? 4 : 2; }
  static T loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float f) { return _mm512_set1_ps(f); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T fmsub(T a, T b, T c) { return _mm512_fmsub_ps(a, b, c); }
  static T fnmadd(T a, T b, T c) { return _mm512_fnmadd_ps(a, b, c); }
  static T sqrt(T a) { return _mm512_sqrt_ps(a); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
};

// The transposes for rows_in_lanes.h: 16 x 16 blocks in registers.
struct Transposes16 {
  static void to_lanes(const float* src, int64_t ld, int64_t rows, int64_t cols, float* T) {
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      const int64_t m = cols - c0 < 16 ? cols - c0 : 16;
      const auto mask = static_cast<__mmask16>(m == 16 ? 0xffff : (1u << m) - 1);
      // Unrolled with masks rather than branches (a rolled loop kept v on the
      // stack and copied it out with rep movs); a row past `rows` loads
      // nothing (mask 0) from row 0's address.
      __m512 v[16];
#pragma GCC unroll 16
      for (int64_t i = 0; i < 16; ++i)
        v[i] = _mm512_maskz_loadu_ps(i < rows ? mask : 0, src + (i < rows ? i : 0) * ld + c0);
      transpose16(v);
#pragma GCC unroll 16
      for (int64_t i = 0; i < 16; ++i)
        if (i < m) _mm512_storeu_ps(T + (c0 + i) * 16, v[i]);
    }
  }
  static void to_rows(const float* O, int64_t strings, int64_t rows, float* out, int64_t stride) {
    for (int64_t k0 = 0; k0 < strings; k0 += 16) {
      const int64_t m = strings - k0 < 16 ? strings - k0 : 16;
      const auto cols = static_cast<__mmask16>(m == 16 ? 0xffff : (1u << m) - 1);
      __m512 v[16];
#pragma GCC unroll 16
      for (int64_t i = 0; i < 16; ++i) v[i] = i < m ? _mm512_loadu_ps(O + (k0 + i) * 16) : _mm512_setzero_ps();
      transpose16(v);
#pragma GCC unroll 16
      for (int64_t i = 0; i < 16; ++i)
        if (i < rows) _mm512_mask_storeu_ps(out + i * stride + k0, cols, v[i]);
    }
  }
};

void pauli_rows(const PauliPlan& plan, const float* phi, int64_t ld, int64_t rows, float* out, int64_t stride,
                float* scratch) {
  rows_in_lanes::pauli_rows<Lanes16, Transposes16>(plan, phi, ld, rows, out, stride, scratch);
}

void circuit_pauli_rows(const CircuitPlan& c, const PauliPlan& plan, const float* x, int64_t ld, int64_t d,
                        int64_t rows, bool normalized, float* out, int64_t stride, float* scratch) {
  rows_in_lanes::circuit_pauli_rows<Lanes16, Transposes16>(c, plan, x, ld, d, rows, normalized, out, stride, scratch);
}

}  // namespace

const CpuKernels* avx512_kernels() {
  static const CpuKernels table = [] {
    CpuKernels k{};
    k.name = "avx512";
    k.pauli_lanes = pauli_lanes;
    k.pauli_sums = pauli_sums;
    k.pauli_rows = pauli_rows;
    k.circuit_pauli_rows = circuit_pauli_rows;
    k.small_value_rows = small_value_rows;
    return k;
  }();
  static const bool ok = [] {
    Cpuid7 leaf7;
    return avx512_usable(&leaf7);
  }();
  return ok ? &table : nullptr;
}

}  // namespace qisa
