// Rows in vector lanes: the Pauli sums of up to kPauliRows rows
// (PauliRowsKernel) and the circuit or a small state's dense U before them
// (CircuitPauliRowsKernel, UnitaryPauliRowsKernel),
// written once over a vector type and included by the kernel files that
// instantiate it (cpu_kernels_avx512.cpp with 16 lanes, cpu_rows_avx2.cpp
// with 8), each compiled with its instructions. The rows' values are laid
// out [state][kPauliRows rows]; a set with fewer lanes than rows runs each
// lane-wise pass once per lane block. Every gate and sum is lane-wise: no
// permutes, no horizontal sums. The transposes into and out of the layout
// stay in the kernel files. Internal linkage, no library calls.
//
// V provides: type T of V::kLanes floats; loadu, storeu, zero, set1, add,
// sub, mul, fmadd (a b + c), fmsub (a b - c), fnmadd (c - a b), sqrt, max,
// div; and accumulators(C), the sums per string that a group of C strings
// keeps in registers. X provides the transposes: to_lanes(src, ld, rows, cols,
// T), columns [0, cols) of up to kRows rows (row i at src + i ld) into T
// [cols][kRows], zero past `rows`; to_rows(O, strings, rows, out, stride), the
// sums O [strings][kRows] back to rows (row i at out + i stride).
#pragma once

#include <cstdint>

#include "cpu_kernels.h"

