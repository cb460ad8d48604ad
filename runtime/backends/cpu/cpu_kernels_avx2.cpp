// AVX2 + FMA + F16C kernels. This file, cpu_batch_avx2.cpp and
// cpu_rows_avx2.cpp alone are compiled with those instructions enabled
// (runtime/backends/cpu/CMakeLists.txt) and are only entered after the CPU
// reported them, so they stay free of inline library code that the rest of
// the library could end up sharing.
#include <cpuid.h>
#include <immintrin.h>

#include <math.h>

#include <cstring>

#include "avx2_batch.h"
#include "avx2_rows.h"
#include "avx2_support.h"
#include "circuit_loops.h"
#include "cpu_kernels.h"
#include "dtype_blocks.h"
#include "rounded_linear.h"

namespace qisa {

namespace {

constexpr size_t kBlock = kQ8Block, kBlockBytes = kQ8BlockBytes;
// How far ahead the few-row products read each weight row: decode steps
// stream the weights once, and the hardware prefetcher alone left them
// waiting on memory (measured at n_embd 768 with AVX-512 VNNI: q8_0 3.1
// against 1.9 ms per step).
constexpr int64_t kPrefetchBytes = 2048;

inline void prefetch(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Weight loaders: 8 values from element i of a row.
struct F32 {
  static constexpr int64_t kBytes = 4;
  static __m256 load(const uint8_t* w, int64_t i) { return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + i); }
  static float one(const uint8_t* w, int64_t i) {
    float f;
    std::memcpy(&f, w + 4 * i, 4);
    return f;
  }
};
struct F16 {
  static constexpr int64_t kBytes = 2;
  static __m256 load(const uint8_t* w, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
  }
  static float one(const uint8_t* w, int64_t i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, 2);
    return _cvtsh_ss(h);
  }
};
struct BF16 {
  static constexpr int64_t kBytes = 2;
  static __m256 load(const uint8_t* w, int64_t i) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static float one(const uint8_t* w, int64_t i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, 2);
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

template <class W>
float dot(const float* x, const uint8_t* w, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), W::load(w, i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), W::load(w, i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), W::load(w, i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), W::load(w, i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), W::load(w, i), a0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) s += x[i] * W::one(w, i);
  return s;
}

// Four sums of 8 lanes each, as one vector {a, b, c, d}.
inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// Eight sums of 8 lanes each, as one vector {a0, ..., a7}.
inline __m256 hsum8(const __m256 (&a)[8]) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Dots of x with four weight rows at once: each x load serves four rows and
// the four horizontal sums share their shuffles (a decode step is a row of
// such dots of a few hundred elements, where one dot at a time spends as
// much on its reduction as on its products).
// Not inlined: as its own function the row pointers stay in registers
// (inlined into the output loop, GCC spilled them and reloaded every step).
template <class W>
__attribute__((noinline)) __m128 dot4(const float* x, const uint8_t* w0, const uint8_t* w1, const uint8_t* w2,
                                      const uint8_t* w3, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  // Two steps per iteration: 8 independent products in flight. The four
  // weight streams are read ahead by kPrefetchBytes.
  for (; i + 16 <= n; i += 16) {
    const int64_t ahead = W::kBytes * i + kPrefetchBytes;
    prefetch(w0 + ahead);
    prefetch(w1 + ahead);
    prefetch(w2 + ahead);
    prefetch(w3 + ahead);
    const __m256 v = _mm256_loadu_ps(x + i), u = _mm256_loadu_ps(x + i + 8);
    const __m256 p0 = W::load(w0, i), p1 = W::load(w1, i), p2 = W::load(w2, i), p3 = W::load(w3, i);
    const __m256 q0 = W::load(w0, i + 8), q1 = W::load(w1, i + 8), q2 = W::load(w2, i + 8), q3 = W::load(w3, i + 8);
    a0 = _mm256_fmadd_ps(u, q0, _mm256_fmadd_ps(v, p0, a0));
    a1 = _mm256_fmadd_ps(u, q1, _mm256_fmadd_ps(v, p1, a1));
    a2 = _mm256_fmadd_ps(u, q2, _mm256_fmadd_ps(v, p2, a2));
    a3 = _mm256_fmadd_ps(u, q3, _mm256_fmadd_ps(v, p3, a3));
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    a0 = _mm256_fmadd_ps(v, W::load(w0, i), a0);
    a1 = _mm256_fmadd_ps(v, W::load(w1, i), a1);
    a2 = _mm256_fmadd_ps(v, W::load(w2, i), a2);
    a3 = _mm256_fmadd_ps(v, W::load(w3, i), a3);
  }
  __m128 s = hsum4(a0, a1, a2, a3);
  if (i < n) {
    alignas(16) float t[4] = {0, 0, 0, 0};
    for (; i < n; ++i) {
      t[0] += x[i] * W::one(w0, i);
      t[1] += x[i] * W::one(w1, i);
      t[2] += x[i] * W::one(w2, i);
      t[3] += x[i] * W::one(w3, i);
    }
    s = _mm_add_ps(s, _mm_load_ps(t));
  }
  return s;
}

// y[r, o] = bias[o] + x[r] . w[o] for every row r, four outputs at a time
// (their weight rows are read once for all rows); `Dot4` and `Dot1` give
// the dots of four weight rows and of one. A matrix of kSequentialRowsBytes
// or more goes one weight row at a time (rounded_linear.h).
template <class Dot4, class Dot1>
void linear_by4(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
                const float* bias, int64_t rows, int64_t in, int64_t out, Dot4 dot4_of, Dot1 dot_of) {
  const bool by4 = static_cast<size_t>(out) * w_stride < kSequentialRowsBytes;
  int64_t o = 0;
  for (; by4 && o + 4 <= out; o += 4) {
    const uint8_t* wo = w + static_cast<size_t>(o) * w_stride;
    const __m128 b = bias ? _mm_loadu_ps(bias + o) : _mm_setzero_ps();
    for (int64_t r = 0; r < rows; ++r)
      _mm_storeu_ps(y + r * ldy + o,
                    _mm_add_ps(b, dot4_of(x + r * ldx, wo, wo + w_stride, wo + 2 * w_stride, wo + 3 * w_stride, in)));
  }
  for (; o < out; ++o) {
    const uint8_t* wo = w + static_cast<size_t>(o) * w_stride;
    const float b = bias ? bias[o] : 0.0f;
    for (int64_t r = 0; r < rows; ++r) y[r * ldy + o] = b + dot_of(x + r * ldx, wo, in);
  }
}

// Short rows (in <= kShortRow): dots of x with eight weight rows, whose
// eight reductions share one hsum8. Below this length the reductions and
// calls were most of the time (a decode step of the research models'
// width, 16, ran its 16x16 products as four calls of four reductions).
constexpr int64_t kShortRow = 64;

template <class W>
__attribute__((noinline)) __m256 dot8(const float* x, const uint8_t* w, size_t w_stride, int64_t n) {
  __m256 a[8];
#pragma GCC unroll 8
  for (int t = 0; t < 8; ++t) a[t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) a[t] = _mm256_fmadd_ps(v, W::load(w + t * w_stride, i), a[t]);
  }
  __m256 s = hsum8(a);
  if (i < n) {
    alignas(32) float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; i < n; ++i)
      for (int k = 0; k < 8; ++k) t[k] += x[i] * W::one(w + k * w_stride, i);
    s = _mm256_add_ps(s, _mm256_load_ps(t));
  }
  return s;
}

template <class W>
void linear(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride, const float* bias,
            int64_t rows, int64_t in, int64_t out) {
  if (in <= kShortRow) {  // eight outputs at a time, the rest by four
    int64_t o = 0;
    for (; o + 8 <= out; o += 8) {
      const uint8_t* wo = w + static_cast<size_t>(o) * w_stride;
      const __m256 b = bias ? _mm256_loadu_ps(bias + o) : _mm256_setzero_ps();
      for (int64_t r = 0; r < rows; ++r)
        _mm256_storeu_ps(y + r * ldy + o, _mm256_add_ps(b, dot8<W>(x + r * ldx, wo, w_stride, in)));
    }
    y += o;
    w += static_cast<size_t>(o) * w_stride;
    if (bias) bias += o;
    out -= o;
  }
  // Lambdas, not function pointers: each instantiation inlines its dots.
  linear_by4(
      y, ldy, x, ldx, w, w_stride, bias, rows, in, out, [](auto... a) { return dot4<W>(a...); },
      [](auto... a) { return dot<W>(a...); });
}

