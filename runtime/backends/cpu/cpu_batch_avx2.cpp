// Many-row Q8_0 and Q4_0 products (BatchKernel) with AVX2: int16 pairs
// multiplied and summed into int32 by vpmaddwd, 8 rows in the lanes of a
// register. On CPUs without VNNI this is the fastest exact integer form
// (bench/mac_rate: vpmaddwd as fast per product as vpsignb + vpmaddubsw,
// without the sign step, and ~1.7x f32 FMA on a Zen 3), where the fallback
// widens the weight to f32 for oneDNN. Built with AVX2 and entered only
// after the CPU check of the AVX2 set (cpu_kernels_avx2.cpp), whose table
// holds these entries; the VNNI and AMX kernels replace them where the CPU
// has those.
//   pack(): per tile of 8 rows and block of 32 inputs, the activations
// rounded as the few-row kernels round them (avx2_support.h), as int16
// in the layout [pair of inputs][row][2]: one register per pair, each
// 32-bit lane one row's two values; then the scales dx[tile][block][row].
//   product(): per group of 16 outputs the weights are laid out once in
// `work` as int16 pairs [block][output][pair] (Q4_0: nibble - 8) with dw
// per (block, output); then two row tiles by four outputs at a time, one
// broadcast weight pair serving 16 rows. A block's int32 sums are exact;
// each is scaled by dx * dw into an f32 sum.
#include <immintrin.h>

#include <cstring>

#include "avx2_batch.h"
#include "avx2_support.h"
#include "cpu_kernels.h"
#include "dtype_blocks.h"

namespace qisa::avx2_batch {

namespace {

constexpr int64_t kRowTile = 8, kPairs = 16, kOutGroup = 16, kOutStep = 4;
constexpr int64_t kTileBlockBytes = kPairs * kRowTile * 4;                    // int16 pairs of 8 rows
constexpr int64_t kGroupBlockBytes = kOutGroup * kPairs * 4 + kOutGroup * 4;  // weight pairs, then dw

int64_t blocks_of(int64_t in) {
  return (in + 31) / 32;
}

// Outputs [0, m) of the group at w (m <= kOutGroup; the rest zero) as
// int16 weight pairs and scales, per block.
template <bool kNibbles>
void prepare_group(const uint8_t* w, size_t w_stride, int64_t m, int64_t nb, uint8_t* work) {
  constexpr size_t kBytes = kNibbles ? kQ4BlockBytes : kQ8BlockBytes;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* g = work + b * kGroupBlockBytes;
    auto* dw = reinterpret_cast<float*>(g + kOutGroup * kPairs * 4);
    for (int64_t i = 0; i < kOutGroup; ++i) {
      __m256i lo = _mm256_setzero_si256(), hi = lo;  // values 0-15, 16-31 as int16
      float d = 0.0f;
      if (i < m) {
        const uint8_t* block = w + static_cast<size_t>(i) * w_stride + static_cast<size_t>(b) * kBytes;
        d = scale_of(block);
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
        if constexpr (kNibbles) {  // byte j: value j low, value j + 16 high
          const __m256i eight = _mm256_set1_epi16(8);
          const __m128i mask = _mm_set1_epi8(0x0f);
          lo = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(raw, mask)), eight);
          hi = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), mask)), eight);
        } else {
          lo = _mm256_cvtepi8_epi16(raw);
          hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 18)));
        }
      }
      // 16 int16 are 8 pairs: pairs 0-7 from lo, 8-15 from hi.
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + i * kPairs * 4), lo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + i * kPairs * 4 + 32), hi);
      dw[i] = d;
    }
  }
}

