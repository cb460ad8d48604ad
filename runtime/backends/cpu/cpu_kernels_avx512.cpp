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

inline void transpose16(__m512 v[16]) {
  for (int k = 0; k < 4; ++k) {
    const int s = 8 >> k;
    const __m512i lo = _mm512_load_si512(kTranspose.lo[k]), hi = _mm512_load_si512(kTranspose.hi[k]);
    for (int i = 0; i < 16; ++i) {
      if (i & s) continue;
      const __m512 a = v[i], b = v[i + s];
      v[i] = _mm512_permutex2var_ps(a, lo, b);
      v[i + s] = _mm512_permutex2var_ps(a, hi, b);
    }
  }
}

// Re or Im of conj(phi[jx]) phi[j] for the 16 rows of the transposed phi
// (T: [2 D][16], re then im).
inline __m512 product16(const float* T, int64_t D, int64_t j, int64_t jx, bool imaginary) {
  const __m512 rx = _mm512_loadu_ps(T + jx * 16), ix = _mm512_loadu_ps(T + (D + jx) * 16);
  const __m512 rj = _mm512_loadu_ps(T + j * 16), ij = _mm512_loadu_ps(T + (D + j) * 16);
  return imaginary ? _mm512_fmsub_ps(rx, ij, _mm512_mul_ps(ix, rj)) : _mm512_fmadd_ps(rx, rj, _mm512_mul_ps(ix, ij));
}

// f(j, t) for the states a group sums over, two at a time (t, t + 1):
// every state, or the runs of 2^bit (bit >= 3) with that bit clear.
template <class F>
inline void state_pairs(int64_t D, int bit, F f) {
  const int64_t run = bit < 0 ? D : int64_t{1} << bit;
  for (int64_t base = 0, t = 0; base < D; base += 2 * run)
    for (int64_t j = base; j < base + run; j += 2, t += 2) f(j, t);
}

// A group of C <= kPauliDirectStrings strings (larger ones are walsh):
// each state's product once, into every
// string's sum with its coefficient (sign and scale); two sums per string
// so that consecutive FMAs do not wait on each other.
template <int C>
void group_direct(const PauliPlan& plan, const PauliPlanGroup& g, const float* T, float* O) {
  const int64_t D = plan.D, x = static_cast<int64_t>(g.x);
  const float* coef = plan.coef + g.coef;
  __m512 a[C], b[C];
  for (int c = 0; c < C; ++c) a[c] = b[c] = _mm512_setzero_ps();
  state_pairs(D, g.bit, [&](int64_t j, int64_t t) {
    const __m512 p0 = product16(T, D, j, j ^ x, g.imaginary), p1 = product16(T, D, j + 1, (j + 1) ^ x, g.imaginary);
    for (int c = 0; c < C; ++c) {
      a[c] = _mm512_fmadd_ps(p0, _mm512_set1_ps(coef[t * C + c]), a[c]);
      b[c] = _mm512_fmadd_ps(p1, _mm512_set1_ps(coef[(t + 1) * C + c]), b[c]);
    }
  });
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(O + plan.out[g.first + c] * 16, _mm512_add_ps(a[c], b[c]));
}

// log2(M) levels of the lane-wise Walsh-Hadamard transform of the n
// vectors at P, from stride h, with M vectors in registers (a level at a
// time stored every vector twice per level; the stores bounded it).
template <int M>
void walsh_pass(float* P, int64_t n, int64_t h) {
  for (int64_t b0 = 0; b0 < n; b0 += M * h)
    for (int64_t j = b0; j < b0 + h; ++j) {
      __m512 v[M];
      for (int k = 0; k < M; ++k) v[k] = _mm512_loadu_ps(P + (j + k * h) * 16);
      for (int s = 1; s < M; s *= 2)
        for (int k = 0; k < M; ++k)
          if (!(k & s)) {
            const __m512 a = v[k], b = v[k + s];
            v[k] = _mm512_add_ps(a, b);
            v[k + s] = _mm512_sub_ps(a, b);
          }
      for (int k = 0; k < M; ++k) _mm512_storeu_ps(P + (j + k * h) * 16, v[k]);
    }
}