// 8 int8 values as f32.
inline __m256 widen(const uint8_t* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q))));
}

// Q8_0 rows: per 32-block, scale * (x . q) with q widened to f32.
float dot_q8(const float* x, const uint8_t* w, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t b0 = 0;
  for (; b0 + static_cast<int64_t>(kBlock) <= n; b0 += kBlock, w += kBlockBytes) {
    const uint8_t* q = w + 2;
    __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x + b0), widen(q));
    t = _mm256_fmadd_ps(_mm256_loadu_ps(x + b0 + 8), widen(q + 8), t);
    t = _mm256_fmadd_ps(_mm256_loadu_ps(x + b0 + 16), widen(q + 16), t);
    t = _mm256_fmadd_ps(_mm256_loadu_ps(x + b0 + 24), widen(q + 24), t);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(scale_of(w)), t, acc);
  }
  float s = hsum(acc);
  if (b0 < n) {  // the last, partial block
    float t = 0.0f;
    for (int64_t i = 0; b0 + i < n; ++i) t += x[b0 + i] * static_cast<float>(static_cast<int8_t>(w[2 + i]));
    s += scale_of(w) * t;
  }
  return s;
}

// Four Q8_0 rows at once: the x block is loaded once for the four.
__attribute__((noinline)) __m128 dot4_q8(const float* x, const uint8_t* w0, const uint8_t* w1, const uint8_t* w2,
                                         const uint8_t* w3, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t b0 = 0;
  size_t off = 0;
  for (; b0 + static_cast<int64_t>(kBlock) <= n; b0 += kBlock, off += kBlockBytes) {
    prefetch(w0 + off + kPrefetchBytes);
    prefetch(w1 + off + kPrefetchBytes);
    prefetch(w2 + off + kPrefetchBytes);
    prefetch(w3 + off + kPrefetchBytes);
    const __m256 x0 = _mm256_loadu_ps(x + b0), x1 = _mm256_loadu_ps(x + b0 + 8);
    const __m256 x2 = _mm256_loadu_ps(x + b0 + 16), x3 = _mm256_loadu_ps(x + b0 + 24);
    auto block = [&](const uint8_t* w, __m256 acc) {
      const uint8_t* q = w + off + 2;
      __m256 t = _mm256_mul_ps(x0, widen(q));
      t = _mm256_fmadd_ps(x1, widen(q + 8), t);
      t = _mm256_fmadd_ps(x2, widen(q + 16), t);
      t = _mm256_fmadd_ps(x3, widen(q + 24), t);
      return _mm256_fmadd_ps(_mm256_set1_ps(scale_of(w + off)), t, acc);
    };
    a0 = block(w0, a0);
    a1 = block(w1, a1);
    a2 = block(w2, a2);
    a3 = block(w3, a3);
  }
  __m128 s = hsum4(a0, a1, a2, a3);
  if (b0 < n) {  // the last, partial block
    alignas(16) float t[4];
    const uint8_t* ws[4] = {w0 + off, w1 + off, w2 + off, w3 + off};
    for (int k = 0; k < 4; ++k) {
      float u = 0.0f;
      for (int64_t i = 0; b0 + i < n; ++i) u += x[b0 + i] * static_cast<float>(static_cast<int8_t>(ws[k][2 + i]));
      t[k] = scale_of(ws[k]) * u;
    }
    s = _mm_add_ps(s, _mm_load_ps(t));
  }
  return s;
}

// Blocks of 8: index j0 + l reads (j0 ^ (x & ~7)) + (l ^ (x & 7)), one
// contiguous load and a lane permutation.
// Re (or Im) of conj(phi[j ^ x]) phi[j] for the 8 states from j0: the
// partner block j0 ^ hi (hi = x without its low 3 bits) loaded whole and
// its lanes permuted by x's low bits (perm).
inline __m256 pauli_products8(const float* re, const float* im, int64_t j0, int64_t hi, __m256i perm, bool imaginary) {
  const int64_t s = j0 ^ hi;
  const __m256 are = _mm256_permutevar8x32_ps(_mm256_loadu_ps(re + s), perm);
  const __m256 aim = _mm256_permutevar8x32_ps(_mm256_loadu_ps(im + s), perm);
  const __m256 bre = _mm256_loadu_ps(re + j0), bim = _mm256_loadu_ps(im + j0);
  return imaginary ? _mm256_fmsub_ps(are, bim, _mm256_mul_ps(aim, bre))
                   : _mm256_fmadd_ps(are, bre, _mm256_mul_ps(aim, bim));
}

void pauli_products(float* p, const float* re, const float* im, uint64_t x, bool imaginary, int64_t D) {
  const auto xm = static_cast<int64_t>(x);
  if (D < 8) {
    for (int64_t j = 0; j < D; ++j)
      p[j] = imaginary ? re[j ^ xm] * im[j] - im[j ^ xm] * re[j] : re[j ^ xm] * re[j] + im[j ^ xm] * im[j];
    return;
  }
  const int lo = static_cast<int>(xm & 7);
  const __m256i perm = _mm256_xor_si256(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(lo));
  const int64_t hi = xm & ~int64_t{7};
  for (int64_t j0 = 0; j0 < D; j0 += 8) _mm256_storeu_ps(p + j0, pauli_products8(re, im, j0, hi, perm, imaginary));
}

// Sign bits of lane l for the low three bits m of a Z mask: parity(l & m).
struct LaneSigns {
  alignas(32) uint32_t mask[8][8];
};
constexpr LaneSigns make_lane_signs() {
  LaneSigns t{};
  for (uint32_t m = 0; m < 8; ++m)
    for (uint32_t l = 0; l < 8; ++l) t.mask[m][l] = (__builtin_popcount(l & m) & 1) ? 0x80000000u : 0u;
  return t;
}
constexpr LaneSigns kLaneSigns = make_lane_signs();

// +1, or -1 where `odd`, in every lane.
inline __m256 plus_minus(bool odd) {
  return _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x3f800000u | (odd ? 0x80000000u : 0u))));
}

// sum over blocks b < B (a power of two) of (-1)^parity(b & zb) v(b), the
// vectors v(b) of blocks of 8 states: a string's signed sum over the
// states is this with zb = z >> 3, its lane signs (parity(l & z & 7))
// applied once to the result. Four blocks per step, combined by the two
// low bits of zb as v0 + s0 v1 + s1 (v2 + s0 v3), then the step's own
// sign (no per-block sign work: it took a third of the per-row sums).
template <class V>
inline __m256 signed_blocks(int64_t B, uint64_t zb, V v) {
  if (B == 1) return v(0);
  const __m256 s0 = plus_minus(zb & 1);
  if (B == 2) return _mm256_fmadd_ps(v(1), s0, v(0));
  const __m256 s1 = plus_minus(zb & 2);
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  for (int64_t b = 0; b < B; b += 8) {  // two steps per pass: their adds do not wait on each other
    const __m256 q0 = _mm256_fmadd_ps(_mm256_fmadd_ps(v(b + 3), s0, v(b + 2)), s1, _mm256_fmadd_ps(v(b + 1), s0, v(b)));
    a0 = _mm256_fmadd_ps(q0, plus_minus(__builtin_popcountll(static_cast<uint64_t>(b) & zb) & 1), a0);
    if (b + 4 < B) {
      const __m256 q1 =
          _mm256_fmadd_ps(_mm256_fmadd_ps(v(b + 7), s0, v(b + 6)), s1, _mm256_fmadd_ps(v(b + 5), s0, v(b + 4)));
      a1 = _mm256_fmadd_ps(q1, plus_minus(__builtin_popcountll(static_cast<uint64_t>(b + 4) & zb) & 1), a1);
    }
  }
  return _mm256_add_ps(a0, a1);
}

inline __m256 lane_signs(uint64_t z) {
  return _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(kLaneSigns.mask[z & 7])));
}

// Blocks of 8: the sign of lane l is parity(l & z & 7) (fixed per string),
// times parity(j0 & z) for the block (signed_blocks).
float signed_sum(const float* p, uint64_t z, int64_t D) {
  if (D < 8) {
    float s = 0.0f;
    for (int64_t j = 0; j < D; ++j) s += (__builtin_popcountll(static_cast<uint64_t>(j) & z) & 1) ? -p[j] : p[j];
    return s;
  }
  const __m256 sum = signed_blocks(D / 8, z >> 3, [&](int64_t b) { return _mm256_loadu_ps(p + 8 * b); });
  return hsum(_mm256_xor_ps(sum, lane_signs(z)));
}

