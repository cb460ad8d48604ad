// AVX-512 F/DQ/BW/VL kernels that need no VNNI: the Pauli sums of small
// states with the strings in vector lanes, and of many rows with the rows
// in vector lanes. This file alone is compiled
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

// Re or Im of conj(phi[jx]) phi[j] for the 16 rows of the transposed phi
// (T: [2 D][16], re then im): a at T + 16 j, b at T + 16 jx, the
// imaginary parts `im` floats further.
template <bool IM>
inline __m512 product16(const float* a, const float* b, int64_t im) {
  const __m512 rj = _mm512_loadu_ps(a), ij = _mm512_loadu_ps(a + im);
  const __m512 rx = _mm512_loadu_ps(b), ix = _mm512_loadu_ps(b + im);
  return IM ? _mm512_fmsub_ps(rx, ij, _mm512_mul_ps(ix, rj)) : _mm512_fmadd_ps(rx, rj, _mm512_mul_ps(ix, ij));
}

// The states a group sums over (every state, or the runs of 2^bit, bit
// >= 3, with that bit clear) in blocks of K (8, or 4 when D = 4): f(pj,
// px, off, t0) per block, pj at the block's first state in T, px at its
// partners' block (j ^ x for j in a block of K is that block plus
// k ^ (x mod K)), off[k] those offsets in floats, t0 the states before.
// The blocks keep the index arithmetic out of the per-state work.
template <int K, class F>
inline void state_blocks(const float* T, int64_t D, int bit, uint64_t x, F f) {
  int64_t off[K];
  for (int k = 0; k < K; ++k) off[k] = static_cast<int64_t>(static_cast<uint64_t>(k) ^ (x & (K - 1))) * 16;
  const auto high = static_cast<int64_t>(x & ~uint64_t{K - 1});
  const int64_t run = bit < 0 ? D : int64_t{1} << bit;
  for (int64_t base = 0, t = 0; base < D; base += 2 * run)
    for (int64_t j = base; j < base + run; j += K, t += K) f(T + j * 16, T + (j ^ high) * 16, off, t);
}

// A group of C <= kPauliDirectStrings strings (larger ones are walsh):
// each state's product once, into every string's sum with its
// coefficient (sign and scale); A sums per string (4 for one string, 2
// for more) so that consecutive FMAs do not wait on each other.
template <int C, bool IM, int K>
void group_direct(const PauliPlan& plan, const PauliPlanGroup& g, const float* T, float* O) {
  constexpr int A = C == 1 ? 4 : 2;
  const int64_t im = plan.D * 16;
  const float* coef = plan.coef + g.coef;
  __m512 acc[A][C];
  for (int a = 0; a < A; ++a)
    for (int c = 0; c < C; ++c) acc[a][c] = _mm512_setzero_ps();
  state_blocks<K>(T, plan.D, g.bit, g.x, [&](const float* pj, const float* px, const int64_t* off, int64_t t0) {
    const float* cf = coef + t0 * C;
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      const __m512 p = product16<IM>(pj + k * 16, px + off[k], im);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[k % A][c] = _mm512_fmadd_ps(p, _mm512_set1_ps(cf[k * C + c]), acc[k % A][c]);
    }
  });
  for (int c = 0; c < C; ++c) {
    __m512 sum = acc[0][c];
    for (int a = 1; a < A; ++a) sum = _mm512_add_ps(sum, acc[a][c]);
    _mm512_storeu_ps(O + plan.out[g.first + c] * 16, sum);
  }
}

// The group kernels by (string count - 1, imaginary, blocks of 4).
using GroupKernel = void (*)(const PauliPlan&, const PauliPlanGroup&, const float*, float*);
template <int C>
constexpr GroupKernel kDirect[2][2] = {{group_direct<C, false, 8>, group_direct<C, false, 4>},
                                       {group_direct<C, true, 8>, group_direct<C, true, 4>}};
constexpr const GroupKernel (*kDirectKernels[8])[2] = {kDirect<1>, kDirect<2>, kDirect<3>, kDirect<4>,
                                                       kDirect<5>, kDirect<6>, kDirect<7>, kDirect<8>};

