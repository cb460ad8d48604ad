// Few-row Q8_0 and Q4_0 products with AVX-512 VNNI (vpdpbusd: 64 u8 x s8
// products summed into 16 int32 per instruction): two 32-value blocks per
// 512-bit register, against the activations rounded to int8 exactly as the
// other kernel sets round them (rounded_linear.h). This file alone is
// compiled with those instructions and is entered only after
// vnni_kernels() checked the CPU and the OS. cpu_kernels() puts these
// entries over the AVX2 set's.
#include <immintrin.h>

#include <cstring>

#include "avx512_support.h"
#include "cpu_kernels.h"
#include "dtype_blocks.h"
#include "qisa.h"
#include "rounded_linear.h"

namespace qisa {

namespace {

inline int load_u16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

inline float half_at(const uint8_t* p) {
  return _cvtsh_ss(static_cast<unsigned short>(load_u16(p)));
}

// Per block of 32: the rounded block (avx512_support.h) and
// offset = 8 dx sum(q).
void quantize_blocks(const float* x, int64_t n, int8_t* q, float* d, float* offset) {
  for (int64_t b0 = 0, b = 0; b0 < n; b0 += 32, ++b) {
    int32_t sum = 0;
    d[b] = round_block(x + b0, n - b0 < 32 ? n - b0 : 32, q + b0, &sum);
    offset[b] = 8.0f * d[b] * static_cast<float>(sum);
  }
}

void activations_rounded(const float* x, int64_t n, float* out) {
  round_rows<quantize_blocks>(x, n, out);
}

// Q4_0's activations: as quantize_blocks, then each whole group of four
// blocks (from the row's start) stored as the grouped dots read it: values
// 0-15 of the four blocks, then values 16-31 of the four (the low and the
// high nibbles of the four blocks' bytes, group_dot); the last nb % 4
// blocks as they are.
void quantize_grouped(const float* x, int64_t n, int8_t* q, float* d, float* offset) {
  quantize_blocks(x, n, q, d, offset);
  const int64_t nb = (n + 31) / 32;
  for (int64_t b = 0; b + 4 <= nb; b += 4) {
    int8_t* p = q + b * 32;
    const __m512i x01 = _mm512_loadu_si512(p), x23 = _mm512_loadu_si512(p + 64);
    _mm512_storeu_si512(p, _mm512_shuffle_i64x2(x01, x23, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm512_storeu_si512(p + 64, _mm512_shuffle_i64x2(x01, x23, _MM_SHUFFLE(3, 1, 3, 1)));
  }
}

// The dot of four Q4_0 blocks (at w) with their grouped activations lo
// (values 0-15) and hi (16-31): lanes 4j..4j+3 hold block j's sum of u8
// nibbles x s8 q. The blocks' 16-byte nibble runs fill one register's four
// 128-bit lanes by three inserts (one AVX-512 VBMI byte permute of the
// group's 72 bytes measured 4-20% slower on Zen 4, BM_LinearKernel).
inline __m512i group_dot(const uint8_t* w, __m512i lo, __m512i hi) {
  auto nibble_run = [w](int j) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j * kQ4BlockBytes + 2)); };
  __m512i bytes = _mm512_castsi128_si512(nibble_run(0));
  bytes = _mm512_inserti32x4(bytes, nibble_run(1), 1);
  bytes = _mm512_inserti32x4(bytes, nibble_run(2), 2);
  bytes = _mm512_inserti32x4(bytes, nibble_run(3), 3);
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(bytes, low4), lo);
  return _mm512_dpbusd_epi32(sum, _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low4), hi);
}

// A word permute index: words 0-3 pick words 0, 9, 18, 27 of a group's
// first 64 bytes (its four blocks' f16 scales), words 4-7 the same of a
// second group (as the second table of a two-table permute).
inline __m512i group_scale_words() {
  return _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 59, 50, 41, 32, 27,
                          18, 9, 0);
}

// Lanes 0-7 a, lanes 8-15 b.
inline __m512 pair(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

// The activations of blocks b and b + 1 (upper half zero when `two` is false).
inline __m512i activations(const Q8Activations& a, int64_t b, bool two) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + b * 32));
  if (!two) return _mm512_zextsi256_si512(lo);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + (b + 1) * 32)), 1);
}