// y = M v for a K = 8 matrix stored [column][row] and the 8 values at v:
// one broadcast and one FMA per column.
inline __m256 run_product(const float* m, const float* v) {
  __m256 y = _mm256_mul_ps(_mm256_loadu_ps(m), _mm256_broadcast_ss(v));
  for (int c = 1; c < 8; ++c) y = _mm256_fmadd_ps(_mm256_loadu_ps(m + 8 * c), _mm256_broadcast_ss(v + c), y);
  return y;
}

// U psi stage by stage on vectors of 8 amplitudes when the last three
// qubits form the run matrices and P goes by blocks (plan.perm_*): L1's
// runs on the real psi (half the work of a complex input), its other
// qubits on vector pairs, P as two lane permutations and a blend per block
// with L3's runs applied on the way, L3's other qubits on vector pairs.
// Otherwise the portable loops (circuit_loops.h).
void circuit(const CircuitPlan& plan, const float* psi, int64_t d, float* re, float* im, float* scratch) {
  if (plan.K != 8 || plan.D < 16 || !plan.perm_blocks) {
    circuit_apply(plan, psi, d, re, im, scratch);
    return;
  }
  const int64_t D = plan.D, high = plan.n - plan.low;
  float* xr = scratch;
  float* xi = scratch + D;
  for (int64_t i0 = 0; i0 < D; i0 += 8) {
    __m256 yr = _mm256_setzero_ps(), yi = yr;
    if (i0 < d) {
      alignas(32) float tail[8] = {};
      const float* x = psi + i0;
      if (d - i0 < 8) {
        for (int64_t l = 0; l < d - i0; ++l) tail[l] = psi[i0 + l];
        x = tail;
      }
      yr = run_product(plan.l1_low_re, x);
      yi = run_product(plan.l1_low_im, x);
    }
    _mm256_storeu_ps(xr + i0, yr);
    _mm256_storeu_ps(xi + i0, yi);
  }
  for (int64_t j = 0; j < high; ++j) {
    const int64_t b = int64_t{1} << (plan.n - 1 - j);
    const float* g = plan.l1 + 8 * j;
    const __m256 r00 = _mm256_set1_ps(g[0]), i00 = _mm256_set1_ps(g[1]), r01 = _mm256_set1_ps(g[2]),
                 i01 = _mm256_set1_ps(g[3]), r10 = _mm256_set1_ps(g[4]), i10 = _mm256_set1_ps(g[5]),
                 r11 = _mm256_set1_ps(g[6]), i11 = _mm256_set1_ps(g[7]);
    for (int64_t i0 = 0; i0 < D; i0 += 2 * b) {
      for (int64_t i = i0; i < i0 + b; i += 8) {
        const __m256 ar = _mm256_loadu_ps(xr + i), ai = _mm256_loadu_ps(xi + i);
        const __m256 br = _mm256_loadu_ps(xr + i + b), bi = _mm256_loadu_ps(xi + i + b);
        // (r + i i)(x + i y) = (r x - i y) + i (r y + i x), for both columns.
        _mm256_storeu_ps(
            xr + i,
            _mm256_fnmadd_ps(i01, bi, _mm256_fmadd_ps(r01, br, _mm256_fnmadd_ps(i00, ai, _mm256_mul_ps(r00, ar)))));
        _mm256_storeu_ps(
            xi + i,
            _mm256_fmadd_ps(i01, br, _mm256_fmadd_ps(r01, bi, _mm256_fmadd_ps(i00, ar, _mm256_mul_ps(r00, ai)))));
        _mm256_storeu_ps(
            xr + i + b,
            _mm256_fnmadd_ps(i11, bi, _mm256_fmadd_ps(r11, br, _mm256_fnmadd_ps(i10, ai, _mm256_mul_ps(r10, ar)))));
        _mm256_storeu_ps(
            xi + i + b,
            _mm256_fmadd_ps(i11, br, _mm256_fmadd_ps(r11, bi, _mm256_fmadd_ps(i10, ar, _mm256_mul_ps(r10, ai)))));
      }
    }
  }
  for (int64_t s0 = 0, k = 0; s0 < D; s0 += 8, ++k) {
    const __m256i lanes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.perm_lanes + 8 * k));
    const __m256 second =
        _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.perm_second + 8 * k)));
    const int64_t a = plan.perm_blocks[2 * k], b = plan.perm_blocks[2 * k + 1];
    alignas(32) float vr[8], vi[8];
    _mm256_store_ps(vr, _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(xr + a), lanes),
                                         _mm256_permutevar8x32_ps(_mm256_loadu_ps(xr + b), lanes), second));
    _mm256_store_ps(vi, _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(xi + a), lanes),
                                         _mm256_permutevar8x32_ps(_mm256_loadu_ps(xi + b), lanes), second));
    _mm256_storeu_ps(re + s0, run_product(plan.l3_low, vr));
    _mm256_storeu_ps(im + s0, run_product(plan.l3_low, vi));
  }
  for (int64_t j = 0; j < high; ++j) {
    const int64_t b = int64_t{1} << (plan.n - 1 - j);
    const __m256 c = _mm256_set1_ps(plan.l3[2 * j]), sn = _mm256_set1_ps(plan.l3[2 * j + 1]);
    float* const planes[2] = {re, im};  // a plain array: no initializer_list in this file
    for (float* x : planes) {
      for (int64_t i0 = 0; i0 < D; i0 += 2 * b) {
        for (int64_t i = i0; i < i0 + b; i += 8) {
          const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + b);
          _mm256_storeu_ps(x + i, _mm256_fnmadd_ps(sn, v, _mm256_mul_ps(c, u)));
          _mm256_storeu_ps(x + i + b, _mm256_fmadd_ps(sn, u, _mm256_mul_ps(c, v)));
        }
      }
    }
  }
}

// Strides 8 and up: whole vectors; 4, 2, 1: inside each vector, as
// (swapped halves) + sign * v, so lane pairs become (a + b, a - b).
void walsh_hadamard(float* p, int64_t D) {
  if (D < 8) {
    for (int64_t h = 1; h < D; h *= 2)
      for (int64_t j0 = 0; j0 < D; j0 += 2 * h)
        for (int64_t j = j0; j < j0 + h; ++j) {
          const float a = p[j], b = p[j + h];
          p[j] = a + b;
          p[j + h] = a - b;
        }
    return;
  }
  const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1), s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
  const __m256 s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
  for (int64_t j = 0; j < D; j += 8) {
    __m256 v = _mm256_loadu_ps(p + j);
    v = _mm256_fmadd_ps(v, s1, _mm256_permute_ps(v, 0xB1));       // swap neighbours
    v = _mm256_fmadd_ps(v, s2, _mm256_permute_ps(v, 0x4E));       // swap pairs
    v = _mm256_fmadd_ps(v, s4, _mm256_permute2f128_ps(v, v, 1));  // swap halves
    _mm256_storeu_ps(p + j, v);
  }
  for (int64_t h = 8; h < D; h *= 2) {
    for (int64_t j0 = 0; j0 < D; j0 += 2 * h) {
      for (int64_t j = j0; j < j0 + h; j += 8) {
        const __m256 a = _mm256_loadu_ps(p + j), b = _mm256_loadu_ps(p + j + h);
        _mm256_storeu_ps(p + j, _mm256_add_ps(a, b));
        _mm256_storeu_ps(p + j + h, _mm256_sub_ps(a, b));
      }
    }
  }
}

// The blocks of 8 states a group sums over: every block, or (halved) the
// runs of 2^bit states with that bit clear; f(j0, t0) with j0 the block's
// first state and t0 its index among the group's products.
template <class F>
inline void group_blocks(int64_t D, int bit, F f) {
  if (bit < 0) {
    for (int64_t j0 = 0; j0 < D; j0 += 8) f(j0, j0);
    return;
  }
  const int64_t run = int64_t{1} << bit;
  for (int64_t base = 0, t0 = 0; base < D; base += 2 * run)
    for (int64_t j = 0; j < run; j += 8, t0 += 8) f(base + j, t0);
}

