// Rows in vector lanes with AVX2: the Pauli sums of up to kPauliRows rows
// (PauliRowsKernel) and the circuit before them (CircuitPauliRowsKernel),
// the AVX2 counterparts of cpu_kernels_avx512.cpp's. The rows' values are
// laid out [state][16 rows] as there; AVX2 has 16 registers of 8 lanes, so
// every lane-wise pass runs twice, on rows 0-7 and on rows 8-15 (a pass
// over 16 lanes at once would keep twice the registers live and spill).
// Every gate and sum is lane-wise: no permutes, no horizontal sums. Built
// with AVX2 and entered only after the CPU check of the AVX2 set
// (cpu_kernels_avx2.cpp), whose table holds these entries.
#include <immintrin.h>

#include "avx2_rows.h"
#include "cpu_kernels.h"

namespace qisa::avx2_rows {

namespace {

constexpr int64_t kRows = kPauliRows;  // the row stride of the transposed layout
constexpr int64_t kLanes = 8;          // rows per pass

// Re or Im of conj(phi[jx]) phi[j] for 8 rows: a at the state j, b at jx,
// the imaginary parts `im` floats further.
template <bool IM>
inline __m256 product8(const float* a, const float* b, int64_t im) {
  const __m256 rj = _mm256_loadu_ps(a), ij = _mm256_loadu_ps(a + im);
  const __m256 rx = _mm256_loadu_ps(b), ix = _mm256_loadu_ps(b + im);
  return IM ? _mm256_fmsub_ps(rx, ij, _mm256_mul_ps(ix, rj)) : _mm256_fmadd_ps(rx, rj, _mm256_mul_ps(ix, ij));
}

// The states a group sums over (every state, or the runs of 2^bit, bit
// >= 3, with that bit clear) in blocks of K (8, or 4 when D = 4): f(pj,
// px, off, t0) per block, pj at the block's first state in T, px at its
// partners' block (j ^ x for j in a block of K is that block plus
// k ^ (x mod K)), off[k] those offsets in floats, t0 the states before.
template <int K, class F>
inline void state_blocks(const float* T, int64_t D, int bit, uint64_t x, F f) {
  int64_t off[K];
  for (int k = 0; k < K; ++k) off[k] = static_cast<int64_t>(static_cast<uint64_t>(k) ^ (x & (K - 1))) * kRows;
  const auto high = static_cast<int64_t>(x & ~uint64_t{K - 1});
  const int64_t run = bit < 0 ? D : int64_t{1} << bit;
  for (int64_t base = 0, t = 0; base < D; base += 2 * run)
    for (int64_t j = base; j < base + run; j += K, t += K) f(T + j * kRows, T + (j ^ high) * kRows, off, t);
}

// A group of C <= kPauliDirectStrings strings: each state's product once,
// into every string's sum with its coefficient; two sums per string where
// the registers allow (C <= 4), so that consecutive FMAs do not wait on
// each other.
template <int C, bool IM, int K>
void group_direct(const PauliPlan& plan, const PauliPlanGroup& g, const float* T, float* O) {
  constexpr int A = C <= 4 ? 2 : 1;
  const int64_t im = plan.D * kRows;
  const float* coef = plan.coef + g.coef;
  __m256 acc[A][C];
  for (int a = 0; a < A; ++a)
    for (int c = 0; c < C; ++c) acc[a][c] = _mm256_setzero_ps();
  state_blocks<K>(T, plan.D, g.bit, g.x, [&](const float* pj, const float* px, const int64_t* off, int64_t t0) {
    const float* cf = coef + t0 * C;
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      const __m256 p = product8<IM>(pj + k * kRows, px + off[k], im);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c)
        acc[k % A][c] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(cf + k * C + c), acc[k % A][c]);
    }
  });
  for (int c = 0; c < C; ++c) {
    __m256 sum = acc[0][c];
    for (int a = 1; a < A; ++a) sum = _mm256_add_ps(sum, acc[a][c]);
    _mm256_storeu_ps(O + plan.out[g.first + c] * kRows, sum);
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
// vectors at P (kRows apart), from stride h, M vectors in registers.
template <int M>
void walsh_pass(float* P, int64_t n, int64_t h) {
  for (int64_t b0 = 0; b0 < n; b0 += M * h)
    for (int64_t j = b0; j < b0 + h; ++j) {
      __m256 v[M];
#pragma GCC unroll 8
      for (int k = 0; k < M; ++k) v[k] = _mm256_loadu_ps(P + (j + k * h) * kRows);
#pragma GCC unroll 3
      for (int s = 1; s < M; s *= 2)
#pragma GCC unroll 8
        for (int k = 0; k < M; ++k)
          if (!(k & s)) {
            const __m256 a = v[k], b = v[k + s];
            v[k] = _mm256_add_ps(a, b);
            v[k + s] = _mm256_sub_ps(a, b);
          }
#pragma GCC unroll 8
      for (int k = 0; k < M; ++k) _mm256_storeu_ps(P + (j + k * h) * kRows, v[k]);
    }
}

// A walsh group's products into P ([states summed][kRows]); X mask 0 (the
// Z strings): |phi[j]|^2 from half the loads.
template <bool IM, int K>
void walsh_products(const float* T, int64_t D, const PauliPlanGroup& g, float* P) {
  if (!IM && g.x == 0) {
    for (int64_t j = 0; j < D; ++j) {
      const __m256 r = _mm256_loadu_ps(T + j * kRows), i = _mm256_loadu_ps(T + (D + j) * kRows);
      _mm256_storeu_ps(P + j * kRows, _mm256_fmadd_ps(r, r, _mm256_mul_ps(i, i)));
    }
    return;
  }
  state_blocks<K>(T, D, g.bit, g.x, [&](const float* pj, const float* px, const int64_t* off, int64_t t0) {
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k)
      _mm256_storeu_ps(P + (t0 + k) * kRows, product8<IM>(pj + k * kRows, px + off[k], D * kRows));
  });
}
constexpr void (*kWalshProducts[4])(const float*, int64_t, const PauliPlanGroup&, float*) = {
    walsh_products<false, 8>, walsh_products<false, 4>, walsh_products<true, 8>, walsh_products<true, 4>};