// Q4_0: the nibbles of blocks b, b + 1 (at w) as bytes in value order,
// 128-bit lanes: values 0-15 and 16-31 of the first, then of the second.
inline __m512i nibbles(const uint8_t* w, bool two) {
  // Block b's 16 bytes in lanes 0-1, block b + 1's in lanes 2-3 (two
  // broadcasting loads), the odd lanes shifted by 4, then the low nibbles.
  const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2));
  __m512i z = _mm512_broadcast_i32x4(r0);
  z = two ? _mm512_mask_broadcast_i32x4(z, 0xff00,
                                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + kQ4BlockBytes + 2)))
          : _mm512_maskz_mov_epi32(0x00ff, z);
  return _mm512_and_si512(_mm512_srlv_epi64(z, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), _mm512_set1_epi8(0x0f));
}

// Q8_0: the int8 of blocks b, b + 1 (at w).
inline __m512i int8s(const uint8_t* w, bool two) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2));
  if (!two) return _mm512_zextsi256_si512(lo);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + kQ8BlockBytes + 2)), 1);
}

// The 32-bit lanes of the dot of two blocks (0-7 the first, 8-15 the
// second): Q4_0: u8 nibbles x s8 q (the offset of 8 is subtracted later);
// Q8_0: s8 w x s8 q as (q + 128) x w minus 128 sum(w).
template <bool kNibbles>
inline __m512i block_pair(const uint8_t* wb, __m512i x, __m512i xu, bool two) {
  if constexpr (kNibbles) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles(wb, two), x);
  } else {
    const __m512i ws = int8s(wb, two);
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), xu, ws),
                            _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), ws), 7));
  }
}

// Index vectors that spread lanes 2k and 2k + 1 of an 8-lane vector of
// scales over lanes 0-7 and 8-15 (one pair of blocks' dot, block_pair).
struct PairSpreads {
  __m512i k[4];
};
inline PairSpreads pair_spreads() {
  const __m512i first = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i two_lanes = _mm512_set1_epi32(2);
  PairSpreads s{{first, _mm512_add_epi32(first, two_lanes), first, first}};
  s.k[2] = _mm512_add_epi32(s.k[1], two_lanes);
  s.k[3] = _mm512_add_epi32(s.k[2], two_lanes);
  return s;
}

// The f16 scales that start blocks at p0..p7, as one f32 vector.
inline __m256 half_scales(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, const uint8_t* p3, const uint8_t* p4,
                          const uint8_t* p5, const uint8_t* p6, const uint8_t* p7) {
  __m128i h = _mm_cvtsi32_si128(load_u16(p0));
  h = _mm_insert_epi16(h, load_u16(p1), 1);
  h = _mm_insert_epi16(h, load_u16(p2), 2);
  h = _mm_insert_epi16(h, load_u16(p3), 3);
  h = _mm_insert_epi16(h, load_u16(p4), 4);
  h = _mm_insert_epi16(h, load_u16(p5), 5);
  h = _mm_insert_epi16(h, load_u16(p6), 6);
  h = _mm_insert_epi16(h, load_u16(p7), 7);
  return _mm256_cvtph_ps(h);
}

