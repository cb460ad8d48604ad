// Many-row Q8_0 and Q4_0 products (BatchKernel) with AVX2, on the weights
// as stored: 8 rows in the lanes of a register, each lane four int8
// activations, multiplied by four weights broadcast from the stored block
// with vpmaddubsw (unsigned x signed byte pairs summed into int16). Q8_0
// takes the sign trick (|w| times x with w's sign, exact for w = -128);
// Q4_0's nibbles are w + 8 in [0, 15] as they are stored, so a block's
// eight products accumulate in int16 without overflow (8 x 2 x 15 x 127 <
// 2^15), and 8 times the block's activation sum comes off once. On CPUs
// without VNNI this is the fastest exact integer form (bench/mac_rate:
// ~1.7x f32 FMA per product on a Zen 3), where the fallback widens the
// weight to f32 for oneDNN. Built with AVX2 and entered only after the CPU
// check of the AVX2 set (cpu_kernels_avx2.cpp), whose table holds these
// entries; the VNNI and AMX kernels replace them where the CPU has those.
//   pack(): per tile of 8 rows and block of 32 inputs, the activations
// rounded as the few-row kernels round them (avx2_support.h) in the layout
// [quad of inputs][row][4]: one register per quad; then the scales
// dx[tile][block][row] and the sums of the rounded values (Q4_0's offset).
//   product(): per 16 outputs, two row tiles by four outputs at a time, one
// broadcast weight quad serving 16 rows. A block's int32 sums are exact;
// each is scaled by dx * dw into an f32 sum. (Earlier the weights were laid
// out again as int16 pairs on every call: 11% of the kernel's time at 64
// rows.)
#include <immintrin.h>

#include <cstring>

#include "avx2_batch.h"
#include "avx2_support.h"
#include "cpu_kernels.h"
#include "dtype_blocks.h"

namespace qisa::avx2_batch {

namespace {

constexpr int64_t kRowTile = 8, kQuads = 8, kOutGroup = 16, kOutStep = 4;
constexpr int64_t kTileBlockBytes = kQuads * kRowTile * 4;  // int8 quads of 8 rows

int64_t blocks_of(int64_t in) {
  return (in + 31) / 32;
}

int32_t load_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The sums of kOutStep outputs (rows of the stored weight at w[o]) over NT
// tiles of rows, added into acc[t][o] (lane n: row n of tile t), for every
// block. xs[t]: the tile's quads; dxs[t], sums[t]: its scales and sums.
template <bool kNibbles, int NT>
void tile_product(const uint8_t* const* xs, const float* const* dxs, const int32_t* const* sums, int64_t nb,
                  const uint8_t* const* w, __m256 (&acc)[2][kOutStep]) {
  constexpr size_t kBytes = kNibbles ? kQ4BlockBytes : kQ8BlockBytes;
  const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0f);
  for (int64_t b = 0; b < nb; ++b) {
    const size_t at = static_cast<size_t>(b) * kBytes;
    __m256i c[NT][kOutStep];
    for (auto& row : c)
      for (auto& v : row) v = _mm256_setzero_si256();
    auto x = [&](int t, int q) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs[t] + b * kTileBlockBytes + q * 32));
    };
    if constexpr (kNibbles) {
      // Byte j of the block holds value j (low nibble) and j + 16 (high):
      // one broadcast quad gives quads q and q + 4.
      for (int q = 0; q < 4; ++q) {
        for (int o = 0; o < kOutStep; ++o) {
          const __m256i raw = _mm256_set1_epi32(load_quad(w[o] + at + 2 + 4 * q));
          const __m256i lo = _mm256_and_si256(raw, low), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
          for (int t = 0; t < NT; ++t)
            c[t][o] = _mm256_add_epi16(
                c[t][o], _mm256_add_epi16(_mm256_maddubs_epi16(lo, x(t, q)), _mm256_maddubs_epi16(hi, x(t, q + 4))));
        }
      }
    } else {
#pragma GCC unroll 2
      for (int q = 0; q < kQuads; ++q) {
        for (int o = 0; o < kOutStep; ++o) {
          const __m256i wv = _mm256_set1_epi32(load_quad(w[o] + at + 2 + 4 * q));
          const __m256i aw = _mm256_abs_epi8(wv);
          for (int t = 0; t < NT; ++t)
            c[t][o] = _mm256_add_epi32(
                c[t][o], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x(t, q), wv)), ones));
        }
      }
    }
    for (int t = 0; t < NT; ++t) {
      const __m256 dx = _mm256_loadu_ps(dxs[t] + b * kRowTile);
      __m256i offset = _mm256_setzero_si256();  // Q4_0: 8 times the activations' sum
      if constexpr (kNibbles)
        offset = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums[t] + b * kRowTile)), 3);
      for (int o = 0; o < kOutStep; ++o) {
        __m256i v = c[t][o];
        if constexpr (kNibbles) v = _mm256_sub_epi32(_mm256_madd_epi16(v, ones), offset);
        acc[t][o] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(dx, _mm256_set1_ps(scale_of(w[o] + at))), acc[t][o]);
      }
    }
  }
}