namespace qisa {
namespace {
namespace rows_in_lanes {

constexpr int64_t kRows = kPauliRows;  // the row stride of the layout

// Re or Im of conj(phi[jx]) phi[j] for a lane block: a at the state j, b
// at jx, the imaginary parts `im` floats further.
template <class V, bool IM>
inline typename V::T product(const float* a, const float* b, int64_t im) {
  const auto rj = V::loadu(a), ij = V::loadu(a + im), rx = V::loadu(b), ix = V::loadu(b + im);
  return IM ? V::fmsub(rx, ij, V::mul(ix, rj)) : V::fmadd(rx, rj, V::mul(ix, ij));
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
  for (int k = 0; k < K; ++k) off[k] = static_cast<int64_t>(static_cast<uint64_t>(k) ^ (x & (K - 1))) * kRows;
  const auto high = static_cast<int64_t>(x & ~uint64_t{K - 1});
  const int64_t run = bit < 0 ? D : int64_t{1} << bit;
  for (int64_t base = 0, t = 0; base < D; base += 2 * run)
    for (int64_t j = base; j < base + run; j += K, t += K) f(T + j * kRows, T + (j ^ high) * kRows, off, t);
}

// A group of C <= kPauliDirectStrings strings (larger ones are walsh):
// each state's product once, into every string's sum with its
// coefficient; V::accumulators(C) sums per string so that consecutive
// FMAs do not wait on each other, as far as the registers allow.
template <class V, int C, bool IM, int K>
void group_direct(const PauliPlan& plan, const PauliPlanGroup& g, const float* T, float* O) {
  constexpr int A = V::accumulators(C);
  const int64_t im = plan.D * kRows;
  const float* coef = plan.coef + g.coef;
  typename V::T acc[A][C];
  for (int a = 0; a < A; ++a)
    for (int c = 0; c < C; ++c) acc[a][c] = V::zero();
  state_blocks<K>(T, plan.D, g.bit, g.x, [&](const float* pj, const float* px, const int64_t* off, int64_t t0) {
    const float* cf = coef + t0 * C;
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      const auto p = product<V, IM>(pj + k * kRows, px + off[k], im);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[k % A][c] = V::fmadd(p, V::set1(cf[k * C + c]), acc[k % A][c]);
    }
  });
  for (int c = 0; c < C; ++c) {
    auto sum = acc[0][c];
    for (int a = 1; a < A; ++a) sum = V::add(sum, acc[a][c]);
    V::storeu(O + plan.out[g.first + c] * kRows, sum);
  }
}

// The group kernels by (string count - 1, imaginary, blocks of 4).
using GroupKernel = void (*)(const PauliPlan&, const PauliPlanGroup&, const float*, float*);
template <class V, int C>
constexpr GroupKernel kDirect[2][2] = {{group_direct<V, C, false, 8>, group_direct<V, C, false, 4>},
                                       {group_direct<V, C, true, 8>, group_direct<V, C, true, 4>}};
template <class V>
constexpr const GroupKernel (*kDirectKernels[8])[2] = {kDirect<V, 1>, kDirect<V, 2>, kDirect<V, 3>, kDirect<V, 4>,
                                                       kDirect<V, 5>, kDirect<V, 6>, kDirect<V, 7>, kDirect<V, 8>};

// log2(M) levels of the lane-wise Walsh-Hadamard transform of the n
// vectors at P (kRows apart), from stride h, with M vectors in registers
// (a level at a time stored every vector twice per level; the stores
// bounded it).
template <class V, int M>
void walsh_pass(float* P, int64_t n, int64_t h) {
  for (int64_t b0 = 0; b0 < n; b0 += M * h)
    for (int64_t j = b0; j < b0 + h; ++j) {
      typename V::T v[M];
#pragma GCC unroll 8
      for (int k = 0; k < M; ++k) v[k] = V::loadu(P + (j + k * h) * kRows);
#pragma GCC unroll 3
      for (int s = 1; s < M; s *= 2)
#pragma GCC unroll 8
        for (int k = 0; k < M; ++k)
          if (!(k & s)) {
            const auto a = v[k], b = v[k + s];
            v[k] = V::add(a, b);
            v[k + s] = V::sub(a, b);
          }
#pragma GCC unroll 8
      for (int k = 0; k < M; ++k) V::storeu(P + (j + k * h) * kRows, v[k]);
    }
}

// A walsh group's products into P ([states summed][kRows]); X mask 0 (the
// Z strings): |phi[j]|^2 from half the loads.
template <class V, bool IM, int K>
void walsh_products(const float* T, int64_t D, const PauliPlanGroup& g, float* P) {
  if (!IM && g.x == 0) {
    for (int64_t j = 0; j < D; ++j) {
      const auto r = V::loadu(T + j * kRows), i = V::loadu(T + (D + j) * kRows);
      V::storeu(P + j * kRows, V::fmadd(r, r, V::mul(i, i)));
    }
    return;
  }
  state_blocks<K>(T, D, g.bit, g.x, [&](const float* pj, const float* px, const int64_t* off, int64_t t0) {
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) V::storeu(P + (t0 + k) * kRows, product<V, IM>(pj + k * kRows, px + off[k], D * kRows));
  });
}
template <class V>
constexpr void (*kWalshProducts[4])(const float*, int64_t, const PauliPlanGroup&, float*) = {
    walsh_products<V, false, 8>, walsh_products<V, false, 4>, walsh_products<V, true, 8>, walsh_products<V, true, 4>};

// A large group: its products into P, one Walsh-Hadamard transform over
// the states (lane-wise), then each string's sum at its Z mask.
template <class V>
void group_walsh(const PauliPlan& plan, const PauliPlanGroup& g, const float* T, float* P, float* O) {
  const int64_t D = plan.D, n = g.bit < 0 ? D : D / 2;
  kWalshProducts<V>[(g.imaginary ? 2 : 0) + (D < 8 ? 1 : 0)](T, D, g, P);
  int64_t h = 1;
  for (; h * 8 <= n; h *= 8) walsh_pass<V, 8>(P, n, h);
  if (h * 4 <= n) walsh_pass<V, 4>(P, n, h);
  if (h * 2 == n) walsh_pass<V, 2>(P, n, h);
  for (int32_t c = g.first; c < g.first + g.count; ++c)
    V::storeu(O + plan.out[c] * kRows, V::mul(V::loadu(P + plan.z[c] * kRows), V::set1(plan.scale[c])));
}

// Every group's sums from the transposed phi T ([2 D][kRows], re then im)
// into O ([strings][kRows]), for the lane blocks that hold rows [0,
// rows); P [D][kRows] is scratch.
template <class V>
void group_sums(const PauliPlan& plan, const float* T, float* P, float* O, int64_t rows) {
  for (int64_t lane = 0; lane < kRows && lane < rows; lane += V::kLanes) {
    for (int64_t gi = 0; gi < plan.n_groups; ++gi) {
      const PauliPlanGroup& g = plan.groups[gi];
      if (g.walsh) {
        group_walsh<V>(plan, g, T + lane, P + lane, O + lane);
        continue;
      }
      const int c = g.count < 8 ? g.count : 8;  // the plan's limit (kPauliDirectStrings)
      kDirectKernels<V>[c - 1][g.imaginary][plan.D < 8](plan, g, T + lane, O + lane);
    }
  }
}

// One qubit's L1 gate (RY(b) RX(a), complex 2 x 2) in registers.
template <class V>
struct L1Gate {
  using T = typename V::T;
  T r00, i00, r01, i01, r10, i10, r11, i11;
  explicit L1Gate(const float* g)
      : r00(V::set1(g[0])),
        i00(V::set1(g[1])),
        r01(V::set1(g[2])),
        i01(V::set1(g[3])),
        r10(V::set1(g[4])),
        i10(V::set1(g[5])),
        r11(V::set1(g[6])),
        i11(V::set1(g[7])) {}
  // (a, b) <- G (a, b) for complex a = ar + i ai, b = br + i bi.
  void apply(T& ar, T& ai, T& br, T& bi) const {
    const T xr = ar, xi = ai, yr = br, yi = bi;
    // (r + i i)(x + i y) = (r x - i y) + i (r y + i x), for both columns.
    ar = V::fnmadd(i01, yi, V::fmadd(r01, yr, V::fnmadd(i00, xi, V::mul(r00, xr))));
    ai = V::fmadd(i01, yr, V::fmadd(r01, yi, V::fmadd(i00, xr, V::mul(r00, xi))));
    br = V::fnmadd(i11, yi, V::fmadd(r11, yr, V::fnmadd(i10, xi, V::mul(r10, xr))));
    bi = V::fmadd(i11, yr, V::fmadd(r11, yi, V::fmadd(i10, xr, V::mul(r10, xi))));
  }
  // The same on real inputs x, y (half the work).
  void apply_real(T x, T y, T& ar, T& ai, T& br, T& bi) const {
    ar = V::fmadd(r01, y, V::mul(r00, x));
    ai = V::fmadd(i01, y, V::mul(i00, x));
    br = V::fmadd(r11, y, V::mul(r10, x));
    bi = V::fmadd(i11, y, V::mul(i10, x));
  }
};

// (u, v) <- RY(c) (u, v) for one plane.
template <class V>
inline void l3_rotate(typename V::T cs, typename V::T sn, typename V::T& u, typename V::T& v) {
  const auto a = u, b = v;
  u = V::fnmadd(sn, b, V::mul(cs, a));
  v = V::fmadd(sn, a, V::mul(cs, b));
}

// f(s) for each state s whose bits 2 lb and lb are clear: the quadruple
// s, s + lb, s + 2 lb, s + 3 lb of two adjacent qubits.
template <class F>
inline void quads(int64_t D, int64_t lb, F f) {
  for (int64_t a = 0; a < D; a += 4 * lb)
    for (int64_t s = a; s < a + lb; ++s) f(s);
}

// U = L3 P L1 on one lane block (at Xr, Xi, Yr, Yi, kRows apart per
// state; Xr holds x zero-padded to D): L1's complex gates two qubits per
// pass over the states (a pass keeps four states in registers; the first
// one starts from the real psi = x * inv), then L3's real gates two qubits
// per pass on Y, the first pass reading P x from X by the index map.
template <class V>
void circuit_block(const CircuitPlan& c, int64_t D, typename V::T inv, float* Xr, float* Xi, float* Yr, float* Yi) {
  using T = typename V::T;
  const int64_t n = c.n;
  auto at = [](float* base, int64_t s) { return base + s * kRows; };
  {  // L1, qubits 0 and 1 (n >= 2) on the real psi.
    const L1Gate<V> g0(c.l1), g1(c.l1 + 8);
    const int64_t lb = D / 4;
    quads(D, lb, [&](int64_t s) {
      T r[4], i[4];
      auto psi = [&](int64_t k) { return V::mul(V::loadu(at(Xr, s + k * lb)), inv); };
      g0.apply_real(psi(0), psi(2), r[0], i[0], r[2], i[2]);
      g0.apply_real(psi(1), psi(3), r[1], i[1], r[3], i[3]);
      g1.apply(r[0], i[0], r[1], i[1]);
      g1.apply(r[2], i[2], r[3], i[3]);
      for (int k = 0; k < 4; ++k) {
        V::storeu(at(Xr, s + k * lb), r[k]);
        V::storeu(at(Xi, s + k * lb), i[k]);
      }
    });
  }
  int64_t j = 2;
  for (; j + 1 < n; j += 2) {
    const L1Gate<V> gh(c.l1 + 8 * j), gl(c.l1 + 8 * (j + 1));
    const int64_t lb = int64_t{1} << (n - 2 - j);
    quads(D, lb, [&](int64_t s) {
      T r[4], i[4];
      for (int k = 0; k < 4; ++k) {
        r[k] = V::loadu(at(Xr, s + k * lb));
        i[k] = V::loadu(at(Xi, s + k * lb));
      }
      gh.apply(r[0], i[0], r[2], i[2]);
      gh.apply(r[1], i[1], r[3], i[3]);
      gl.apply(r[0], i[0], r[1], i[1]);
      gl.apply(r[2], i[2], r[3], i[3]);
      for (int k = 0; k < 4; ++k) {
        V::storeu(at(Xr, s + k * lb), r[k]);
        V::storeu(at(Xi, s + k * lb), i[k]);
      }
    });
  }
  if (j < n) {  // odd n: the last qubit alone (bit 0)
    const L1Gate<V> g(c.l1 + 8 * j);
    for (int64_t s = 0; s < D; s += 2) {
      T ar = V::loadu(at(Xr, s)), ai = V::loadu(at(Xi, s));
      T br = V::loadu(at(Xr, s + 1)), bi = V::loadu(at(Xi, s + 1));
      g.apply(ar, ai, br, bi);
      V::storeu(at(Xr, s), ar);
      V::storeu(at(Xi, s), ai);
      V::storeu(at(Xr, s + 1), br);
      V::storeu(at(Xi, s + 1), bi);
    }
  }
  {  // L3, qubits 0 and 1 on (P x)[s] = x[inv_perm[s]], into Y.
    const T c0 = V::set1(c.l3[0]), s0 = V::set1(c.l3[1]);
    const T c1 = V::set1(c.l3[2]), s1 = V::set1(c.l3[3]);
    const int64_t lb = D / 4;
    quads(D, lb, [&](int64_t s) {
      float* const from[2] = {Xr, Xi};
      float* const to[2] = {Yr, Yi};
      for (int part = 0; part < 2; ++part) {
        T v[4];
        for (int k = 0; k < 4; ++k) v[k] = V::loadu(at(from[part], c.inv_perm[s + k * lb]));
        l3_rotate<V>(c0, s0, v[0], v[2]);
        l3_rotate<V>(c0, s0, v[1], v[3]);
        l3_rotate<V>(c1, s1, v[0], v[1]);
        l3_rotate<V>(c1, s1, v[2], v[3]);
        for (int k = 0; k < 4; ++k) V::storeu(at(to[part], s + k * lb), v[k]);
      }
    });
  }
  for (j = 2; j + 1 < n; j += 2) {
    const T ch = V::set1(c.l3[2 * j]), sh = V::set1(c.l3[2 * j + 1]);
    const T cl = V::set1(c.l3[2 * j + 2]), sl = V::set1(c.l3[2 * j + 3]);
    const int64_t lb = int64_t{1} << (n - 2 - j);
    quads(D, lb, [&](int64_t s) {
      float* const planes[2] = {Yr, Yi};
      for (float* y : planes) {
        T v[4];
        for (int k = 0; k < 4; ++k) v[k] = V::loadu(at(y, s + k * lb));
        l3_rotate<V>(ch, sh, v[0], v[2]);
        l3_rotate<V>(ch, sh, v[1], v[3]);
        l3_rotate<V>(cl, sl, v[0], v[1]);
        l3_rotate<V>(cl, sl, v[2], v[3]);
        for (int k = 0; k < 4; ++k) V::storeu(at(y, s + k * lb), v[k]);
      }
    });
  }
  if (j < n) {
    const T cs = V::set1(c.l3[2 * j]), sn = V::set1(c.l3[2 * j + 1]);
    float* const planes[2] = {Yr, Yi};
    for (float* y : planes)
      for (int64_t s = 0; s < D; s += 2) {
        T u = V::loadu(at(y, s)), v = V::loadu(at(y, s + 1));
        l3_rotate<V>(cs, sn, u, v);
        V::storeu(at(y, s), u);
        V::storeu(at(y, s + 1), v);
      }
  }
}

// The encoding's factor per lane of a block at Xr ([d][kRows]): 1, or
// 1 / max(|x|, 1e-12) when normalized.
template <class V>
typename V::T encoding_inv(const float* Xr, int64_t d, bool normalized) {
  if (!normalized) return V::set1(1.0f);
  auto a0 = V::zero(), a1 = a0;
  int64_t s = 0;
  for (; s + 1 < d; s += 2) {
    const auto u = V::loadu(Xr + s * kRows), v = V::loadu(Xr + (s + 1) * kRows);
    a0 = V::fmadd(u, u, a0);
    a1 = V::fmadd(v, v, a1);
  }
  if (s < d) {
    const auto u = V::loadu(Xr + s * kRows);
    a0 = V::fmadd(u, u, a0);
  }
  return V::div(V::set1(1.0f), V::max(V::sqrt(V::add(a0, a1)), V::set1(1e-12f)));
}

// The encoding (psi = x, or x / max(|x|, 1e-12) per lane when normalized;
// x transposed into Xr [d][kRows]) and U = L3 P L1 into Y, for the lane
// blocks that hold rows [0, rows). Xr is zero-padded from d to D here.
template <class V>
void circuit_rows(const CircuitPlan& c, int64_t D, int64_t d, int64_t rows, bool normalized, float* Xr, float* Xi,
                  float* Yr, float* Yi) {
  for (int64_t s = d; s < D; ++s)
    for (int64_t lane = 0; lane < kRows; lane += V::kLanes) V::storeu(Xr + s * kRows + lane, V::zero());
  for (int64_t lane = 0; lane < kRows && lane < rows; lane += V::kLanes)  // 1 / |x| applied as the first pass loads x
    circuit_block<V>(c, D, encoding_inv<V>(Xr + lane, d, normalized), Xr + lane, Xi + lane, Yr + lane, Yi + lane);
}

// The encoding and phi = U psi with a small state's dense U (u_cols:
// SmallValueKernel's layout [d][2 kPauliLaneStates], D <= kPauliLaneStates)
// as broadcast multiply-adds, from Xr [d][kRows] into Yr, Yi [D][kRows],
// for the lane blocks that hold rows [0, rows). At these sizes the dense U
// costs fewer flops than the circuit's gates.
template <class V>
void unitary_rows(const float* u_cols, int64_t D, int64_t d, int64_t rows, bool normalized, const float* Xr, float* Yr,
                  float* Yi) {
  for (int64_t lane = 0; lane < kRows && lane < rows; lane += V::kLanes) {
    const auto inv = encoding_inv<V>(Xr + lane, d, normalized);
    for (int64_t j = 0; j < D; j += 2) {  // two states per x load (D: a power of two, at least 2)
      auto a0 = V::zero(), b0 = a0, a1 = a0, b1 = a0;
      for (int64_t c = 0; c < d; ++c) {
        const auto x = V::loadu(Xr + c * kRows + lane);
        const float* col = u_cols + c * 2 * kPauliLaneStates + j;
        a0 = V::fmadd(V::set1(col[0]), x, a0);
        a1 = V::fmadd(V::set1(col[1]), x, a1);
        b0 = V::fmadd(V::set1(col[kPauliLaneStates]), x, b0);
        b1 = V::fmadd(V::set1(col[kPauliLaneStates + 1]), x, b1);
      }
      V::storeu(Yr + j * kRows + lane, V::mul(a0, inv));
      V::storeu(Yr + (j + 1) * kRows + lane, V::mul(a1, inv));
      V::storeu(Yi + j * kRows + lane, V::mul(b0, inv));
      V::storeu(Yi + (j + 1) * kRows + lane, V::mul(b1, inv));
    }
  }
}

// PauliRowsKernel: phi of up to kRows rows transposed to [state][row],
// every group's sums lane-wise, the sums transposed back to rows.
template <class V, class X>
void pauli_rows(const PauliPlan& plan, const float* phi, int64_t ld, int64_t rows, float* out, int64_t stride,
                float* scratch) {
  const int64_t D = plan.D;
  float* T = scratch;            // [2 D][kRows]
  float* P = T + 4 * D * kRows;  // [D][kRows]
  float* O = P + D * kRows;      // [strings rounded up to kRows][kRows]
  X::to_lanes(phi, ld, rows, 2 * D, T);
  group_sums<V>(plan, T, P, O, rows);
  X::to_rows(O, plan.strings, rows, out, stride);
}

// x transposed into Xr, then phi(Xr, Xi, Yr, Yi) puts the encoded state's
// U psi into Y (Xi: its scratch), the sums from Y: the kernels below.
template <class V, class X, class Phi>
void value_rows(const PauliPlan& plan, const float* x, int64_t ld, int64_t d, int64_t rows, float* out, int64_t stride,
                float* scratch, Phi phi) {
  const int64_t D = plan.D;
  float* Xr = scratch;  // [D][kRows] each
  float* Xi = Xr + D * kRows;
  float* Yr = Xi + D * kRows;
  float* Yi = Yr + D * kRows;
  float* P = Yi + D * kRows;
  float* O = P + D * kRows;
  X::to_lanes(x, ld, rows, d, Xr);
  phi(Xr, Xi, Yr, Yi);
  group_sums<V>(plan, Yr, P, O, rows);
  X::to_rows(O, plan.strings, rows, out, stride);
}

// CircuitPauliRowsKernel: the encoding and the circuit.
template <class V, class X>
void circuit_pauli_rows(const CircuitPlan& c, const PauliPlan& plan, const float* x, int64_t ld, int64_t d,
                        int64_t rows, bool normalized, float* out, int64_t stride, float* scratch) {
  value_rows<V, X>(plan, x, ld, d, rows, out, stride, scratch, [&](float* Xr, float* Xi, float* Yr, float* Yi) {
    circuit_rows<V>(c, plan.D, d, rows, normalized, Xr, Xi, Yr, Yi);
  });
}

// UnitaryPauliRowsKernel: the encoding and a small state's dense U in
// place of the gates.
template <class V, class X>
void unitary_pauli_rows(const PauliPlan& plan, const float* u_cols, const float* x, int64_t ld, int64_t d, int64_t rows,
                        bool normalized, float* out, int64_t stride, float* scratch) {
  value_rows<V, X>(plan, x, ld, d, rows, out, stride, scratch, [&](float* Xr, float*, float* Yr, float* Yi) {
    unitary_rows<V>(u_cols, plan.D, d, rows, normalized, Xr, Yr, Yi);
  });
}

}  // namespace rows_in_lanes
}  // namespace
}  // namespace qisa