// The sums of kOutStep outputs (weight pairs at wg, kPairs apart; their
// dw at dw) over NT tiles of rows, added into acc[t][o] (lane n: row n of
// tile t), for every block.
template <int NT>
void tile_product(const uint8_t* const* xs, const float* const* dxs, int64_t nb, const uint8_t* work, int64_t first,
                  __m256 (&acc)[2][kOutStep]) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* g = work + b * kGroupBlockBytes;
    const auto* wp = reinterpret_cast<const int32_t*>(g) + first * kPairs;
    const auto* dw = reinterpret_cast<const float*>(g + kOutGroup * kPairs * 4) + first;
    __m256i c[NT][kOutStep];
    for (auto& row : c)
      for (auto& v : row) v = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int64_t p = 0; p < kPairs; ++p) {
      __m256i x[NT];
      for (int t = 0; t < NT; ++t)
        x[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs[t] + b * kTileBlockBytes + p * 32));
      for (int o = 0; o < kOutStep; ++o) {
        const __m256i wv = _mm256_set1_epi32(wp[o * kPairs + p]);
        for (int t = 0; t < NT; ++t) c[t][o] = _mm256_add_epi32(c[t][o], _mm256_madd_epi16(x[t], wv));
      }
    }
    for (int t = 0; t < NT; ++t) {
      const __m256 dx = _mm256_loadu_ps(dxs[t] + b * kRowTile);
      for (int o = 0; o < kOutStep; ++o)
        acc[t][o] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(c[t][o]), _mm256_mul_ps(dx, _mm256_broadcast_ss(dw + o)), acc[t][o]);
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
             const float* bias, int64_t out, uint8_t* work) {
  const int64_t nb = blocks_of(in), tiles = (rows + kRowTile - 1) / kRowTile;
  const float* dx_all = reinterpret_cast<const float*>(packed + tiles * nb * kTileBlockBytes);
  for (int64_t o0 = 0; o0 < out; o0 += kOutGroup) {
    const int64_t m = out - o0 < kOutGroup ? out - o0 : kOutGroup;
    prepare_group<kNibbles>(w + static_cast<size_t>(o0) * w_stride, w_stride, m, nb, work);
    for (int64_t t0 = 0; t0 < tiles; t0 += 2) {
      const int nt = tiles - t0 >= 2 ? 2 : 1;
      const uint8_t* xs[2] = {packed + t0 * nb * kTileBlockBytes, packed + (t0 + 1) * nb * kTileBlockBytes};
      const float* dxs[2] = {dx_all + t0 * nb * kRowTile, dx_all + (t0 + 1) * nb * kRowTile};
      for (int64_t s = 0; s < m; s += kOutStep) {
        __m256 acc[2][kOutStep];
        for (auto& row : acc)
          for (auto& v : row) v = _mm256_setzero_ps();
        if (nt == 2)
          tile_product<2>(xs, dxs, nb, work, s, acc);
        else
          tile_product<1>(xs, dxs, nb, work, s, acc);
        const int64_t ms = m - s < kOutStep ? m - s : kOutStep;
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
  return static_cast<size_t>(tiles * blocks_of(in) * (kTileBlockBytes + kRowTile * 4));
}

void pack(const float* x, int64_t ldx, int64_t rows, int64_t in, uint8_t* packed) {
  const int64_t nb = blocks_of(in), tiles = (rows + kRowTile - 1) / kRowTile;
  float* dxs = reinterpret_cast<float*>(packed + tiles * nb * kTileBlockBytes);
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
        // 32 int8 as 16 int16 pairs, each pair to its register's lane n.
        const __m256i v = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + b * 32)));
        const __m256i u = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + b * 32 + 16)));
        alignas(32) int32_t pairs[kPairs];
        _mm256_store_si256(reinterpret_cast<__m256i*>(pairs), v);
        _mm256_store_si256(reinterpret_cast<__m256i*>(pairs + 8), u);
        auto* tile = reinterpret_cast<int32_t*>(packed + (t * nb + b) * kTileBlockBytes);
        for (int64_t p = 0; p < kPairs; ++p) tile[p * kRowTile + n] = pairs[p];
        dxs[(t * nb + b) * kRowTile + n] = d[b];
      }
    }
  }
}

size_t work_bytes(int64_t in) {
  return static_cast<size_t>(blocks_of(in) * kGroupBlockBytes);
}

void product_q8(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w,
                size_t w_stride, const float* bias, int64_t out, uint8_t* work) {
  product<false>(y, ldy, packed, rows, in, w, w_stride, bias, out, work);
}

void product_q4(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w,
                size_t w_stride, const float* bias, int64_t out, uint8_t* work) {
  product<true>(y, ldy, packed, rows, in, w, w_stride, bias, out, work);
}

}  // namespace qisa::avx2_batch