// One call per row and projection: the groups' products in registers (a
// string alone in its group: products, Z signs and sum in one pass) or in
// `p` for the signed sums or the transform of larger groups.
void pauli_sums(const PauliPlan& plan, const float* re, const float* im, float* out, float* p) {
  const int64_t D = plan.D;
  for (int64_t gi = 0; gi < plan.n_groups; ++gi) {
    const PauliPlanGroup& g = plan.groups[gi];
    const auto xm = static_cast<int64_t>(g.x);
    if (D < 8) {  // never halved (that needs 16 states)
      for (int64_t j = 0; j < D; ++j)
        p[j] = g.imaginary ? re[j ^ xm] * im[j] - im[j ^ xm] * re[j] : re[j ^ xm] * re[j] + im[j ^ xm] * im[j];
      for (int32_t c = g.first; c < g.first + g.count; ++c)
        out[plan.out[c]] = plan.scale[c] * signed_sum(p, plan.z[c], D);
      continue;
    }
    const __m256i perm =
        _mm256_xor_si256(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(xm & 7)));
    const int64_t hi = xm & ~int64_t{7};
    const int bit = g.bit;
    if (g.count == 1) {  // products, signs and sum in one pass
      const uint64_t z = plan.z[g.first];
      const int64_t n = bit < 0 ? D : D / 2, low = bit < 0 ? 0 : (int64_t{1} << bit) - 1;
      // Block b of the group's states: state t = 8 b, with `bit` put back in (clear) when halved.
      const __m256 sum = signed_blocks(n / 8, z >> 3, [&](int64_t b) {
        const int64_t t0 = 8 * b, j0 = bit < 0 ? t0 : (t0 & low) | ((t0 & ~low) << 1);
        return pauli_products8(re, im, j0, hi, perm, g.imaginary);
      });
      out[plan.out[g.first]] = plan.scale[g.first] * hsum(_mm256_xor_ps(sum, lane_signs(z)));
      continue;
    }
    group_blocks(D, bit, [&](int64_t j0, int64_t t0) {
      _mm256_storeu_ps(p + t0, pauli_products8(re, im, j0, hi, perm, g.imaginary));
    });
    const int64_t n = bit < 0 ? D : D / 2;
    if (g.walsh) {
      walsh_hadamard(p, n);  // every Z mask's signed sum at once
      for (int32_t c = g.first; c < g.first + g.count; ++c) out[plan.out[c]] = plan.scale[c] * p[plan.z[c]];
    } else {
      for (int32_t c = g.first; c < g.first + g.count; ++c)
        out[plan.out[c]] = plan.scale[c] * signed_sum(p, plan.z[c], n);
    }
  }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  return dot<F32>(a, reinterpret_cast<const uint8_t*>(b), n);
}

// e^x in 8 lanes: x = k ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so
// r is exact), e^r by Cephes' degree-7 polynomial (relative error ~1e-7),
// 2^k into the exponent bits. Below -87.3 (e^x under FLT_MIN): 0; a NaN
// stays NaN. The inputs here are scores minus their maximum and negative
// squared distances, so never large.
inline __m256 exp8(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654475f), _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);  // operand order: a NaN x passes through
  x = _mm256_max_ps(_mm256_set1_ps(-87.33654475f), x);
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// out[i0 .. i0 + 8 * NB) = scale * the sum over j of w[j] * v_pos[j][...]
// (pos[j] = j when pos is null): the accumulators stay in registers over all
// positions; up to 4 blocks, two sets of them for alternate positions (one
// set made the chain of n multiply-adds per column the step's time at small
// heads).
template <int NB>
inline void weighted_sum_block(float* out, const float* w, const uint32_t* pos, const float* values, int64_t n,
                               int64_t v_stride, int64_t i0, __m256 scale) {
  constexpr int kSets = NB <= 4 ? 2 : 1;
  __m256 acc[kSets][NB];
  for (auto& set : acc)
    for (auto& a : set) a = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + kSets <= n; j += kSets) {
    for (int k = 0; k < kSets; ++k) {
      const __m256 a = _mm256_broadcast_ss(w + j + k);
      const float* v = values + (pos ? pos[j + k] : j + k) * v_stride + i0;
      for (int b = 0; b < NB; ++b) acc[k][b] = _mm256_fmadd_ps(a, _mm256_loadu_ps(v + 8 * b), acc[k][b]);
    }
  }
  if (j < n) {
    const __m256 a = _mm256_broadcast_ss(w + j);
    const float* v = values + (pos ? pos[j] : j) * v_stride + i0;
    for (int b = 0; b < NB; ++b) acc[0][b] = _mm256_fmadd_ps(a, _mm256_loadu_ps(v + 8 * b), acc[0][b]);
  }
  for (int b = 0; b < NB; ++b) {
    __m256 t = acc[0][b];
    if constexpr (kSets == 2) t = _mm256_add_ps(t, acc[1][b]);
    _mm256_storeu_ps(out + i0 + 8 * b, _mm256_mul_ps(t, scale));
  }
}

// Lanes [0, m) of 8 (m < 8): the mask of a partial vector's loads and stores.
inline __m256i first_lanes(int64_t m) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(m)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Eight keys per pass, their sums reduced together (a small head's dots
// were mostly calls and reductions: h = 16, n = 16 took 4 four-key calls);
// past the last key, key j stands in and its sums are not stored. A head
// size that is not a multiple of 8 ends with masked loads.
void scores(float* s, const float* q, const float* keys, const float* key_norms, int64_t n, int64_t h, int64_t k_stride,
            int64_t norm_stride, bool gaussian, float scale) {
  const int64_t full = h / 8 * 8;
  const __m256i tail = first_lanes(h - full);
  const __m256 qt = _mm256_maskload_ps(q + full, tail);
  // Gaussian: -|q-k|^2 = 2 q.k - (|q|^2 + |k|^2), the keys' norms from the cache.
  __m256 qq = _mm256_mul_ps(qt, qt);
  for (int64_t i = 0; gaussian && i < full; i += 8)
    qq = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(q + i), qq);
  const __m256 qn = _mm256_set1_ps(hsum(qq));
  const __m256 vscale = _mm256_set1_ps(scale), two = _mm256_set1_ps(2.0f);
  const __m256i norm_at =
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(norm_stride)));
  for (int64_t j = 0; j < n; j += 8) {
    const float* k[8];
    for (int t = 0; t < 8; ++t) k[t] = keys + (j + t < n ? j + t : j) * k_stride;
    __m256 a[8];
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) a[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < full; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) a[t] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[t] + i), a[t]);
    }
    if (full < h) {
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) a[t] = _mm256_fmadd_ps(qt, _mm256_maskload_ps(k[t] + full, tail), a[t]);
    }
    __m256 r = hsum8(a);
    const __m256i valid = j + 8 <= n ? _mm256_set1_epi32(-1) : first_lanes(n - j);
    if (gaussian) {
      const float* kn = key_norms + j * norm_stride;
      const __m256 norms =
          norm_stride == 1 ? _mm256_maskload_ps(kn, valid)
                           : _mm256_mask_i32gather_ps(_mm256_setzero_ps(), kn, norm_at, _mm256_castsi256_ps(valid), 4);
      r = _mm256_fmsub_ps(two, r, _mm256_add_ps(qn, norms));
    } else {
      r = _mm256_mul_ps(r, vscale);
    }
    _mm256_maskstore_ps(s + j, valid, r);
  }
}

// LayerNorm row by row in three passes over the row (in L1): the sum, the
// centred squares, the scaled values; the last partial vector through
// masked loads and stores. The generic kernel's per-row calls and scalar
// passes took 15% of a batch-1024 forward at n_embd 16 (docs/benchmarks.md).
void layernorm(float* out, const float* x, const float* w, const float* b, int64_t R, int64_t d, float eps) {
  const int64_t full = d / 8 * 8;
  const __m256i tail = first_lanes(d - full);
  const __m256 tail_mask = _mm256_castsi256_ps(tail);
  const float n = static_cast<float>(d);
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= full; i += 16) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + i));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(xr + i + 8));
    }
    if (i < full) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + i));
    if (full < d) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(xr + full, tail));
    const __m256 mean = _mm256_set1_ps(hsum(_mm256_add_ps(s0, s1)) / n);
    s0 = _mm256_setzero_ps();
    s1 = s0;
    for (i = 0; i + 16 <= full; i += 16) {
      const __m256 c0 = _mm256_sub_ps(_mm256_loadu_ps(xr + i), mean),
                   c1 = _mm256_sub_ps(_mm256_loadu_ps(xr + i + 8), mean);
      s0 = _mm256_fmadd_ps(c0, c0, s0);
      s1 = _mm256_fmadd_ps(c1, c1, s1);
    }
    if (i < full) {
      const __m256 c = _mm256_sub_ps(_mm256_loadu_ps(xr + i), mean);
      s0 = _mm256_fmadd_ps(c, c, s0);
    }
    if (full < d) {
      const __m256 c = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + full, tail), mean), tail_mask);
      s1 = _mm256_fmadd_ps(c, c, s1);
    }
    const float var = hsum(_mm256_add_ps(s0, s1)) / n;
    const __m256 inv = _mm256_set1_ps(1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(var + eps))));
    for (i = 0; i < full; i += 8) {
      const __m256 c = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mean), inv);
      _mm256_storeu_ps(o + i, _mm256_fmadd_ps(c, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    if (full < d) {
      const __m256 c = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + full, tail), mean), inv);
      _mm256_maskstore_ps(o + full, tail,
                          _mm256_fmadd_ps(c, _mm256_maskload_ps(w + full, tail), _mm256_maskload_ps(b + full, tail)));
    }
  }
}