// The sums of the lanes of r0..r3 in lanes 0..3: pairs interleaved and
// added within 128-bit lanes, then the lanes added (fewer shuffles than
// four reductions).
inline __m128 four_sums(__m512 r0, __m512 r1, __m512 r2, __m512 r3) {
  const __m512 a01 = _mm512_add_ps(_mm512_unpacklo_ps(r0, r1), _mm512_unpackhi_ps(r0, r1));
  const __m512 a23 = _mm512_add_ps(_mm512_unpacklo_ps(r2, r3), _mm512_unpackhi_ps(r2, r3));
  const __m512 t = _mm512_add_ps(_mm512_shuffle_ps(a01, a23, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(a01, a23, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(t), _mm512_extractf32x8_ps(t, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// The blocks from b on (fewer than a step's), a pair at a time in value
// order, into acc and (Q4_0) offsets' lane 0.
template <bool kNibbles>
void tail_pairs(const Q8Activations& a, int64_t b, int64_t nb, const uint8_t* w, __m512& acc, __m256& offsets) {
  constexpr size_t kBytes = kNibbles ? kQ4BlockBytes : kQ8BlockBytes;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (; b < nb; b += 2) {
    const bool two = b + 1 < nb;
    const __m512i x = activations(a, b, two);
    const uint8_t* wb = w + static_cast<size_t>(b) * kBytes;
    const float w0 = half_at(wb), w1 = two ? half_at(wb + kBytes) : 0.0f;
    if constexpr (kNibbles)
      offsets = _mm256_add_ps(
          offsets,
          _mm256_set_m128(_mm_setzero_ps(), _mm_set_ss(w0 * a.offset[b] + (two ? w1 * a.offset[b + 1] : 0.0f))));
    acc = _mm512_fmadd_ps(pair(w0 * a.d[b], two ? w1 * a.d[b + 1] : 0.0f),
                          _mm512_cvtepi32_ps(block_pair<kNibbles>(wb, x, _mm512_xor_si512(x, flip), two)), acc);
  }
}

// Q8_0, four weight rows in step: the sum over the blocks of dw dx sum_i
// w_i q_i, two blocks per step. The 8 scales of a step (4 rows x 2 blocks)
// are converted and multiplied as one vector, then spread to each row's 16
// lanes.
void dots4_q8(const Q8Activations& a, int64_t nb, const uint8_t* const* w, float* out) {
  constexpr size_t kBytes = kQ8BlockBytes;
  // Each of the four weight streams is read ahead by this much (measured:
  // without it a decode step at n_embd 768 waits on memory, q8_0 3.1 ms,
  // with 2 KiB 1.9 ms).
  constexpr size_t kPrefetch = 2048;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const PairSpreads spread = pair_spreads();
  for (int64_t b = 0; b < nb; b += 2) {
    const bool two = b + 1 < nb;
    const __m512i xu = _mm512_xor_si512(activations(a, b, two), flip);  // q + 128 as u8
    const size_t off = static_cast<size_t>(b) * kBytes, next = two ? kBytes : 0;
    for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(w[k] + off + kPrefetch), _MM_HINT_T0);
    const float d1 = two ? a.d[b + 1] : 0.0f;
    const __m256 dw = half_scales(w[0] + off, w[0] + off + next, w[1] + off, w[1] + off + next, w[2] + off,
                                  w[2] + off + next, w[3] + off, w[3] + off + next);
    const __m512 s =
        _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_setr_ps(a.d[b], d1, a.d[b], d1, a.d[b], d1, a.d[b], d1)));
    acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread.k[0], s),
                           _mm512_cvtepi32_ps(block_pair<false>(w[0] + off, xu, xu, two)), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread.k[1], s),
                           _mm512_cvtepi32_ps(block_pair<false>(w[1] + off, xu, xu, two)), acc1);
    acc2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread.k[2], s),
                           _mm512_cvtepi32_ps(block_pair<false>(w[2] + off, xu, xu, two)), acc2);
    acc3 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread.k[3], s),
                           _mm512_cvtepi32_ps(block_pair<false>(w[3] + off, xu, xu, two)), acc3);
  }
  _mm_storeu_ps(out, four_sums(acc0, acc1, acc2, acc3));
}