// A large group: its products into P, one Walsh-Hadamard transform over
// the states (lane-wise), then each string's sum at its Z mask.
void group_walsh(const PauliPlan& plan, const PauliPlanGroup& g, const float* T, float* P, float* O) {
  const int64_t D = plan.D, n = g.bit < 0 ? D : D / 2;
  kWalshProducts[(g.imaginary ? 2 : 0) + (D < 8 ? 1 : 0)](T, D, g, P);
  int64_t h = 1;
  for (; h * 8 <= n; h *= 8) walsh_pass<8>(P, n, h);
  if (h * 4 <= n) walsh_pass<4>(P, n, h);
  if (h * 2 == n) walsh_pass<2>(P, n, h);
  for (int32_t c = g.first; c < g.first + g.count; ++c)
    _mm256_storeu_ps(O + plan.out[c] * kRows,
                     _mm256_mul_ps(_mm256_loadu_ps(P + plan.z[c] * kRows), _mm256_set1_ps(plan.scale[c])));
}

// Columns [0, cols) of up to kRows rows (row i at src + i ld) into T
// [cols][kRows], zero past `rows`.
void transpose_in(const float* src, int64_t ld, int64_t rows, int64_t cols, float* T) {
  for (int64_t c = 0; c < cols; ++c) {
    float* t = T + c * kRows;
    for (int64_t i = 0; i < kRows; ++i) t[i] = i < rows ? src[i * ld + c] : 0.0f;
  }
}

// Every group's sums from the transposed phi T ([2 D][kRows], re then im),
// lanes 0-7 then 8-15, with P [D][kRows] and O [strings][kRows] as
// scratch; then transposed back to rows.
void sums_from_transposed(const PauliPlan& plan, const float* T, float* P, float* O, int64_t rows, float* out,
                          int64_t stride) {
  for (int64_t lane = 0; lane < kRows && lane < rows; lane += kLanes) {
    for (int64_t gi = 0; gi < plan.n_groups; ++gi) {
      const PauliPlanGroup& g = plan.groups[gi];
      if (g.walsh) {
        group_walsh(plan, g, T + lane, P + lane, O + lane);
        continue;
      }
      const int c = g.count < 8 ? g.count : 8;  // the plan's limit (kPauliDirectStrings)
      kDirectKernels[c - 1][g.imaginary][plan.D < 8](plan, g, T + lane, O + lane);
    }
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < plan.strings; ++k) out[i * stride + k] = O[k * kRows + i];
}