// log2(M) levels of the lane-wise Walsh-Hadamard transform of the n
// vectors at P, from stride h, with M vectors in registers (a level at a
// time stored every vector twice per level; the stores bounded it).
template <int M>
void walsh_pass(float* P, int64_t n, int64_t h) {
  for (int64_t b0 = 0; b0 < n; b0 += M * h)
    for (int64_t j = b0; j < b0 + h; ++j) {
      __m512 v[M];
#pragma GCC unroll 8
      for (int k = 0; k < M; ++k) v[k] = _mm512_loadu_ps(P + (j + k * h) * 16);
#pragma GCC unroll 3
      for (int s = 1; s < M; s *= 2)
#pragma GCC unroll 8
        for (int k = 0; k < M; ++k)
          if (!(k & s)) {
            const __m512 a = v[k], b = v[k + s];
            v[k] = _mm512_add_ps(a, b);
            v[k + s] = _mm512_sub_ps(a, b);
          }
#pragma GCC unroll 8
      for (int k = 0; k < M; ++k) _mm512_storeu_ps(P + (j + k * h) * 16, v[k]);
    }
}

// A walsh group's products into P ([states summed][16]); X mask 0 (the Z
// strings): |phi[j]|^2 from half the loads.
template <bool IM, int K>
void walsh_products(const float* T, int64_t D, const PauliPlanGroup& g, float* P) {
  if (!IM && g.x == 0) {
    for (int64_t j = 0; j < D; ++j) {
      const __m512 r = _mm512_loadu_ps(T + j * 16), i = _mm512_loadu_ps(T + (D + j) * 16);
      _mm512_storeu_ps(P + j * 16, _mm512_fmadd_ps(r, r, _mm512_mul_ps(i, i)));
    }
    return;
  }
  state_blocks<K>(T, D, g.bit, g.x, [&](const float* pj, const float* px, const int64_t* off, int64_t t0) {
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) _mm512_storeu_ps(P + (t0 + k) * 16, product16<IM>(pj + k * 16, px + off[k], D * 16));
  });
}
constexpr void (*kWalshProducts[4])(const float*, int64_t, const PauliPlanGroup&, float*) = {
    walsh_products<false, 8>, walsh_products<false, 4>, walsh_products<true, 8>, walsh_products<true, 4>};

// A large group: its products into P, one Walsh-Hadamard transform over
// the states (lane-wise), then each string's sum at its Z mask.
void group_walsh(const PauliPlan& plan, const PauliPlanGroup& g, const float* T, float* P, float* O) {
  const int64_t D = plan.D, n = g.bit < 0 ? D : D / 2;
  const int which = (g.imaginary ? 2 : 0) + (D < 8 ? 1 : 0);
  kWalshProducts[which](T, D, g, P);
  int64_t h = 1;
  for (; h * 8 <= n; h *= 8) walsh_pass<8>(P, n, h);
  if (h * 4 <= n) walsh_pass<4>(P, n, h);
  if (h * 2 == n) walsh_pass<2>(P, n, h);
  for (int32_t c = g.first; c < g.first + g.count; ++c)
    _mm512_storeu_ps(O + plan.out[c] * 16,
                     _mm512_mul_ps(_mm512_loadu_ps(P + plan.z[c] * 16), _mm512_set1_ps(plan.scale[c])));
}