// Q4_0, four weight rows in step over grouped activations
// (quantize_grouped): a group of four blocks per step, its activations
// loaded once for the four rows.
void dots4_q4(const Q8Activations& a, int64_t nb, const uint8_t* const* w, float* out) {
  const __m512i scale_words = group_scale_words();
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  __m256 offsets[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const int8_t* q = a.q + b * 32;
    const __m512i lo = _mm512_loadu_si512(q), hi = _mm512_loadu_si512(q + 64);
    const __m128 d = _mm_loadu_ps(a.d + b), o = _mm_loadu_ps(a.offset + b);
    for (int k = 0; k < 4; ++k) {
      const uint8_t* g = w[k] + static_cast<size_t>(b) * kQ4BlockBytes;
      const __m128 dw =
          _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(g))));
      offsets[k] = _mm256_add_ps(offsets[k], _mm256_zextps128_ps256(_mm_mul_ps(dw, o)));
      acc[k] = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(dw, d))),
                               _mm512_cvtepi32_ps(group_dot(g, lo, hi)), acc[k]);
    }
  }
  if (b < nb)
    for (int k = 0; k < 4; ++k) tail_pairs<true>(a, b, nb, w[k], acc[k], offsets[k]);
  const __m512 o0 = _mm512_zextps256_ps512(offsets[0]), o1 = _mm512_zextps256_ps512(offsets[1]);
  const __m512 o2 = _mm512_zextps256_ps512(offsets[2]), o3 = _mm512_zextps256_ps512(offsets[3]);
  _mm_storeu_ps(out, _mm_sub_ps(four_sums(acc[0], acc[1], acc[2], acc[3]), four_sums(o0, o1, o2, o3)));
}

// One Q8_0 weight row read in order, 8 blocks per step as four pairs: the
// step's 8 scales converted and multiplied as one vector (as in dots4_q8,
// with lane 2k + j for block b + 2k + j), four sums in flight. Returns the
// row's lanes (their sum is the dot).
inline __attribute__((always_inline)) __m512 row_lanes_q8(const Q8Activations& a, int64_t nb, const uint8_t* w) {
  constexpr size_t kBytes = kQ8BlockBytes;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const PairSpreads spread = pair_spreads();
  auto pair_sum = [&](const uint8_t* wb, int64_t b) {
    const __m512i xu = _mm512_xor_si512(_mm512_loadu_si512(a.q + b * 32), flip);  // blocks b and b + 1
    return _mm512_cvtepi32_ps(block_pair<false>(wb, xu, xu, true));
  };
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const uint8_t* wb = w + static_cast<size_t>(b) * kBytes;
    const __m256 dw = half_scales(wb, wb + kBytes, wb + 2 * kBytes, wb + 3 * kBytes, wb + 4 * kBytes, wb + 5 * kBytes,
                                  wb + 6 * kBytes, wb + 7 * kBytes);
    const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(a.d + b)));
    acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread.k[0], s), pair_sum(wb, b), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread.k[1], s), pair_sum(wb + 2 * kBytes, b + 2), acc1);
    acc2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread.k[2], s), pair_sum(wb + 4 * kBytes, b + 4), acc2);
    acc3 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread.k[3], s), pair_sum(wb + 6 * kBytes, b + 6), acc3);
  }
  __m256 unused = _mm256_setzero_ps();  // Q8_0 has no offsets
  if (b < nb) tail_pairs<false>(a, b, nb, w, acc0, unused);
  return _mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3));
}