// One qubit's L1 gate (RY(b) RX(a), complex 2 x 2) in registers.
struct L1Gate {
  __m256 r00, i00, r01, i01, r10, i10, r11, i11;
  explicit L1Gate(const float* g)
      : r00(_mm256_set1_ps(g[0])),
        i00(_mm256_set1_ps(g[1])),
        r01(_mm256_set1_ps(g[2])),
        i01(_mm256_set1_ps(g[3])),
        r10(_mm256_set1_ps(g[4])),
        i10(_mm256_set1_ps(g[5])),
        r11(_mm256_set1_ps(g[6])),
        i11(_mm256_set1_ps(g[7])) {}
  // (a, b) <- G (a, b) for complex a = ar + i ai, b = br + i bi.
  void apply(__m256& ar, __m256& ai, __m256& br, __m256& bi) const {
    const __m256 xr = ar, xi = ai, yr = br, yi = bi;
    ar = _mm256_fnmadd_ps(i01, yi, _mm256_fmadd_ps(r01, yr, _mm256_fnmadd_ps(i00, xi, _mm256_mul_ps(r00, xr))));
    ai = _mm256_fmadd_ps(i01, yr, _mm256_fmadd_ps(r01, yi, _mm256_fmadd_ps(i00, xr, _mm256_mul_ps(r00, xi))));
    br = _mm256_fnmadd_ps(i11, yi, _mm256_fmadd_ps(r11, yr, _mm256_fnmadd_ps(i10, xi, _mm256_mul_ps(r10, xr))));
    bi = _mm256_fmadd_ps(i11, yr, _mm256_fmadd_ps(r11, yi, _mm256_fmadd_ps(i10, xr, _mm256_mul_ps(r10, xi))));
  }
  // The same on real inputs x, y (half the work).
  void apply_real(__m256 x, __m256 y, __m256& ar, __m256& ai, __m256& br, __m256& bi) const {
    ar = _mm256_fmadd_ps(r01, y, _mm256_mul_ps(r00, x));
    ai = _mm256_fmadd_ps(i01, y, _mm256_mul_ps(i00, x));
    br = _mm256_fmadd_ps(r11, y, _mm256_mul_ps(r10, x));
    bi = _mm256_fmadd_ps(i11, y, _mm256_mul_ps(i10, x));
  }
};

// (u, v) <- RY(c) (u, v) for one plane.
inline void l3_rotate(__m256 cs, __m256 sn, __m256& u, __m256& v) {
  const __m256 a = u, b = v;
  u = _mm256_fnmadd_ps(sn, b, _mm256_mul_ps(cs, a));
  v = _mm256_fmadd_ps(sn, a, _mm256_mul_ps(cs, b));
}

// f(s) for each state s whose bits 2 lb and lb are clear: the quadruple
// s, s + lb, s + 2 lb, s + 3 lb of two adjacent qubits.
template <class F>
inline void quads(int64_t D, int64_t lb, F f) {
  for (int64_t a = 0; a < D; a += 4 * lb)
    for (int64_t s = a; s < a + lb; ++s) f(s);
}

