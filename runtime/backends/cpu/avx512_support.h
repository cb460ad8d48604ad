// What the AVX-512 kernel files (cpu_kernels_vnni.cpp, cpu_kernels_amx.cpp)
// share: the check that the CPU has AVX-512 F/DQ/BW/VL (and the caller's
// extras) and that the OS saves the 512-bit state, the rounding of one
// activation block, the packing of rows into 16-row int8 tiles and the
// scatter of a tile's outputs back to rows, and a
// GCC 12 warning that their intrinsics trip.
// Internal linkage: each file (compiled with AVX-512) gets its own copy.
#pragma once

#include <cpuid.h>
#include <immintrin.h>

#include <cstdint>

// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*(),
// which -W(maybe-)uninitialized reports inside the compiler's own header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace qisa {
namespace {

struct Cpuid7 {
  unsigned ebx = 0, ecx = 0, edx = 0;
};

// CPUID leaf 7 when the CPU has AVX-512 F/DQ/BW/VL and the OS saves the
// SSE, AVX, opmask and ZMM state (XCR0); false otherwise.
inline bool avx512_usable(Cpuid7* leaf7) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  *leaf7 = {b, c, d};
  const bool isa = (b >> 16 & 1) && (b >> 17 & 1) && (b >> 30 & 1) && (b >> 31 & 1);
  if (!isa || !__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xe6) == 0xe6;
}

// One activation block rounded as every engine rounds it (core/dtype.h
// round_activations): the m <= 32 values at x, dx = max|x| / 127 and
// q = x * (127 / max|x|) to nearest even (the default rounding mode); q is
// zero past m. Returns dx; *sum_q (when given) = sum(q).
inline float round_block(const float* x, int64_t m, int8_t* q, int32_t* sum_q = nullptr) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const auto k0 = static_cast<__mmask16>(m >= 16 ? 0xffff : (1u << m) - 1);
  const auto k1 = static_cast<__mmask16>(m >= 32 ? 0xffff : m <= 16 ? 0 : (1u << (m - 16)) - 1);
  const __m512 v0 = _mm512_maskz_loadu_ps(k0, x), v1 = _mm512_maskz_loadu_ps(k1, x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_and_ps(v1, abs_mask)));
  const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
  const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(i0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(i1));
  if (sum_q) *sum_q = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
  return amax / 127.0f;
}

// Rows rounded per block of 32 (round_block) into the 16-row tiles of the
// int8 batch products: per tile t of 16 rows and block b, at packed +
// (t nb + b) 512, byte k4 64 + 4 n + i = q[row n][32 b + 4 k4 + i] (each
// 4 consecutive inputs of a row in one 32-bit lane), every byte XOR `flip`
// (0x80: q + 128 as u8 for vpdpbusd); after all tiles the scales
// dx[t][b][n] (0 for padding rows, whose q are 0).
inline void pack_row_tiles(const float* x, int64_t ldx, int64_t rows, int64_t in, uint8_t flip, uint8_t* packed) {
  constexpr int64_t kRows = 16, kTileBytes = kRows * 32;
  const int64_t nb = (in + 31) / 32, tiles = (rows + kRows - 1) / kRows;
  float* dxs = reinterpret_cast<float*>(packed + tiles * nb * kTileBytes);
  const uint32_t flip4 = flip * 0x01010101u;
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t n = 0; n < kRows; ++n) {
      const int64_t r = t * kRows + n;
      for (int64_t b = 0; b < nb; ++b) {
        alignas(64) int8_t q[32] = {};
        float dx = 0.0f;
        if (r < rows) dx = round_block(x + r * ldx + b * 32, in - b * 32 < 32 ? in - b * 32 : 32, q);
        uint8_t* tile = packed + (t * nb + b) * kTileBytes;
        for (int64_t k4 = 0; k4 < 8; ++k4) {
          uint32_t v;
          __builtin_memcpy(&v, q + 4 * k4, 4);
          v ^= flip4;
          __builtin_memcpy(tile + k4 * 64 + n * 4, &v, 4);
        }
        dxs[(t * nb + b) * kRows + n] = dx;
      }
    }
  }
}

// The m <= 16 outputs acc[i] of a tile of rows (lane n = row t0 + n, the
// first `here` lanes real) into y at column o0 + i, plus bias[o0 + i]:
// scattered with the row stride ldy.
inline void store_row_tile(float* y, int64_t ldy, int64_t here, int64_t o0, const __m512* acc, int64_t m,
                           const float* bias) {
  const __m512i rows = _mm512_mullo_epi32(_mm512_set1_epi32(static_cast<int>(ldy)),
                                          _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const auto mask = static_cast<__mmask16>(here >= 16 ? 0xffff : (1u << here) - 1);
  for (int64_t i = 0; i < m; ++i) {
    const __m512 v = bias ? _mm512_add_ps(acc[i], _mm512_set1_ps(bias[o0 + i])) : acc[i];
    _mm512_mask_i32scatter_ps(y + o0 + i, mask, rows, v, 4);
  }
}

}  // namespace
}  // namespace qisa
