// What the AVX2 kernel files (cpu_kernels_avx2.cpp, cpu_batch_avx2.cpp)
// share: a block's f16 scale and the rounding of activations to int8
// blocks (rounded_linear.h). They are built with AVX2 and entered only
// after a CPU check; internal linkage, no library calls.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dtype_blocks.h"

namespace qisa {
namespace {

inline int load_u16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// The f16 scale at the start of a Q8_0 or Q4_0 block, as f32.
inline float scale_of(const uint8_t* block) {
  return _cvtsh_ss(static_cast<unsigned short>(load_u16(block)));
}

// Rounded activations (rounded_linear.h): per block of 32, dx = max|x| / 127 and
// q = x * (127 / max|x|) rounded to nearest even, as the generic kernel.
void quantize_q8_blocks(const float* x, int64_t n, int8_t* q, float* d, float* offset) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b0 = 0, b = 0; b0 < n; b0 += kQ4Block, ++b) {
    alignas(32) float tail[kQ4Block];
    const float* xb = x + b0;
    if (n - b0 < static_cast<int64_t>(kQ4Block)) {  // a short last block: zero-padded copy
      for (size_t i = 0; i < kQ4Block; ++i) tail[i] = b0 + static_cast<int64_t>(i) < n ? xb[i] : 0.0f;
      xb = tail;
    }
    const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
    const __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)),
                             _mm256_max_ps(_mm256_and_ps(v2, abs_mask), _mm256_and_ps(v3, abs_mask)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    const float amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
    const __m256 inv = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, inv)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, inv));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, inv)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, inv));
    // Packing works within 128-bit lanes; the permutation puts the 32 values back in order.
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b0),
                        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    const float dx = amax / 127.0f;
    d[b] = dx;
    offset[b] = 8.0f * dx * static_cast<float>(_mm_cvtsi128_si32(t));
  }
}

}  // namespace
}  // namespace qisa