// Columns [0, cols) of up to 16 rows (row i at src + i ld) into T
// [cols][16], zero past `rows`.
void transpose_in(const float* src, int64_t ld, int64_t rows, int64_t cols, float* T) {
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

// Every group's sums from the transposed phi T ([2 D][16], re then im),
// P [D][16] and O [strings][16] as scratch, transposed back to rows.
void sums_from_transposed(const PauliPlan& plan, const float* T, float* P, float* O, int64_t rows, float* out,
                          int64_t stride) {
  for (int64_t gi = 0; gi < plan.n_groups; ++gi) {
    const PauliPlanGroup& g = plan.groups[gi];
    if (g.walsh) {
      group_walsh(plan, g, T, P, O);
      continue;
    }
    const int c = g.count < 8 ? g.count : 8;  // the plan's limit (kPauliDirectStrings)
    kDirectKernels[c - 1][g.imaginary][plan.D < 8](plan, g, T, O);
  }
  for (int64_t k0 = 0; k0 < plan.strings; k0 += 16) {
    const int64_t m = plan.strings - k0 < 16 ? plan.strings - k0 : 16;
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

// Rows in lanes: phi of up to 16 rows transposed to [state][row], every
// group's sums lane-wise, the sums transposed back to rows.
void pauli_rows(const PauliPlan& plan, const float* phi, int64_t ld, int64_t rows, float* out, int64_t stride,
                float* scratch) {
  const int64_t D = plan.D;
  float* T = scratch;         // [2 D][16]
  float* P = T + 4 * D * 16;  // [D][16]
  float* O = P + D * 16;      // [strings rounded up to 16][16]
  transpose_in(phi, ld, rows, 2 * D, T);
  sums_from_transposed(plan, T, P, O, rows, out, stride);
}

// One qubit's L1 gate (RY(b) RX(a), complex 2 x 2) in registers.
struct L1Gate {
  __m512 r00, i00, r01, i01, r10, i10, r11, i11;
  explicit L1Gate(const float* g)
      : r00(_mm512_set1_ps(g[0])),
        i00(_mm512_set1_ps(g[1])),
        r01(_mm512_set1_ps(g[2])),
        i01(_mm512_set1_ps(g[3])),
        r10(_mm512_set1_ps(g[4])),
        i10(_mm512_set1_ps(g[5])),
        r11(_mm512_set1_ps(g[6])),
        i11(_mm512_set1_ps(g[7])) {}
  // (a, b) <- G (a, b) for complex a = ar + i ai, b = br + i bi.
  void apply(__m512& ar, __m512& ai, __m512& br, __m512& bi) const {
    const __m512 xr = ar, xi = ai, yr = br, yi = bi;
    // (r + i i)(x + i y) = (r x - i y) + i (r y + i x), for both columns.
    ar = _mm512_fnmadd_ps(i01, yi, _mm512_fmadd_ps(r01, yr, _mm512_fnmadd_ps(i00, xi, _mm512_mul_ps(r00, xr))));
    ai = _mm512_fmadd_ps(i01, yr, _mm512_fmadd_ps(r01, yi, _mm512_fmadd_ps(i00, xr, _mm512_mul_ps(r00, xi))));
    br = _mm512_fnmadd_ps(i11, yi, _mm512_fmadd_ps(r11, yr, _mm512_fnmadd_ps(i10, xi, _mm512_mul_ps(r10, xr))));
    bi = _mm512_fmadd_ps(i11, yr, _mm512_fmadd_ps(r11, yi, _mm512_fmadd_ps(i10, xr, _mm512_mul_ps(r10, xi))));
  }
  // The same on real inputs x, y (half the work).
  void apply_real(__m512 x, __m512 y, __m512& ar, __m512& ai, __m512& br, __m512& bi) const {
    ar = _mm512_fmadd_ps(r01, y, _mm512_mul_ps(r00, x));
    ai = _mm512_fmadd_ps(i01, y, _mm512_mul_ps(i00, x));
    br = _mm512_fmadd_ps(r11, y, _mm512_mul_ps(r10, x));
    bi = _mm512_fmadd_ps(i11, y, _mm512_mul_ps(i10, x));
  }
};

// (u, v) <- RY(c) (u, v) for one plane.
inline void l3_rotate(__m512 cs, __m512 sn, __m512& u, __m512& v) {
  const __m512 a = u, b = v;
  u = _mm512_fnmadd_ps(sn, b, _mm512_mul_ps(cs, a));
  v = _mm512_fmadd_ps(sn, a, _mm512_mul_ps(cs, b));
}

// f(s, lb) for each state s whose bits hb = 2 lb and lb are clear: the
// quadruple s, s + lb, s + 2 lb, s + 3 lb of two adjacent qubits.
template <class F>
inline void quads(int64_t D, int64_t lb, F f) {
  for (int64_t a = 0; a < D; a += 4 * lb)
    for (int64_t s = a; s < a + lb; ++s) f(s);
}

// U = L3 P L1 on 16 rows at once, rows in lanes: psi transposed into Xr,
// L1's complex gates two qubits per pass over the states (a pass keeps
// four states in registers; the first one starts from the real psi), then
// L3's real gates two qubits per pass on Y, the first pass reading P x
// from X by the index map; then the sums from Y. Every gate is lane-wise:
// no permutes, no horizontal sums.
void circuit_pauli_rows(const CircuitPlan& c, const PauliPlan& plan, const float* x, int64_t ld, int64_t d,
                        int64_t rows, bool normalized, float* out, int64_t stride, float* scratch) {
  const int64_t D = plan.D, n = c.n;
  float* Xr = scratch;  // [D][16] each
  float* Xi = Xr + D * 16;
  float* Yr = Xi + D * 16;
  float* Yi = Yr + D * 16;
  float* P = Yi + D * 16;
  float* O = P + D * 16;
  auto at = [](float* base, int64_t s) { return base + s * 16; };
  transpose_in(x, ld, rows, d, Xr);
  for (int64_t s = d; s < D; ++s) _mm512_storeu_ps(at(Xr, s), _mm512_setzero_ps());
  // The encoding's 1 / |x| per lane, applied as the first pass loads x.
  __m512 inv = _mm512_set1_ps(1.0f);
  if (normalized) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int64_t s = 0;
    for (; s + 1 < d; s += 2) {
      const __m512 u = _mm512_loadu_ps(at(Xr, s)), v = _mm512_loadu_ps(at(Xr, s + 1));
      a0 = _mm512_fmadd_ps(u, u, a0);
      a1 = _mm512_fmadd_ps(v, v, a1);
    }
    if (s < d) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(at(Xr, s)), _mm512_loadu_ps(at(Xr, s)), a0);
    const __m512 norm = _mm512_max_ps(_mm512_sqrt_ps(_mm512_add_ps(a0, a1)), _mm512_set1_ps(1e-12f));
    inv = _mm512_div_ps(_mm512_set1_ps(1.0f), norm);
  }
  // L1, qubits 0 and 1 (n >= 2) on the real psi.
  {
    const L1Gate g0(c.l1), g1(c.l1 + 8);
    const int64_t lb = D / 4;
    quads(D, lb, [&](int64_t s) {
      __m512 r[4], i[4];
      auto psi = [&](int64_t k) { return _mm512_mul_ps(_mm512_loadu_ps(at(Xr, s + k * lb)), inv); };
      g0.apply_real(psi(0), psi(2), r[0], i[0], r[2], i[2]);
      g0.apply_real(psi(1), psi(3), r[1], i[1], r[3], i[3]);
      g1.apply(r[0], i[0], r[1], i[1]);
      g1.apply(r[2], i[2], r[3], i[3]);
      for (int k = 0; k < 4; ++k) {
        _mm512_storeu_ps(at(Xr, s + k * lb), r[k]);
        _mm512_storeu_ps(at(Xi, s + k * lb), i[k]);
      }
    });
  }
  int64_t j = 2;
  for (; j + 1 < n; j += 2) {
    const L1Gate gh(c.l1 + 8 * j), gl(c.l1 + 8 * (j + 1));
    const int64_t lb = int64_t{1} << (n - 2 - j);
    quads(D, lb, [&](int64_t s) {
      __m512 r[4], i[4];
      for (int k = 0; k < 4; ++k) {
        r[k] = _mm512_loadu_ps(at(Xr, s + k * lb));
        i[k] = _mm512_loadu_ps(at(Xi, s + k * lb));
      }
      gh.apply(r[0], i[0], r[2], i[2]);
      gh.apply(r[1], i[1], r[3], i[3]);
      gl.apply(r[0], i[0], r[1], i[1]);
      gl.apply(r[2], i[2], r[3], i[3]);
      for (int k = 0; k < 4; ++k) {
        _mm512_storeu_ps(at(Xr, s + k * lb), r[k]);
        _mm512_storeu_ps(at(Xi, s + k * lb), i[k]);
      }
    });
  }
  if (j < n) {  // odd n: the last qubit alone (bit 0)
    const L1Gate g(c.l1 + 8 * j);
    for (int64_t s = 0; s < D; s += 2) {
      __m512 ar = _mm512_loadu_ps(at(Xr, s)), ai = _mm512_loadu_ps(at(Xi, s));
      __m512 br = _mm512_loadu_ps(at(Xr, s + 1)), bi = _mm512_loadu_ps(at(Xi, s + 1));
      g.apply(ar, ai, br, bi);
      _mm512_storeu_ps(at(Xr, s), ar);
      _mm512_storeu_ps(at(Xi, s), ai);
      _mm512_storeu_ps(at(Xr, s + 1), br);
      _mm512_storeu_ps(at(Xi, s + 1), bi);
    }
  }
  // L3, qubits 0 and 1 on (P x)[s] = x[inv_perm[s]], into Y.
  {
    const __m512 c0 = _mm512_set1_ps(c.l3[0]), s0 = _mm512_set1_ps(c.l3[1]);
    const __m512 c1 = _mm512_set1_ps(c.l3[2]), s1 = _mm512_set1_ps(c.l3[3]);
    const int64_t lb = D / 4;
    quads(D, lb, [&](int64_t s) {
      float* const from[2] = {Xr, Xi};
      float* const to[2] = {Yr, Yi};
      for (int part = 0; part < 2; ++part) {
        __m512 v[4];
        for (int k = 0; k < 4; ++k) v[k] = _mm512_loadu_ps(at(from[part], c.inv_perm[s + k * lb]));
        l3_rotate(c0, s0, v[0], v[2]);
        l3_rotate(c0, s0, v[1], v[3]);
        l3_rotate(c1, s1, v[0], v[1]);
        l3_rotate(c1, s1, v[2], v[3]);
        for (int k = 0; k < 4; ++k) _mm512_storeu_ps(at(to[part], s + k * lb), v[k]);
      }
    });
  }
  for (j = 2; j + 1 < n; j += 2) {
    const __m512 ch = _mm512_set1_ps(c.l3[2 * j]), sh = _mm512_set1_ps(c.l3[2 * j + 1]);
    const __m512 cl = _mm512_set1_ps(c.l3[2 * j + 2]), sl = _mm512_set1_ps(c.l3[2 * j + 3]);
    const int64_t lb = int64_t{1} << (n - 2 - j);
    quads(D, lb, [&](int64_t s) {
      float* const planes[2] = {Yr, Yi};
      for (float* y : planes) {
        __m512 v[4];
        for (int k = 0; k < 4; ++k) v[k] = _mm512_loadu_ps(at(y, s + k * lb));
        l3_rotate(ch, sh, v[0], v[2]);
        l3_rotate(ch, sh, v[1], v[3]);
        l3_rotate(cl, sl, v[0], v[1]);
        l3_rotate(cl, sl, v[2], v[3]);
        for (int k = 0; k < 4; ++k) _mm512_storeu_ps(at(y, s + k * lb), v[k]);
      }
    });
  }
  if (j < n) {
    const __m512 cs = _mm512_set1_ps(c.l3[2 * j]), sn = _mm512_set1_ps(c.l3[2 * j + 1]);
    float* const planes[2] = {Yr, Yi};
    for (float* y : planes)
      for (int64_t s = 0; s < D; s += 2) {
        __m512 u = _mm512_loadu_ps(at(y, s)), v = _mm512_loadu_ps(at(y, s + 1));
        l3_rotate(cs, sn, u, v);
        _mm512_storeu_ps(at(y, s), u);
        _mm512_storeu_ps(at(y, s + 1), v);
      }
  }
  sums_from_transposed(plan, Yr, P, O, rows, out, stride);
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