void attend(float* out, float* scores, const uint32_t* pos, int64_t n, const float* values, int64_t v_stride, int64_t h,
            bool gaussian) {
  int64_t j = 0;
  __m256 vt = _mm256_setzero_ps();
  // The weights exp(f(s)) of 8 scores from j (the last vector part full:
  // masked loads and stores, the lanes past n kept out of the total).
  auto weights = [&](auto f) {
    for (; j + 8 <= n; j += 8) {
      const __m256 e = exp8(f(_mm256_loadu_ps(scores + j)));
      _mm256_storeu_ps(scores + j, e);
      vt = _mm256_add_ps(vt, e);
    }
    if (j < n) {
      const __m256i m = first_lanes(n - j);
      const __m256 e = _mm256_and_ps(exp8(f(_mm256_maskload_ps(scores + j, m))), _mm256_castsi256_ps(m));
      _mm256_maskstore_ps(scores + j, m, e);
      vt = _mm256_add_ps(vt, e);
    }
  };
  if (gaussian) {
    // Softmax of the Gaussian kernel exp(-|q-k|^2), which lies in [0, 1]:
    // its exponential lies in [1, e], so no maximum needs subtracting.
    weights([](__m256 v) { return exp8(v); });
  } else {  // softmax
    // The maximum 8 lanes at a time; a NaN score is passed over, as by the
    // generic kernel's comparison (the NaN operand first: max returns the second).
    __m256 vm = _mm256_set1_ps(-HUGE_VALF);
    for (; j + 8 <= n; j += 8) vm = _mm256_max_ps(_mm256_loadu_ps(scores + j), vm);
    if (j < n) {
      const __m256i m = first_lanes(n - j);
      vm = _mm256_max_ps(_mm256_blendv_ps(vm, _mm256_maskload_ps(scores + j, m), _mm256_castsi256_ps(m)), vm);
    }
    __m128 h4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    h4 = _mm_max_ps(h4, _mm_movehl_ps(h4, h4));
    const __m256 vmx = _mm256_set1_ps(_mm_cvtss_f32(_mm_max_ss(h4, _mm_shuffle_ps(h4, h4, 1))));
    j = 0;
    weights([&](__m256 v) { return _mm256_sub_ps(v, vmx); });
  }
  // The weighted sum of the values by the unnormalized weights, scaled by
  // 1 / total at the end: 64 columns at a time, then the rest of the
  // vectors in one pass, then singles.
  const float inv = 1.0f / hsum(vt);
  const __m256 vinv = _mm256_set1_ps(inv);
  int64_t i0 = 0;
  for (; i0 + 64 <= h; i0 += 64) weighted_sum_block<8>(out, scores, pos, values, n, v_stride, i0, vinv);
  switch ((h - i0) / 8) {
    case 7: weighted_sum_block<7>(out, scores, pos, values, n, v_stride, i0, vinv); break;
    case 6: weighted_sum_block<6>(out, scores, pos, values, n, v_stride, i0, vinv); break;
    case 5: weighted_sum_block<5>(out, scores, pos, values, n, v_stride, i0, vinv); break;
    case 4: weighted_sum_block<4>(out, scores, pos, values, n, v_stride, i0, vinv); break;
    case 3: weighted_sum_block<3>(out, scores, pos, values, n, v_stride, i0, vinv); break;
    case 2: weighted_sum_block<2>(out, scores, pos, values, n, v_stride, i0, vinv); break;
    case 1: weighted_sum_block<1>(out, scores, pos, values, n, v_stride, i0, vinv); break;
    default: break;
  }
  for (i0 += (h - i0) / 8 * 8; i0 < h; ++i0) {
    float s = 0.0f;
    for (j = 0; j < n; ++j) s += scores[j] * values[(pos ? pos[j] : j) * v_stride + i0];
    out[i0] = s * inv;
  }
}

// Re (Im with Im) of conj(a + i b) (c + i e), a and b taken at lanes idx.
template <bool Im>
inline __m256 group_product(__m256 a, __m256 b, __m256 c, __m256 e, __m256i idx) {
  const __m256 pa = _mm256_permutevar8x32_ps(a, idx), pb = _mm256_permutevar8x32_ps(b, idx);
  return Im ? _mm256_fmsub_ps(pa, e, _mm256_mul_ps(pb, c)) : _mm256_fmadd_ps(pa, c, _mm256_mul_ps(pb, e));
}

// pauli_groups' products of the n groups from g (their lane permutations
// at perm): Im the part, Cross for x >= 8, where phi[j ^ x] for j < 8 is
// in the high vector and only the states below 8 count. Returns g + n.
template <bool Wide, bool Im, bool Cross>
__attribute__((always_inline)) inline int64_t group_run(__m256 (*prod)[Wide ? 2 : 1], const int32_t* perm, int64_t g,
                                                        int64_t n, __m256 r0, __m256 r1, __m256 m0, __m256 m1) {
  for (const int64_t end = g + n; g < end; ++g) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(perm + 8 * g));
    if constexpr (Cross) {
      prod[g][0] = group_product<Im>(r1, m1, r0, m0, idx);
      if constexpr (Wide) prod[g][1] = _mm256_setzero_ps();
    } else {
      prod[g][0] = group_product<Im>(r0, m0, r0, m0, idx);
      if constexpr (Wide) prod[g][1] = group_product<Im>(r1, m1, r1, m1, idx);
    }
  }
  return g;
}

// Small states (D <= 16) with the states in lanes (PauliPlan state_*):
// per group of strings sharing an X mask and part, the products
// conj(phi[j ^ x]) phi[j] of every state at once (one lane permute by
// j ^ x per vector), their Re or Im part; then per output column its
// string's group products times its signed row of state_coef, and the
// horizontal sums of eight columns together, stored as one vector. The
// random draw puts most strings on a few X masks (docs/math.md), so the
// products are shared. The groups come in runs by part and by whether x
// has bit 3, so that no branch depends on the data and each run's operands
// stay in registers; with bit 3, only the states below 8 (the plan doubles
// their factors). A version that branched per group and per string, and
// wrote each sum to its column, took 1.16-1.18x CSA's decode step at
// n_embd 16 for v3, this one 1.13-1.15x (docs/benchmarks.md).
// r0, r1 and m0, m1: phi's Re and Im, zero past D (in registers: inlined
// into the one-row value projection, phi never goes through memory).
template <bool Wide>
__attribute__((always_inline)) inline void pauli_groups(const PauliPlan& plan, __m256 r0, __m256 r1, __m256 m0,
                                                        __m256 m1, float* out) {
  // Each group's products (at most 2 D groups: X masks below D, two parts).
  __m256 prod[2 * kPauliLaneStates][Wide ? 2 : 1];
  const int32_t* perm = plan.state_perm;
  int64_t g = group_run<Wide, false, false>(prod, perm, 0, plan.state_runs[0], r0, r1, m0, m1);
  g = group_run<Wide, true, false>(prod, perm, g, plan.state_runs[1], r0, r1, m0, m1);
  if constexpr (Wide) {
    g = group_run<Wide, false, true>(prod, perm, g, plan.state_runs[2], r0, r1, m0, m1);
    group_run<Wide, true, true>(prod, perm, g, plan.state_runs[3], r0, r1, m0, m1);
  }
  for (int64_t k0 = 0; k0 < plan.strings; k0 += 8) {  // the plan pads the columns to a multiple of 8
    const float* coef = plan.state_coef + k0 * kPauliLaneStates;
    const int32_t* group = plan.state_group + k0;
    __m256 v[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m256* p = prod[group[i]];
      v[i] = _mm256_mul_ps(p[0], _mm256_loadu_ps(coef + i * kPauliLaneStates));
      if constexpr (Wide) v[i] = _mm256_fmadd_ps(p[1], _mm256_loadu_ps(coef + i * kPauliLaneStates + 8), v[i]);
    }
    const __m256 sums = hsum8(v);
    if (plan.strings - k0 >= 8)
      _mm256_storeu_ps(out + k0, sums);
    else
      _mm256_maskstore_ps(out + k0, first_lanes(plan.strings - k0), sums);
  }
}

