// Products with Q4_0 weights (dtype_blocks.h) for a few rows, shared by
// both kernel files like circuit_loops.h (internal linkage, no library
// calls). The activations are quantized to 8 bits per block of 32 first
// (scale dx = max|x| / 127, q = round(x / dx)), so each block's product is
// an integer sum: dw * dx * sum_i (w_i - 8) q_i (llama.cpp's Q4_0 x Q8_0
// idea). A row is quantized the same way however many rows share a call.
// Rows are quantized into a stack buffer, long rows a chunk at a time.
#pragma once

#include <cstdint>

#include "cpu_kernels.h"

namespace qisa {
namespace {

// One quantized stretch of a row: blocks of 32 int8 (the last zero-padded),
// with per block the scale and 8 * scale * sum(q) (what the nibbles' offset
// of 8 subtracts).
struct Q8Activations {
  const int8_t* q;
  const float* d;
  const float* offset;
};

// Values per stack buffer: 8 KiB of int8 plus 2 KiB of per-block floats.
constexpr int64_t kQ4StackValues = 8192;

// y[r, o] = bias[o] + x[r] . w[o] for Q4_0 weights. `quantize(x, n, q, d,
// offset)` fills the blocks of n values; `dot4(a, nb, w0..w3)` returns the
// four dots of nb blocks (as float[4] via out), `dot1` one.
template <class Quantize, class Dot4, class Dot1>
void q4_linear(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride, const float* bias,
               int64_t rows, int64_t in, int64_t out, Quantize quantize, Dot4 dot4, Dot1 dot1) {
  alignas(64) int8_t q[kQ4StackValues];
  float d[kQ4StackValues / kQ4Block], offset[kQ4StackValues / kQ4Block];
  const int64_t block = static_cast<int64_t>(kQ4Block);
  const int64_t chunk = in < kQ4StackValues ? in : kQ4StackValues;  // a multiple of 32 when in is longer
  const int64_t chunk_blocks = chunk > 0 ? (chunk + block - 1) / block : 1;
  const int64_t group = kQ4StackValues / (chunk_blocks * block);  // rows quantized at once (>= 1)
  if (in <= 0) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) y[r * ldy + o] = bias ? bias[o] : 0.0f;
    return;
  }
  for (int64_t r0 = 0; r0 < rows; r0 += group) {
    const int64_t g = rows - r0 < group ? rows - r0 : group;
    for (int64_t c0 = 0; c0 < in; c0 += chunk) {
      const int64_t n = in - c0 < chunk ? in - c0 : chunk, nb = (n + block - 1) / block;
      for (int64_t i = 0; i < g; ++i)
        quantize(x + (r0 + i) * ldx + c0, n, q + i * nb * block, d + i * nb, offset + i * nb);
      const size_t wc = static_cast<size_t>(c0 / block) * kQ4BlockBytes;  // the chunk's first block in a row
      int64_t o = 0;
      for (; o + 4 <= out; o += 4) {
        const uint8_t* wo = w + static_cast<size_t>(o) * w_stride + wc;
        for (int64_t i = 0; i < g; ++i) {
          const Q8Activations a{q + i * nb * block, d + i * nb, offset + i * nb};
          float s[4];
          dot4(a, nb, wo, wo + w_stride, wo + 2 * w_stride, wo + 3 * w_stride, s);
          float* yr = y + (r0 + i) * ldy + o;
          for (int k = 0; k < 4; ++k) yr[k] = (c0 == 0 ? (bias ? bias[o + k] : 0.0f) : yr[k]) + s[k];
        }
      }
      for (; o < out; ++o) {
        const uint8_t* wo = w + static_cast<size_t>(o) * w_stride + wc;
        for (int64_t i = 0; i < g; ++i) {
          const Q8Activations a{q + i * nb * block, d + i * nb, offset + i * nb};
          float* yr = y + (r0 + i) * ldy + o;
          *yr = (c0 == 0 ? (bias ? bias[o] : 0.0f) : *yr) + dot1(a, nb, wo);
        }
      }
    }
  }
}

// out[:n] = the activations as the products above use them: per block of
// 32, dx * q (what a many-row product multiplies the widened weight by, so
// a row's result does not depend on how many rows shared its call).
template <class Quantize>
void q8_round(const float* x, int64_t n, float* out, Quantize quantize) {
  alignas(64) int8_t q[kQ4StackValues];
  float d[kQ4StackValues / kQ4Block], offset[kQ4StackValues / kQ4Block];
  for (int64_t c0 = 0; c0 < n; c0 += kQ4StackValues) {
    const int64_t m = n - c0 < kQ4StackValues ? n - c0 : kQ4StackValues;
    quantize(x + c0, m, q, d, offset);
    for (int64_t i = 0; i < m; ++i) out[c0 + i] = d[i / static_cast<int64_t>(kQ4Block)] * static_cast<float>(q[i]);
  }
}

}  // namespace
}  // namespace qisa