// One Q4_0 weight row read in order over grouped activations: 8 blocks per
// step as two groups of four, the step's 8 scales picked from the groups'
// first 64 bytes by one word permute. Returns the row's lanes and adds the
// nibbles' offsets to `offsets`. Inlined, and the tail's call made only
// where there is a tail: a call per row (every vector register
// caller-saved, and a vzeroupper) made one-row products over rows of 768
// values 1.07-1.24x slower (BM_LinearKernel).
inline __attribute__((always_inline)) __m512 row_lanes_q4(const Q8Activations a, int64_t nb, const uint8_t* w,
                                                          __m256& offsets_out) {
  // (a by value and offsets in a local: no store in the loop that the
  // compiler must assume could change a's pointers.)
  constexpr size_t kBytes = kQ4BlockBytes;
  __m256 offsets = offsets_out;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  const __m512i scale_words = group_scale_words();
  const __m512i spread0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i spread1 = _mm512_add_epi32(spread0, _mm512_set1_epi32(4));
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const uint8_t* g0 = w + static_cast<size_t>(b) * kBytes;
    const uint8_t* g1 = g0 + 4 * kBytes;
    const __m256 dw = _mm256_cvtph_ps(
        _mm512_castsi512_si128(_mm512_permutex2var_epi16(_mm512_loadu_si512(g0), scale_words, _mm512_loadu_si512(g1))));
    const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(a.d + b)));
    offsets = _mm256_fmadd_ps(dw, _mm256_loadu_ps(a.offset + b), offsets);
    const int8_t* q = a.q + b * 32;
    acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread0, s),
                           _mm512_cvtepi32_ps(group_dot(g0, _mm512_loadu_si512(q), _mm512_loadu_si512(q + 64))), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread1, s),
                           _mm512_cvtepi32_ps(group_dot(g1, _mm512_loadu_si512(q + 128), _mm512_loadu_si512(q + 192))),
                           acc1);
  }
  if (b + 4 <= nb) {  // one more group
    const uint8_t* g0 = w + static_cast<size_t>(b) * kBytes;
    const __m128 dw =
        _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(g0))));
    offsets = _mm256_add_ps(offsets, _mm256_zextps128_ps256(_mm_mul_ps(dw, _mm_loadu_ps(a.offset + b))));
    const int8_t* q = a.q + b * 32;
    acc0 =
        _mm512_fmadd_ps(_mm512_permutexvar_ps(spread0, _mm512_castps128_ps512(_mm_mul_ps(dw, _mm_loadu_ps(a.d + b)))),
                        _mm512_cvtepi32_ps(group_dot(g0, _mm512_loadu_si512(q), _mm512_loadu_si512(q + 64))), acc0);
    b += 4;
  }
  if (b < nb) tail_pairs<true>(a, b, nb, w, acc1, offsets);
  offsets_out = offsets;
  return _mm512_add_ps(acc0, acc1);
}

template <bool kNibbles>
inline __attribute__((always_inline)) __m512 row_lanes(const Q8Activations& a, int64_t nb, const uint8_t* w,
                                                       __m256& offsets) {
  if constexpr (kNibbles) return row_lanes_q4(a, nb, w, offsets);
  return row_lanes_q8(a, nb, w);
}