// PauliSumsKernel on the small-state layout: phi copied into zero-padded vectors.
void pauli_lanes(const PauliPlan& plan, const float* re, const float* im, float* out, float* /*scratch*/) {
  alignas(32) float r[16] = {}, m[16] = {};
  for (int64_t j = 0; j < plan.D; ++j) {
    r[j] = re[j];
    m[j] = im[j];
  }
  const __m256 r0 = _mm256_load_ps(r), r1 = _mm256_load_ps(r + 8), m0 = _mm256_load_ps(m), m1 = _mm256_load_ps(m + 8);
  if (plan.D > 8)
    pauli_groups<true>(plan, r0, r1, m0, m1, out);
  else
    pauli_groups<false>(plan, r0, r1, m0, m1, out);
}

// Small states row by row, the whole value projection per row (the
// SmallValueKernel contract): U psi as d broadcast multiply-adds of U's
// columns (two sums per vector so that consecutive FMAs do not wait on
// each other; 1 / |x| applied to phi, which is linear in psi), then
// pauli_groups on phi in registers. Replaces an encoding pass, a oneDNN
// product and the grouped sums, and from 8 states also the rows in lanes
// (measured in docs/benchmarks.md).
template <bool Wide>
void small_value_rows_of(const PauliPlan& plan, const float* u_cols, const float* x, int64_t ldx, int64_t d,
                         int64_t rows, bool normalized, float* out, int64_t stride) {
  const __m256i in0 = first_lanes(d < 8 ? d : 8), in1 = first_lanes(d > 8 ? d - 8 : 0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    // Columns in pairs, each of the pair its own sums (named, not an array
    // indexed by the column's parity, which GCC kept in memory).
    __m256 re0 = _mm256_setzero_ps(), re1 = re0, im0 = re0, im1 = re0;  // column c
    __m256 re2 = re0, re3 = re0, im2 = re0, im3 = re0;                  // column c + 1
    int64_t c = 0;
    for (; c + 1 < d; c += 2) {
      const __m256 a = _mm256_broadcast_ss(xr + c), b = _mm256_broadcast_ss(xr + c + 1);
      const float* col = u_cols + c * 2 * kPauliLaneStates;
      const float* next = col + 2 * kPauliLaneStates;
      re0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(col), re0);
      im0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(col + kPauliLaneStates), im0);
      re2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(next), re2);
      im2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(next + kPauliLaneStates), im2);
      if constexpr (Wide) {
        re1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(col + 8), re1);
        im1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(col + kPauliLaneStates + 8), im1);
        re3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(next + 8), re3);
        im3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(next + kPauliLaneStates + 8), im3);
      }
    }
    if (c < d) {
      const __m256 a = _mm256_broadcast_ss(xr + c);
      const float* col = u_cols + c * 2 * kPauliLaneStates;
      re0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(col), re0);
      im0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(col + kPauliLaneStates), im0);
      if constexpr (Wide) {
        re1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(col + 8), re1);
        im1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(col + kPauliLaneStates + 8), im1);
      }
    }
    __m256 v[4] = {_mm256_add_ps(re0, re2), _mm256_add_ps(re1, re3), _mm256_add_ps(im0, im2), _mm256_add_ps(im1, im3)};
    if (normalized) {
      const __m256 x0 = _mm256_maskload_ps(xr, in0);
      __m256 sq = _mm256_mul_ps(x0, x0);
      if (d > 8) {
        const __m256 x1 = _mm256_maskload_ps(xr + 8, in1);
        sq = _mm256_fmadd_ps(x1, x1, sq);
      }
      // phi itself normalized (not 1 / |x|^2 on the quadratic sums): its
      // products stay bounded whatever |x| is.
      const float norm = __builtin_sqrtf(hsum(sq));
      const __m256 inv = _mm256_set1_ps(1.0f / (norm > 1e-12f ? norm : 1e-12f));
      for (auto& t : v) t = _mm256_mul_ps(t, inv);
    }
    pauli_groups<Wide>(plan, v[0], v[1], v[2], v[3], out + r * stride);
  }
}

void small_value_rows(const PauliPlan& plan, const float* u_cols, const float* x, int64_t ldx, int64_t d, int64_t rows,
                      bool normalized, float* out, int64_t stride) {
  if (plan.D > 8)
    small_value_rows_of<true>(plan, u_cols, x, ldx, d, rows, normalized, out, stride);
  else
    small_value_rows_of<false>(plan, u_cols, x, ldx, d, rows, normalized, out, stride);
}

template <class W>
void widen(const uint8_t* row, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, W::load(row, i));
  for (; i < n; ++i) out[i] = W::one(row, i);
}

void widen_q8(const uint8_t* row, int64_t n, float* out) {
  for (int64_t b0 = 0; b0 < n; b0 += kBlock, row += kBlockBytes) {
    const float d = F16::one(row, 0);
    if (n - b0 >= static_cast<int64_t>(kBlock)) {
      const __m256 vd = _mm256_set1_ps(d);
      for (int k = 0; k < 4; ++k) {
        const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 2 + 8 * k)));
        _mm256_storeu_ps(out + b0 + 8 * k, _mm256_mul_ps(vd, _mm256_cvtepi32_ps(q)));
      }
    } else {
      for (int64_t i = 0; b0 + i < n; ++i) out[b0 + i] = d * static_cast<float>(static_cast<int8_t>(row[2 + i]));
    }
  }
}

// The 32 nibbles of a Q4_0 block as bytes 0..15 in order (values 0..15 in
// the low lane, 16..31 in the high one), times 32 int8 activations: 8
// int32 partial sums of w * q.
inline __m256i q4_block_products(const uint8_t* block, __m256i xq) {
  // The 16 bytes in both lanes (one broadcasting load), the high lane shifted by 4.
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2)));
  const __m256i w = _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
  // w < 16 and |q| <= 127: the pairwise 16-bit sums cannot saturate.
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, xq), _mm256_set1_epi16(1));
}

// The four rows' f16 scales of the blocks at `off`, as f32 lanes 0..3
// (gathered in a register: four narrow stores and a wide load would defeat
// store forwarding).
inline __m128 four_scales(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, const uint8_t* w3, size_t off) {
  __m128i h = _mm_cvtsi32_si128(load_u16(w0 + off));
  h = _mm_insert_epi16(h, load_u16(w1 + off), 1);
  h = _mm_insert_epi16(h, load_u16(w2 + off), 2);
  h = _mm_insert_epi16(h, load_u16(w3 + off), 3);
  return _mm_cvtph_ps(h);
}

void activations_rounded(const float* x, int64_t n, float* out) {
  round_rows<quantize_q8_blocks>(x, n, out);
}

// Q8_0 with f32 activations (stored unitaries).
void linear_q8_f32(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
                   const float* bias, int64_t rows, int64_t in, int64_t out) {
  linear_by4(
      y, ldy, x, ldx, w, w_stride, bias, rows, in, out, [](auto... a) { return dot4_q8(a...); },
      [](auto... a) { return dot_q8(a...); });
}

// A Q8_0 block's 32 int8 weights times 32 int8 activations: 8 int32
// partial sums. vpmaddubsw multiplies unsigned by signed bytes, so it gets
// |w| (0..128, exact for -128 too) and q with w's sign; a pair sum is then
// at most 2 * 128 * 127 and cannot saturate.
inline __m256i q8_block_products(const uint8_t* block, __m256i xq) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
  const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(xq, w));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// The f16 scales of 8 consecutive blocks of kBytes each, as f32.
template <size_t kBytes>
inline __m256 eight_scales(const uint8_t* w) {
  __m128i h = _mm_cvtsi32_si128(load_u16(w));
  h = _mm_insert_epi16(h, load_u16(w + kBytes), 1);
  h = _mm_insert_epi16(h, load_u16(w + 2 * kBytes), 2);
  h = _mm_insert_epi16(h, load_u16(w + 3 * kBytes), 3);
  h = _mm_insert_epi16(h, load_u16(w + 4 * kBytes), 4);
  h = _mm_insert_epi16(h, load_u16(w + 5 * kBytes), 5);
  h = _mm_insert_epi16(h, load_u16(w + 6 * kBytes), 6);
  h = _mm_insert_epi16(h, load_u16(w + 7 * kBytes), 7);
  return _mm256_cvtph_ps(h);
}