// A large group: its products into P, one Walsh-Hadamard transform over
// the states (lane-wise), then each string's sum at its Z mask.
void group_walsh(const PauliPlan& plan, const PauliPlanGroup& g, const float* T, float* P, float* O) {
  const int64_t D = plan.D, x = static_cast<int64_t>(g.x), n = g.bit < 0 ? D : D / 2;
  state_pairs(D, g.bit, [&](int64_t j, int64_t t) {
    _mm512_storeu_ps(P + t * 16, product16(T, D, j, j ^ x, g.imaginary));
    _mm512_storeu_ps(P + (t + 1) * 16, product16(T, D, j + 1, (j + 1) ^ x, g.imaginary));
  });
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
    __m512 v[16];
    for (int64_t i = 0; i < 16; ++i)
      v[i] = i < rows ? _mm512_maskz_loadu_ps(mask, src + i * ld + c0) : _mm512_setzero_ps();
    transpose16(v);
    for (int64_t i = 0; i < m; ++i) _mm512_storeu_ps(T + (c0 + i) * 16, v[i]);
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
    switch (g.count) {
      case 1: group_direct<1>(plan, g, T, O); break;
      case 2: group_direct<2>(plan, g, T, O); break;
      case 3: group_direct<3>(plan, g, T, O); break;
      case 4: group_direct<4>(plan, g, T, O); break;
      case 5: group_direct<5>(plan, g, T, O); break;
      case 6: group_direct<6>(plan, g, T, O); break;
      case 7: group_direct<7>(plan, g, T, O); break;
      default: group_direct<8>(plan, g, T, O); break;  // the plan's limit (kPauliDirectStrings)
    }
  }
  for (int64_t k0 = 0; k0 < plan.strings; k0 += 16) {
    const int64_t m = plan.strings - k0 < 16 ? plan.strings - k0 : 16;
    const auto cols = static_cast<__mmask16>(m == 16 ? 0xffff : (1u << m) - 1);
    __m512 v[16];
    for (int64_t i = 0; i < 16; ++i) v[i] = i < m ? _mm512_loadu_ps(O + (k0 + i) * 16) : _mm512_setzero_ps();
    transpose16(v);
    for (int64_t i = 0; i < rows; ++i) _mm512_mask_storeu_ps(out + i * stride + k0, cols, v[i]);
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

// U = L3 P L1 on 16 rows at once, rows in lanes: psi transposed into X
// (re; im zero), L1's complex 2 x 2 gates qubit by qubit in place, P as
// the index map of a copy into Y, L3's real gates in place on Y; then the
// sums from Y. Every gate is lane-wise: no permutes, no horizontal sums.
void circuit_pauli_rows(const CircuitPlan& c, const PauliPlan& plan, const float* psi, int64_t ld, int64_t d,
                        int64_t rows, float* out, int64_t stride, float* scratch) {
  const int64_t D = plan.D, n = c.n;
  float* Xr = scratch;  // [D][16] each
  float* Xi = Xr + D * 16;
  float* Yr = Xi + D * 16;
  float* Yi = Yr + D * 16;
  float* P = Yi + D * 16;
  float* O = P + D * 16;
  transpose_in(psi, ld, rows, d, Xr);
  for (int64_t s = d; s < D; ++s) _mm512_storeu_ps(Xr + s * 16, _mm512_setzero_ps());
  for (int64_t s = 0; s < D; ++s) _mm512_storeu_ps(Xi + s * 16, _mm512_setzero_ps());
  for (int64_t j = 0; j < n; ++j) {
    const int64_t bit = int64_t{1} << (n - 1 - j);
    const float* g = c.l1 + 8 * j;
    const __m512 r00 = _mm512_set1_ps(g[0]), i00 = _mm512_set1_ps(g[1]), r01 = _mm512_set1_ps(g[2]),
                 i01 = _mm512_set1_ps(g[3]), r10 = _mm512_set1_ps(g[4]), i10 = _mm512_set1_ps(g[5]),
                 r11 = _mm512_set1_ps(g[6]), i11 = _mm512_set1_ps(g[7]);
    for (int64_t s0 = 0; s0 < D; s0 += 2 * bit) {
      for (int64_t s = s0; s < s0 + bit; ++s) {
        float *ar = Xr + s * 16, *ai = Xi + s * 16, *br = Xr + (s + bit) * 16, *bi = Xi + (s + bit) * 16;
        const __m512 xr = _mm512_loadu_ps(ar), xi = _mm512_loadu_ps(ai), yr = _mm512_loadu_ps(br),
                     yi = _mm512_loadu_ps(bi);
        // (r + i i)(x + i y) = (r x - i y) + i (r y + i x), for both columns.
        _mm512_storeu_ps(
            ar, _mm512_fnmadd_ps(i01, yi, _mm512_fmadd_ps(r01, yr, _mm512_fnmadd_ps(i00, xi, _mm512_mul_ps(r00, xr)))));
        _mm512_storeu_ps(
            ai, _mm512_fmadd_ps(i01, yr, _mm512_fmadd_ps(r01, yi, _mm512_fmadd_ps(i00, xr, _mm512_mul_ps(r00, xi)))));
        _mm512_storeu_ps(
            br, _mm512_fnmadd_ps(i11, yi, _mm512_fmadd_ps(r11, yr, _mm512_fnmadd_ps(i10, xi, _mm512_mul_ps(r10, xr)))));
        _mm512_storeu_ps(
            bi, _mm512_fmadd_ps(i11, yr, _mm512_fmadd_ps(r11, yi, _mm512_fmadd_ps(i10, xr, _mm512_mul_ps(r10, xi)))));
      }
    }
  }
  for (int64_t s = 0; s < D; ++s) {  // (P x)[s] = x[inv_perm[s]]
    const int64_t from = c.inv_perm[s];
    _mm512_storeu_ps(Yr + s * 16, _mm512_loadu_ps(Xr + from * 16));
    _mm512_storeu_ps(Yi + s * 16, _mm512_loadu_ps(Xi + from * 16));
  }
  for (int64_t j = 0; j < n; ++j) {
    const int64_t bit = int64_t{1} << (n - 1 - j);
    const __m512 cs = _mm512_set1_ps(c.l3[2 * j]), sn = _mm512_set1_ps(c.l3[2 * j + 1]);
    for (int64_t s0 = 0; s0 < D; s0 += 2 * bit) {
      for (int64_t s = s0; s < s0 + bit; ++s) {
        float* const planes[2] = {Yr, Yi};
        for (float* x : planes) {
          const __m512 u = _mm512_loadu_ps(x + s * 16), v = _mm512_loadu_ps(x + (s + bit) * 16);
          _mm512_storeu_ps(x + s * 16, _mm512_fnmadd_ps(sn, v, _mm512_mul_ps(cs, u)));
          _mm512_storeu_ps(x + (s + bit) * 16, _mm512_fmadd_ps(sn, u, _mm512_mul_ps(cs, v)));
        }
      }
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
    k.pauli_rows = pauli_rows;
    k.circuit_pauli_rows = circuit_pauli_rows;
    return k;
  }();
  static const bool ok = [] {
    Cpuid7 leaf7;
    return avx512_usable(&leaf7);
  }();
  return ok ? &table : nullptr;
}

}  // namespace qisa