// The sum of the 8 lanes of v.
inline float sum8(__m256 v) {
  const __m128 o = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(o, _mm_movehl_ps(o, o));  // lanes 0 + 2, 1 + 3
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// The kernels rounded_linear calls (its Dot4, Dot1 and Dot4InOrder).
template <bool kNibbles>
void dot4(const Q8Activations& a, int64_t nb, int64_t, const uint8_t* w0, const uint8_t* w1, const uint8_t* w2,
          const uint8_t* w3, float* s) {
  const uint8_t* const w[4] = {w0, w1, w2, w3};
  if constexpr (kNibbles)
    dots4_q4(a, nb, w, s);
  else
    dots4_q8(a, nb, w, s);
}

template <bool kNibbles>
float dot1(const Q8Activations& a, int64_t nb, int64_t, const uint8_t* w0) {
  __m256 offsets = _mm256_setzero_ps();
  const float sum = _mm512_reduce_add_ps(row_lanes<kNibbles>(a, nb, w0, offsets));
  return kNibbles ? sum - sum8(offsets) : sum;
}

// Four rows read one after another, each whole as dot1 reads it, their
// sums reduced together as dot4's are: dot1's order of memory reads with a
// quarter of its reductions.
template <bool kNibbles>
void dot4_in_order(const Q8Activations& a, int64_t nb, int64_t, const uint8_t* w0, const uint8_t* w1, const uint8_t* w2,
                   const uint8_t* w3, float* s) {
  __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
  const __m512 r0 = row_lanes<kNibbles>(a, nb, w0, o0), r1 = row_lanes<kNibbles>(a, nb, w1, o1);
  const __m512 r2 = row_lanes<kNibbles>(a, nb, w2, o2), r3 = row_lanes<kNibbles>(a, nb, w3, o3);
  __m128 sums = four_sums(r0, r1, r2, r3);
  if constexpr (kNibbles)
    sums = _mm_sub_ps(sums, four_sums(_mm512_zextps256_ps512(o0), _mm512_zextps256_ps512(o1),
                                      _mm512_zextps256_ps512(o2), _mm512_zextps256_ps512(o3)));
  _mm_storeu_ps(s, sums);
}

template <bool kNibbles>
void linear(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride, const float* bias,
            int64_t rows, int64_t in, int64_t out) {
  if constexpr (kNibbles) {
    Int8Rows<quantize_grouped> buf;
    rounded_linear(y, ldy, x, ldx, w, w_stride, bias, rows, in, out, kQ4BlockBytes, buf, dot4<true>, dot1<true>,
                   dot4_in_order<true>);
  } else {
    Int8Rows<quantize_blocks> buf;
    rounded_linear(y, ldy, x, ldx, w, w_stride, bias, rows, in, out, kQ8BlockBytes, buf, dot4<false>, dot1<false>,
                   dot4_in_order<false>);
  }
}

// Many-row products (BatchKernel) for CPUs with VNNI but no AMX: 16 rows
// in the lanes of a register, so one vpdpbusd adds 4 inputs of one output
// for all 16 rows, and each broadcast weight dword serves 16 rows.
//   pack(): per tile of 16 rows and block b of 32 inputs, the rounded
// activations as u8 (q + 128) in the layout [k / 4][row][k % 4] (one
// register per 4 inputs), then after all tiles the scales dx[tile][b][row].
// product(): per group of 16 outputs the weights are laid out once in
// `work` as int8 [b][output][32] (Q4_0: nibble - 8) with, per (b, output),
// dw and -128 sum(w) (the +128 of the activations taken out again), so
// sum (q + 128) w - 128 sum(w) = sum q w exactly in int32.
constexpr int64_t kRowTile = 16, kOutTile = 16, kBlockBytesPacked = kRowTile * 32;

int64_t blocks_of(int64_t in) {
  return (in + 31) / 32;
}

size_t batch_bytes(int64_t rows, int64_t in) {
  return static_cast<size_t>((rows + kRowTile - 1) / kRowTile * blocks_of(in) * (kBlockBytesPacked + kRowTile * 4));
}

void batch_pack(const float* x, int64_t ldx, int64_t rows, int64_t in, uint8_t* packed) {
  pack_row_tiles(x, ldx, rows, in, 0x80, packed);  // q + 128 as u8
}

// Per block: 16 outputs x 32 int8, then 16 dw (f32), then 16 corrections (int32).
constexpr int64_t kGroupBlockBytes = kOutTile * 32 + kOutTile * 4 * 2;

size_t batch_work(int64_t in) {
  return static_cast<size_t>(blocks_of(in) * kGroupBlockBytes);
}

// Lays out outputs [0, m) of the group at w (m <= 16; the others zero).
template <bool kNibbles>
void prepare_group(const uint8_t* w, size_t w_stride, int64_t m, int64_t nb, uint8_t* work) {
  constexpr size_t kBytes = kNibbles ? kQ4BlockBytes : kQ8BlockBytes;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* g = work + b * kGroupBlockBytes;
    auto* dw = reinterpret_cast<float*>(g + kOutTile * 32);
    auto* corr = reinterpret_cast<int32_t*>(g + kOutTile * 32 + kOutTile * 4);
    for (int64_t i = 0; i < kOutTile; ++i) {
      __m256i v = _mm256_setzero_si256();
      float d = 0.0f;
      if (i < m) {
        const uint8_t* block = w + static_cast<size_t>(i) * w_stride + static_cast<size_t>(b) * kBytes;
        d = half_at(block);
        if constexpr (kNibbles) {
          const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
          const __m128i mask = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
          v = _mm256_set_m128i(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight),
                               _mm_sub_epi8(_mm_and_si128(raw, mask), eight));
        } else {
          v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
        }
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + i * 32), v);
      dw[i] = d;
      // sum(w) by a dot with 128 in every u8 lane: the correction directly.
      const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(static_cast<char>(0x80)), v);
      const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      const __m128i s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
      corr[i] = -_mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, _MM_SHUFFLE(2, 3, 0, 1))));
    }
  }
}