// One Q8_0 row times int8 activations: per block dw * dx * (its integer
// sum), as 8 lanes to be summed. Eight blocks per step: their scales
// converted and multiplied as one vector and spread by lane permutes, two
// sums for alternate blocks.
__attribute__((always_inline)) inline __m256 q8_row_lanes(const Q8Activations& a, int64_t nb, const uint8_t* w) {
  auto products = [](const uint8_t* block, const int8_t* q) {
    return _mm256_cvtepi32_ps(q8_block_products(block, _mm256_load_si256(reinterpret_cast<const __m256i*>(q))));
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8, w += 8 * kQ8BlockBytes) {
    const __m256 s = _mm256_mul_ps(eight_scales<kQ8BlockBytes>(w), _mm256_loadu_ps(a.d + b));
    const int8_t* q = a.q + b * 32;
#pragma GCC unroll 4
    for (int k = 0; k < 8; k += 2) {
      acc0 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(k)),
                             products(w + k * kQ8BlockBytes, q + k * 32), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(k + 1)),
                             products(w + (k + 1) * kQ8BlockBytes, q + (k + 1) * 32), acc1);
    }
  }
  for (; b < nb; ++b, w += kQ8BlockBytes)
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(scale_of(w) * a.d[b]), products(w, a.q + b * 32), acc0);
  return _mm256_add_ps(acc0, acc1);
}

// Q4_0's activations: as quantize_q8_blocks, then each pair of blocks
// (2k, 2k + 1) as [q_2k[0..16) q_2k+1[0..16)] [q_2k[16..32) q_2k+1[16..32)],
// the order of two consecutive Q4_0 blocks' nibbles in one vector (low
// nibbles: values 0..15 of each block, high: 16..31). A last odd block
// stays as it is.
void quantize_q4_pairs(const float* x, int64_t n, int8_t* q, float* d, float* offset) {
  quantize_q8_blocks(x, n, q, d, offset);
  const int64_t nb = (n + kActivationBlock - 1) / kActivationBlock;
  for (int64_t b = 0; b + 2 <= nb; b += 2) {
    auto* p = reinterpret_cast<__m256i*>(q + b * 32);
    const __m256i u = _mm256_load_si256(p), v = _mm256_load_si256(p + 1);
    _mm256_store_si256(p, _mm256_permute2x128_si256(u, v, 0x20));
    _mm256_store_si256(p + 1, _mm256_permute2x128_si256(u, v, 0x31));
  }
}

// Two consecutive Q4_0 blocks (from w) times their activations in pair
// order (lo, hi: quantize_q4_pairs): 8 int32 sums, lanes 0..3 the first
// block's, 4..7 the second's. Both blocks' nibble bytes fill one vector,
// so each vpmaddubsw covers half of both blocks; a block took one
// broadcast, a shift and two multiplies of its own before (w < 16 and
// |q| <= 127: the two 16-bit pair sums added stay below 2^15).
inline __m256i q4_pair_products(const uint8_t* w, __m256i lo, __m256i hi) {
  const __m256i raw =
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2))),
                              _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + kQ4BlockBytes + 2)), 1);
  const __m256i m = _mm256_set1_epi8(0x0f);
  const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(raw, m), lo),
                                     _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m), hi));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

inline __m256i load_q(const int8_t* q) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(q));
}

// Lanes k (0..3) and k + j (4..7) of s.
inline __m256 spread_pair(__m256 s, int k, int j) {
  return _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(k, k, k, k, k + j, k + j, k + j, k + j));
}

// One Q4_0 row times activations in pair order: per block dw * dx * (its
// integer sum) less dw * offset (the nibbles' 8), as 8 lanes to be summed
// (less *tail, the offsets of the last nb % 8 blocks). Eight blocks per
// step, as q8_row_lanes, a pair of them per product.
__attribute__((always_inline)) inline __m256 q4_row_lanes(const Q8Activations& a, int64_t nb, const uint8_t* w,
                                                          float* tail) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, offsets = acc0;
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8, w += 8 * kQ4BlockBytes) {
    const __m256 dw = eight_scales<kQ4BlockBytes>(w);
    const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(a.d + b));
    offsets = _mm256_fmadd_ps(dw, _mm256_loadu_ps(a.offset + b), offsets);
    const int8_t* q = a.q + b * 32;
#pragma GCC unroll 2
    for (int k = 0; k < 8; k += 4) {
      acc0 = _mm256_fmadd_ps(
          spread_pair(s, k, 1),
          _mm256_cvtepi32_ps(q4_pair_products(w + k * kQ4BlockBytes, load_q(q + k * 32), load_q(q + k * 32 + 32))),
          acc0);
      acc1 = _mm256_fmadd_ps(spread_pair(s, k + 2, 1),
                             _mm256_cvtepi32_ps(q4_pair_products(w + (k + 2) * kQ4BlockBytes, load_q(q + k * 32 + 64),
                                                                 load_q(q + k * 32 + 96))),
                             acc1);
    }
  }
  float offset = 0.0f;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ4BlockBytes) {
    const float d0 = scale_of(w), d1 = scale_of(w + kQ4BlockBytes);
    const __m256 s = _mm256_setr_m128(_mm_set1_ps(d0 * a.d[b]), _mm_set1_ps(d1 * a.d[b + 1]));
    const int8_t* q = a.q + b * 32;
    acc0 = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(q4_pair_products(w, load_q(q), load_q(q + 32))), acc0);
    offset += d0 * a.offset[b] + d1 * a.offset[b + 1];
  }
  if (b < nb) {  // the last, odd block in block order
    const float dw = scale_of(w);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw * a.d[b]), _mm256_cvtepi32_ps(q4_block_products(w, load_q(a.q + b * 32))),
                           acc0);
    offset += dw * a.offset[b];
  }
  *tail = offset;
  return _mm256_sub_ps(_mm256_add_ps(acc0, acc1), offsets);
}

template <bool kNibbles>
__attribute__((always_inline)) inline __m256 row_lanes(const Q8Activations& a, int64_t nb, const uint8_t* w,
                                                       float* tail) {
  if constexpr (kNibbles) return q4_row_lanes(a, nb, w, tail);
  *tail = 0.0f;
  return q8_row_lanes(a, nb, w);
}

template <bool kNibbles>
float dot_row(const Q8Activations& a, int64_t nb, int64_t, const uint8_t* w) {
  float tail;
  const __m256 v = row_lanes<kNibbles>(a, nb, w, &tail);
  return hsum(v) - tail;
}

// Four rows read one after another (each whole: the order that streams a
// matrix too large for the caches, rounded_linear.h), their lanes summed
// together: one call and one reduction per four rows. A 768-value row is
// three steps of row_lanes, and the call and the horizontal sums of each
// row alone took a quarter of its time (perf, BM_LinearKernel).
template <bool kNibbles>
__attribute__((noinline)) void dot4_in_order(const Q8Activations& a, int64_t nb, int64_t, const uint8_t* w0,
                                             const uint8_t* w1, const uint8_t* w2, const uint8_t* w3, float* out) {
  alignas(16) float tails[4];
  const __m256 v0 = row_lanes<kNibbles>(a, nb, w0, tails);
  const __m256 v1 = row_lanes<kNibbles>(a, nb, w1, tails + 1);
  const __m256 v2 = row_lanes<kNibbles>(a, nb, w2, tails + 2);
  const __m256 v3 = row_lanes<kNibbles>(a, nb, w3, tails + 3);
  _mm_storeu_ps(out, _mm_sub_ps(hsum4(v0, v1, v2, v3), _mm_load_ps(tails)));
}