// U = L3 P L1 on 8 rows (the lanes at Xr, Xi, Yr, Yi, kRows apart per
// state; Xr holds x zero-padded to D): L1's complex gates two qubits per
// pass (the first from the real psi = x * inv), then L3's real gates two
// qubits per pass on Y, the first reading P x from X by the index map.
void circuit_lanes(const CircuitPlan& c, int64_t D, __m256 inv, float* Xr, float* Xi, float* Yr, float* Yi) {
  const int64_t n = c.n;
  auto at = [](float* base, int64_t s) { return base + s * kRows; };
  {  // L1, qubits 0 and 1 (n >= 2) on the real psi.
    const L1Gate g0(c.l1), g1(c.l1 + 8);
    const int64_t lb = D / 4;
    quads(D, lb, [&](int64_t s) {
      __m256 r[4], i[4];
      auto psi = [&](int64_t k) { return _mm256_mul_ps(_mm256_loadu_ps(at(Xr, s + k * lb)), inv); };
      g0.apply_real(psi(0), psi(2), r[0], i[0], r[2], i[2]);
      g0.apply_real(psi(1), psi(3), r[1], i[1], r[3], i[3]);
      g1.apply(r[0], i[0], r[1], i[1]);
      g1.apply(r[2], i[2], r[3], i[3]);
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(at(Xr, s + k * lb), r[k]);
        _mm256_storeu_ps(at(Xi, s + k * lb), i[k]);
      }
    });
  }
  int64_t j = 2;
  for (; j + 1 < n; j += 2) {
    const L1Gate gh(c.l1 + 8 * j), gl(c.l1 + 8 * (j + 1));
    const int64_t lb = int64_t{1} << (n - 2 - j);
    quads(D, lb, [&](int64_t s) {
      __m256 r[4], i[4];
      for (int k = 0; k < 4; ++k) {
        r[k] = _mm256_loadu_ps(at(Xr, s + k * lb));
        i[k] = _mm256_loadu_ps(at(Xi, s + k * lb));
      }
      gh.apply(r[0], i[0], r[2], i[2]);
      gh.apply(r[1], i[1], r[3], i[3]);
      gl.apply(r[0], i[0], r[1], i[1]);
      gl.apply(r[2], i[2], r[3], i[3]);
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(at(Xr, s + k * lb), r[k]);
        _mm256_storeu_ps(at(Xi, s + k * lb), i[k]);
      }
    });
  }
  if (j < n) {  // odd n: the last qubit alone (bit 0)
    const L1Gate g(c.l1 + 8 * j);
    for (int64_t s = 0; s < D; s += 2) {
      __m256 ar = _mm256_loadu_ps(at(Xr, s)), ai = _mm256_loadu_ps(at(Xi, s));
      __m256 br = _mm256_loadu_ps(at(Xr, s + 1)), bi = _mm256_loadu_ps(at(Xi, s + 1));
      g.apply(ar, ai, br, bi);
      _mm256_storeu_ps(at(Xr, s), ar);
      _mm256_storeu_ps(at(Xi, s), ai);
      _mm256_storeu_ps(at(Xr, s + 1), br);
      _mm256_storeu_ps(at(Xi, s + 1), bi);
    }
  }
  {  // L3, qubits 0 and 1 on (P x)[s] = x[inv_perm[s]], into Y.
    const __m256 c0 = _mm256_set1_ps(c.l3[0]), s0 = _mm256_set1_ps(c.l3[1]);
    const __m256 c1 = _mm256_set1_ps(c.l3[2]), s1 = _mm256_set1_ps(c.l3[3]);
    const int64_t lb = D / 4;
    quads(D, lb, [&](int64_t s) {
      float* const from[2] = {Xr, Xi};
      float* const to[2] = {Yr, Yi};
      for (int part = 0; part < 2; ++part) {
        __m256 v[4];
        for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(at(from[part], c.inv_perm[s + k * lb]));
        l3_rotate(c0, s0, v[0], v[2]);
        l3_rotate(c0, s0, v[1], v[3]);
        l3_rotate(c1, s1, v[0], v[1]);
        l3_rotate(c1, s1, v[2], v[3]);
        for (int k = 0; k < 4; ++k) _mm256_storeu_ps(at(to[part], s + k * lb), v[k]);
      }
    });
  }
  for (j = 2; j + 1 < n; j += 2) {
    const __m256 ch = _mm256_set1_ps(c.l3[2 * j]), sh = _mm256_set1_ps(c.l3[2 * j + 1]);
    const __m256 cl = _mm256_set1_ps(c.l3[2 * j + 2]), sl = _mm256_set1_ps(c.l3[2 * j + 3]);
    const int64_t lb = int64_t{1} << (n - 2 - j);
    quads(D, lb, [&](int64_t s) {
      float* const planes[2] = {Yr, Yi};
      for (float* y : planes) {
        __m256 v[4];
        for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(at(y, s + k * lb));
        l3_rotate(ch, sh, v[0], v[2]);
        l3_rotate(ch, sh, v[1], v[3]);
        l3_rotate(cl, sl, v[0], v[1]);
        l3_rotate(cl, sl, v[2], v[3]);
        for (int k = 0; k < 4; ++k) _mm256_storeu_ps(at(y, s + k * lb), v[k]);
      }
    });
  }
  if (j < n) {
    const __m256 cs = _mm256_set1_ps(c.l3[2 * j]), sn = _mm256_set1_ps(c.l3[2 * j + 1]);
    float* const planes[2] = {Yr, Yi};
    for (float* y : planes)
      for (int64_t s = 0; s < D; s += 2) {
        __m256 u = _mm256_loadu_ps(at(y, s)), v = _mm256_loadu_ps(at(y, s + 1));
        l3_rotate(cs, sn, u, v);
        _mm256_storeu_ps(at(y, s), u);
        _mm256_storeu_ps(at(y, s + 1), v);
      }
  }
}

}  // namespace