template <bool kNibbles>
void batch_product(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w,
                   size_t w_stride, const float* bias, int64_t out, uint8_t* work) {
  const int64_t nb = blocks_of(in), tiles = (rows + kRowTile - 1) / kRowTile;
  const float* dxs = reinterpret_cast<const float*>(packed + tiles * nb * kBlockBytesPacked);
  for (int64_t o0 = 0; o0 < out; o0 += kOutTile) {
    const int64_t m = out - o0 < kOutTile ? out - o0 : kOutTile;
    prepare_group<kNibbles>(w + static_cast<size_t>(o0) * w_stride, w_stride, m, nb, work);
    // The next group's weights (contiguous rows) fetched into L2 while this
    // group runs: prepare_group's reads, 16 rows a block apart, otherwise
    // waited on memory (~20% of this kernel at B = 64, n_embd 512).
    const int64_t next_rows = out - o0 - kOutTile < kOutTile ? out - o0 - kOutTile : kOutTile;
    const uint8_t* next = w + static_cast<size_t>(o0 + kOutTile) * w_stride;
    const int64_t next_lines = next_rows > 0 ? (next_rows * static_cast<int64_t>(w_stride) + 63) / 64 : 0;
    const int64_t per_step = (next_lines + tiles * nb - 1) / (tiles * nb);
    int64_t line = 0;
    for (int64_t t = 0; t < tiles; ++t) {
      __m512 acc[kOutTile];
      for (auto& a : acc) a = _mm512_setzero_ps();
      for (int64_t b = 0; b < nb; ++b) {
        for (int64_t k = 0; k < per_step && line < next_lines; ++k, ++line)
          _mm_prefetch(reinterpret_cast<const char*>(next + line * 64), _MM_HINT_T1);
        const uint8_t* xb = packed + (t * nb + b) * kBlockBytesPacked;
        __m512i xq[8];
        for (int k = 0; k < 8; ++k) xq[k] = _mm512_loadu_si512(xb + 64 * k);
        const __m512 dxv = _mm512_loadu_ps(dxs + (t * nb + b) * kRowTile);
        const uint8_t* g = work + b * kGroupBlockBytes;
        const auto* dw = reinterpret_cast<const float*>(g + kOutTile * 32);
        const auto* corr = reinterpret_cast<const int32_t*>(g + kOutTile * 32 + kOutTile * 4);
#pragma GCC unroll 16
        for (int i = 0; i < kOutTile; ++i) {
          const auto* wi = reinterpret_cast<const int32_t*>(g + i * 32);
          __m512i c = _mm512_set1_epi32(corr[i]);
#pragma GCC unroll 8
          for (int k = 0; k < 8; ++k) c = _mm512_dpbusd_epi32(c, xq[k], _mm512_set1_epi32(wi[k]));
          acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), _mm512_mul_ps(dxv, _mm512_set1_ps(dw[i])), acc[i]);
        }
      }
      // Output i of the group is column o0 + i of the tile's rows.
      const int64_t here = rows - t * kRowTile < kRowTile ? rows - t * kRowTile : kRowTile;
      store_row_tile(y + t * kRowTile * ldy, ldy, here, o0, acc, m, bias);
    }
  }
}

// AVX-512 (avx512_support.h) and VNNI.
bool usable() {
  Cpuid7 leaf7;
  return avx512_usable(&leaf7) && (leaf7.ecx >> 11 & 1);
}

}  // namespace

const CpuKernels* vnni_kernels() {
  static const CpuKernels table = [] {
    CpuKernels k{};
    k.name = "avx512-vnni";
    k.linear[QISA_DTYPE_Q8_0] = linear<false>;
    k.linear[QISA_DTYPE_Q4_0] = linear<true>;
    k.activations[QISA_DTYPE_Q8_0] = activations_rounded;
    k.activations[QISA_DTYPE_Q4_0] = activations_rounded;
    k.batch[QISA_DTYPE_Q8_0] = {batch_bytes, batch_pack, batch_product<false>, batch_work};
    k.batch[QISA_DTYPE_Q4_0] = {batch_bytes, batch_pack, batch_product<true>, batch_work};
    return k;
  }();
  static const bool ok = usable();
  return ok ? &table : nullptr;
}

}  // namespace qisa