// Rows [r0, r0 + here) of the tile, outputs o of [0, m) (acc lane n = row
// r0 + n) into y at column `col` + o, plus the bias.
void store_tile(float* y, int64_t ldy, int64_t here, const __m256 (&acc)[kOutStep], int64_t m, const float* bias,
                int64_t col) {
  alignas(32) float v[kOutStep][kRowTile];
  for (int o = 0; o < kOutStep; ++o) _mm256_store_ps(v[o], acc[o]);
  for (int64_t n = 0; n < here; ++n)
    for (int64_t o = 0; o < m; ++o) y[n * ldy + col + o] = v[o][n] + (bias ? bias[col + o] : 0.0f);
}

template <bool kNibbles>
void product(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w, size_t w_stride,
             const float* bias, int64_t out) {
  const int64_t nb = blocks_of(in), tiles = (rows + kRowTile - 1) / kRowTile;
  const float* dx_all = reinterpret_cast<const float*>(packed + tiles * nb * kTileBlockBytes);
  const auto* sum_all = reinterpret_cast<const int32_t*>(dx_all + tiles * nb * kRowTile);
  for (int64_t o0 = 0; o0 < out; o0 += kOutGroup) {
    const int64_t m = out - o0 < kOutGroup ? out - o0 : kOutGroup;
    for (int64_t t0 = 0; t0 < tiles; t0 += 2) {
      const int nt = tiles - t0 >= 2 ? 2 : 1;
      const uint8_t* xs[2] = {packed + t0 * nb * kTileBlockBytes, packed + (t0 + 1) * nb * kTileBlockBytes};
      const float* dxs[2] = {dx_all + t0 * nb * kRowTile, dx_all + (t0 + 1) * nb * kRowTile};
      const int32_t* sums[2] = {sum_all + t0 * nb * kRowTile, sum_all + (t0 + 1) * nb * kRowTile};
      for (int64_t s = 0; s < m; s += kOutStep) {
        const int64_t ms = m - s < kOutStep ? m - s : kOutStep;
        // Past the last output the first row stands in (its sums are not stored).
        const uint8_t* rows_w[kOutStep];
        for (int64_t o = 0; o < kOutStep; ++o)
          rows_w[o] = w + static_cast<size_t>(o0 + s + (o < ms ? o : 0)) * w_stride;
        __m256 acc[2][kOutStep];
        for (auto& row : acc)
          for (auto& v : row) v = _mm256_setzero_ps();
        if (nt == 2)
          tile_product<kNibbles, 2>(xs, dxs, sums, nb, rows_w, acc);
        else
          tile_product<kNibbles, 1>(xs, dxs, sums, nb, rows_w, acc);
        for (int t = 0; t < nt; ++t) {
          const int64_t r0 = (t0 + t) * kRowTile, here = rows - r0 < kRowTile ? rows - r0 : kRowTile;
          store_tile(y + r0 * ldy, ldy, here, acc[t], ms, bias, o0 + s);
        }
      }
    }
  }
}

}  // namespace

size_t bytes(int64_t rows, int64_t in) {
  const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
  return static_cast<size_t>(tiles * blocks_of(in) * (kTileBlockBytes + kRowTile * 8));
}

void pack(const float* x, int64_t ldx, int64_t rows, int64_t in, uint8_t* packed) {
  const int64_t nb = blocks_of(in), tiles = (rows + kRowTile - 1) / kRowTile;
  float* dxs = reinterpret_cast<float*>(packed + tiles * nb * kTileBlockBytes);
  int32_t* sums = reinterpret_cast<int32_t*>(dxs + tiles * nb * kRowTile);
  alignas(32) int8_t q[kBatchMaxIn];
  float d[kBatchMaxIn / 32], offset[kBatchMaxIn / 32];
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t n = 0; n < kRowTile; ++n) {
      const int64_t r = t * kRowTile + n;
      if (r < rows) {
        quantize_q8_blocks(x + r * ldx, in, q, d, offset);
      } else {  // past the rows: zeros
        std::memset(q, 0, static_cast<size_t>(nb * 32));
        for (int64_t b = 0; b < nb; ++b) d[b] = 0.0f;
      }
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* tile = packed + (t * nb + b) * kTileBlockBytes;
        int32_t sum = 0;
        for (int64_t i = 0; i < 32; ++i) sum += q[b * 32 + i];
        for (int64_t k = 0; k < kQuads; ++k) std::memcpy(tile + k * 32 + n * 4, q + b * 32 + k * 4, 4);
        dxs[(t * nb + b) * kRowTile + n] = d[b];
        sums[(t * nb + b) * kRowTile + n] = sum;
      }
    }
  }
}

size_t work_bytes(int64_t /*in*/) {
  return 0;
}

void product_q8(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w,
                size_t w_stride, const float* bias, int64_t out, uint8_t* /*work*/) {
  product<false>(y, ldy, packed, rows, in, w, w_stride, bias, out);
}

void product_q4(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w,
                size_t w_stride, const float* bias, int64_t out, uint8_t* /*work*/) {
  product<true>(y, ldy, packed, rows, in, w, w_stride, bias, out);
}

}  // namespace qisa::avx2_batch