// Rows in lanes: phi of up to 16 rows transposed to [state][row], every
// group's sums lane-wise, the sums transposed back to rows.
void pauli_rows(const PauliPlan& plan, const float* phi, int64_t ld, int64_t rows, float* out, int64_t stride,
                float* scratch) {
  const int64_t D = plan.D;
  float* T = scratch;            // [2 D][16]
  float* P = T + 4 * D * kRows;  // [D][16]
  float* O = P + D * kRows;      // [strings rounded up to 16][16]
  transpose_in(phi, ld, rows, 2 * D, T);
  sums_from_transposed(plan, T, P, O, rows, out, stride);
}

// The encoding, U = L3 P L1 and the sums for up to 16 rows, rows in lanes
// (8 at a time through the circuit).
void circuit_pauli_rows(const CircuitPlan& c, const PauliPlan& plan, const float* x, int64_t ld, int64_t d,
                        int64_t rows, bool normalized, float* out, int64_t stride, float* scratch) {
  const int64_t D = plan.D;
  float* Xr = scratch;  // [D][16] each
  float* Xi = Xr + D * kRows;
  float* Yr = Xi + D * kRows;
  float* Yi = Yr + D * kRows;
  float* P = Yi + D * kRows;
  float* O = P + D * kRows;
  transpose_in(x, ld, rows, d, Xr);
  for (int64_t s = d; s < D; ++s)
    for (int64_t i = 0; i < kRows; ++i) Xr[s * kRows + i] = 0.0f;
  for (int64_t lane = 0; lane < kRows && lane < rows; lane += kLanes) {
    // The encoding's 1 / |x| per lane, applied as the first pass loads x.
    __m256 inv = _mm256_set1_ps(1.0f);
    if (normalized) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0;
      int64_t s = 0;
      for (; s + 1 < d; s += 2) {
        const __m256 u = _mm256_loadu_ps(Xr + s * kRows + lane), v = _mm256_loadu_ps(Xr + (s + 1) * kRows + lane);
        a0 = _mm256_fmadd_ps(u, u, a0);
        a1 = _mm256_fmadd_ps(v, v, a1);
      }
      if (s < d) {
        const __m256 u = _mm256_loadu_ps(Xr + s * kRows + lane);
        a0 = _mm256_fmadd_ps(u, u, a0);
      }
      const __m256 norm = _mm256_max_ps(_mm256_sqrt_ps(_mm256_add_ps(a0, a1)), _mm256_set1_ps(1e-12f));
      inv = _mm256_div_ps(_mm256_set1_ps(1.0f), norm);
    }
    circuit_lanes(c, D, inv, Xr + lane, Xi + lane, Yr + lane, Yi + lane);
  }
  sums_from_transposed(plan, Yr, P, O, rows, out, stride);
}

}  // namespace qisa::avx2_rows