// Four Q8_0 rows in step: each activation block is loaded once for the
// four, their scales gathered and converted together.
__attribute__((noinline)) void q8_dot4_blocks(const Q8Activations& a, int64_t nb, int64_t, const uint8_t* w0,
                                              const uint8_t* w1, const uint8_t* w2, const uint8_t* w3, float* out) {
  auto products = [](const uint8_t* block, __m256i xq) { return _mm256_cvtepi32_ps(q8_block_products(block, xq)); };
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t b = 0; b < nb; ++b) {
    const size_t off = static_cast<size_t>(b) * kQ8BlockBytes;
    prefetch(w0 + off + kPrefetchBytes);
    prefetch(w1 + off + kPrefetchBytes);
    prefetch(w2 + off + kPrefetchBytes);
    prefetch(w3 + off + kPrefetchBytes);
    const __m256i xq = load_q(a.q + b * 32);
    const __m256 s = _mm256_castps128_ps256(_mm_mul_ps(four_scales(w0, w1, w2, w3, off), _mm_set1_ps(a.d[b])));
    a0 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(0)), products(w0 + off, xq), a0);
    a1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(1)), products(w1 + off, xq), a1);
    a2 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(2)), products(w2 + off, xq), a2);
    a3 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(3)), products(w3 + off, xq), a3);
  }
  _mm_storeu_ps(out, hsum4(a0, a1, a2, a3));
}

// Four Q4_0 rows in step, activations in pair order: each pair of
// activation blocks is loaded once for the four rows, the two blocks'
// scales of the four rows gathered and converted together.
__attribute__((noinline)) void q4_dot4_pairs(const Q8Activations& a, int64_t nb, int64_t, const uint8_t* w0,
                                             const uint8_t* w1, const uint8_t* w2, const uint8_t* w3, float* out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  __m128 offset = _mm_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const size_t off = static_cast<size_t>(b) * kQ4BlockBytes, next = off + kQ4BlockBytes;
    prefetch(w0 + off + kPrefetchBytes);
    prefetch(w1 + off + kPrefetchBytes);
    prefetch(w2 + off + kPrefetchBytes);
    prefetch(w3 + off + kPrefetchBytes);
    const __m256i lo = load_q(a.q + b * 32), hi = load_q(a.q + b * 32 + 32);
    const __m128 d0 = four_scales(w0, w1, w2, w3, off), d1 = four_scales(w0, w1, w2, w3, next);
    // Lane r: row r's first block, lane 4 + r: its second.
    const __m256 s = _mm256_setr_m128(_mm_mul_ps(d0, _mm_set1_ps(a.d[b])), _mm_mul_ps(d1, _mm_set1_ps(a.d[b + 1])));
    offset = _mm_fmadd_ps(d0, _mm_set1_ps(a.offset[b]), _mm_fmadd_ps(d1, _mm_set1_ps(a.offset[b + 1]), offset));
    a0 = _mm256_fmadd_ps(spread_pair(s, 0, 4), _mm256_cvtepi32_ps(q4_pair_products(w0 + off, lo, hi)), a0);
    a1 = _mm256_fmadd_ps(spread_pair(s, 1, 4), _mm256_cvtepi32_ps(q4_pair_products(w1 + off, lo, hi)), a1);
    a2 = _mm256_fmadd_ps(spread_pair(s, 2, 4), _mm256_cvtepi32_ps(q4_pair_products(w2 + off, lo, hi)), a2);
    a3 = _mm256_fmadd_ps(spread_pair(s, 3, 4), _mm256_cvtepi32_ps(q4_pair_products(w3 + off, lo, hi)), a3);
  }
  if (b < nb) {  // the last, odd block in block order
    const size_t off = static_cast<size_t>(b) * kQ4BlockBytes;
    const __m256i xq = load_q(a.q + b * 32);
    const __m128 dw = four_scales(w0, w1, w2, w3, off);
    const __m256 s = _mm256_castps128_ps256(_mm_mul_ps(dw, _mm_set1_ps(a.d[b])));
    offset = _mm_fmadd_ps(dw, _mm_set1_ps(a.offset[b]), offset);
    a0 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(0)),
                         _mm256_cvtepi32_ps(q4_block_products(w0 + off, xq)), a0);
    a1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(1)),
                         _mm256_cvtepi32_ps(q4_block_products(w1 + off, xq)), a1);
    a2 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(2)),
                         _mm256_cvtepi32_ps(q4_block_products(w2 + off, xq)), a2);
    a3 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(3)),
                         _mm256_cvtepi32_ps(q4_block_products(w3 + off, xq)), a3);
  }
  _mm_storeu_ps(out, _mm_sub_ps(hsum4(a0, a1, a2, a3), offset));
}

void linear_q4(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride, const float* bias,
               int64_t rows, int64_t in, int64_t out) {
  Int8Rows<quantize_q4_pairs> buf;
  rounded_linear(y, ldy, x, ldx, w, w_stride, bias, rows, in, out, kQ4BlockBytes, buf, q4_dot4_pairs, dot_row<true>,
                 dot4_in_order<true>);
}

// Q8_0: the rows rounded to int8 blocks, integer products per block.
void linear_q8(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride, const float* bias,
               int64_t rows, int64_t in, int64_t out) {
  Int8Rows<quantize_q8_blocks> buf;
  rounded_linear(y, ldy, x, ldx, w, w_stride, bias, rows, in, out, kQ8BlockBytes, buf, q8_dot4_blocks, dot_row<false>,
                 dot4_in_order<false>);
}

void widen_q4(const uint8_t* row, int64_t n, float* out) {
  for (int64_t b0 = 0; b0 < n; b0 += kQ4Block, row += kQ4BlockBytes) {
    const __m256 d = _mm256_set1_ps(F16::one(row, 0));
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2));
    const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0f)),
                  hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
    alignas(32) float v[kQ4Block];
    const __m128i parts[2] = {lo, hi};
    for (int k = 0; k < 4; ++k) {
      const __m128i bytes = k % 2 ? _mm_srli_si128(parts[k / 2], 8) : parts[k / 2];
      const __m256i u = _mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes), _mm256_set1_epi32(8));
      _mm256_store_ps(v + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(u)));
    }
    const int64_t m = n - b0 < static_cast<int64_t>(kQ4Block) ? n - b0 : static_cast<int64_t>(kQ4Block);
    std::memcpy(out + b0, v, static_cast<size_t>(m) * sizeof(float));
  }
}

// Entries by qisa_dtype: f32, f16, bf16, q8_0, q4_0.
constexpr CpuKernels kAvx2{"avx2",
                           {linear<F32>, linear<F16>, linear<BF16>, linear_q8, linear_q4},
                           {widen<F32>, widen<F16>, widen<BF16>, widen_q8, widen_q4},
                           pauli_products,
                           dot_f32,
                           pauli_sums,
                           scores,
                           attend,
                           circuit,
                           {nullptr, nullptr, nullptr, activations_rounded, activations_rounded},
                           {nullptr, nullptr, nullptr, linear_q8_f32, nullptr},
                           // Batch kernels from 8 rows for Q8_0, 4 for Q4_0 (CSA steps on
                           // Zen 3, against the few-row kernels, 4 rows: Q8_0 n_embd 512
                           // 5.8 vs 4.0 ms, Q4_0 128 0.25 vs 0.42 ms, 512 3.1 vs 3.5 ms,
                           // 768 6.8 vs 7.9 ms; 2 rows, Q4_0 512: 3.6 vs 1.8 ms;
                           // docs/benchmarks.md).
                           {{},
                            {},
                            {},
                            {avx2_batch::bytes, avx2_batch::pack, avx2_batch::product_q8, avx2_batch::work_bytes, 8},
                            {avx2_batch::bytes, avx2_batch::pack, avx2_batch::product_q4, avx2_batch::work_bytes, 4}},
                           pauli_lanes,
                           avx2_rows::pauli_rows,
                           avx2_rows::circuit_pauli_rows,
                           small_value_rows,
                           layernorm,
                           avx2_rows::unitary_pauli_rows,
                           // Row by row for any row count from 8 states: BM_ValuePath, 64
                           // rows, Zen 3, row by row / rows in lanes (unitary_pauli_rows):
                           // D = 16 3.0-4.1 / 3.8-6.4 us, D = 8 1.1-1.9 / 1.7-2.5 us,
                           // D = 4 1.3-1.4 / 0.6-0.8 us (docs/benchmarks.md).
                           8};

}  // namespace

namespace {

// AVX2, FMA and F16C from CPUID, and the OS saving the AVX registers
// (XGETBV). Read directly: clang's __builtin_cpu_supports knows no "f16c".
bool cpu_has_avx2_fma_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0x6u) != 0x6u) return false;  // XMM and YMM state enabled
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return b & (1u << 5);  // AVX2
}

}  // namespace

const CpuKernels* avx2_cpu_kernels() {
  return cpu_has_avx2_fma_f16c() ? &kAvx2 : nullptr;
}

}  // namespace qisa
