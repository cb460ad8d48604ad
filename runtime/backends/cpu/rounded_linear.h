// Few-row products with a stored type whose products round the activations
// (DtypeTraits::rounds_activations: Q8_0, Q4_0), shared by both kernel
// files like circuit_loops.h (internal linkage, no library calls). Each
// row is rounded per block of 32 first (dx = max|x| / 127, q = round(x /
// dx)) into a stack buffer, long rows a chunk at a time, then multiplied
// four weight rows at a time; a row is rounded the same way however many
// rows share a call.
//   The AVX2 and VNNI sets keep the int8 q, so each block's product is an
// integer sum: dw * dx * sum_i (w_i - 8) q_i for Q4_0 (llama.cpp's Q4_0 x
// Q8_0 idea), dw * dx * sum_i w_i q_i for Q8_0. The generic set keeps
// Q8_0's rounded values dx * q as f32 for its f32 dots.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu_kernels.h"

namespace qisa {
namespace {

// Weight matrices of at least this many bytes are read by the few-row
// kernels (rounded_linear, and linear_by4 in cpu_kernels_avx2.cpp) one
// weight row after another rather than four rows interleaved. Such a
// matrix does not stay in the caches between decode steps, and streaming
// it is then what counts: on a 2-vCPU AMD EPYC (Zen 4) VM one row after
// another streams at 22-24 GB/s, four rows of 0.8-3 KiB in step at 6-11
// GB/s (bench_runtime's BM_StreamRows); a decode step at n_embd 768 took
// f32 13.3-14.3 -> 6.7-6.8 ms and q8_0 5.1-5.3 -> 1.9-2.1 ms with every
// row read alone (docs/benchmarks.md). 256 KiB rather than 512 (measured
// with dtype_step_ratio, decode steps): q4_0 at n_embd 768 (331 KiB
// matrices) 1.51-1.64 -> 1.27-1.42 ms, q8_0 at 512 (278 KiB) 1.07-1.61 ->
// 0.79-0.91 ms, f32 at 256 (256 KiB) 0.65-1.17 -> 0.54-0.71 ms. Smaller
// matrices are faster four rows in step, where the shared activation
// loads and reductions count (q4_0 at n_embd 128: 65-68 us by four, 90-95
// us row by row; f32 at 128: 70-85 us by four, 75-99 us row by row).
constexpr size_t kSequentialRowsBytes = size_t{256} << 10;

// Values per stack buffer (8 KiB of int8 or 32 KiB of f32).
constexpr int64_t kRoundedStackValues = 8192;
constexpr int64_t kActivationBlock = 32;

// One quantized stretch of a row: blocks of 32 int8 (the last zero-padded),
// with per block the scale and 8 * scale * sum(q) (what the nibbles' offset
// of 8 subtracts).
struct Q8Activations {
  const int8_t* q;
  const float* d;
  const float* offset;
};

// Rows kept as int8 blocks; `Quantize(x, n, q, d, offset)` fills them.
template <void (*Quantize)(const float*, int64_t, int8_t*, float*, float*)>
struct Int8Rows {
  alignas(64) int8_t q[kRoundedStackValues];
  float d[kRoundedStackValues / kActivationBlock], offset[kRoundedStackValues / kActivationBlock];
  void fill(int64_t i, const float* x, int64_t n, int64_t nb) {
    Quantize(x, n, q + i * nb * kActivationBlock, d + i * nb, offset + i * nb);
  }
  Q8Activations view(int64_t i, int64_t nb) const {
    return {q + i * nb * kActivationBlock, d + i * nb, offset + i * nb};
  }
};

// Rows kept as the rounded f32 values; `Round(x, n, out)` fills them.
template <void (*Round)(const float*, int64_t, float*)>
struct F32Rows {
  alignas(64) float v[kRoundedStackValues];
  void fill(int64_t i, const float* x, int64_t n, int64_t nb) { Round(x, n, v + i * nb * kActivationBlock); }
  const float* view(int64_t i, int64_t nb) const { return v + i * nb * kActivationBlock; }
};

// y[r, o] = bias[o] + round(x[r]) . w[o] for a blocked weight type of
// `block_bytes` per 32 values. `dot4(a, nb, n, w0..w3, s)` stores the four
// dots of n values (nb blocks) in s[0..3], `dot1(a, nb, n, w)` returns one.
// From kSequentialRowsBytes of weights on, groups of four rows go to
// `dot4_in_order` (dot4's signature, each row read whole before the next).
template <class Rows, class Dot4, class Dot1, class Dot4InOrder>
void rounded_linear(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
                    const float* bias, int64_t rows, int64_t in, int64_t out, size_t block_bytes, Rows& buf, Dot4 dot4,
                    Dot1 dot1, Dot4InOrder dot4_in_order) {
  const bool by4 = static_cast<size_t>(out) * w_stride < kSequentialRowsBytes;
  const int64_t block = kActivationBlock;
  if (in <= 0) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) y[r * ldy + o] = bias ? bias[o] : 0.0f;
    return;
  }
  const int64_t chunk = in < kRoundedStackValues ? in : kRoundedStackValues;  // a multiple of 32 when in is longer
  const int64_t chunk_blocks = (chunk + block - 1) / block;
  const int64_t group = kRoundedStackValues / (chunk_blocks * block);  // rows rounded at once (>= 1)
  for (int64_t r0 = 0; r0 < rows; r0 += group) {
    const int64_t g = rows - r0 < group ? rows - r0 : group;
    for (int64_t c0 = 0; c0 < in; c0 += chunk) {
      const int64_t n = in - c0 < chunk ? in - c0 : chunk, nb = (n + block - 1) / block;
      for (int64_t i = 0; i < g; ++i) buf.fill(i, x + (r0 + i) * ldx + c0, n, nb);
      const size_t wc = static_cast<size_t>(c0 / block) * block_bytes;  // the chunk's first block in a row
      int64_t o = 0;
      for (; o + 4 <= out; o += 4) {
        const uint8_t* wo = w + static_cast<size_t>(o) * w_stride + wc;
        for (int64_t i = 0; i < g; ++i) {
          float s[4];
          if (by4)
            dot4(buf.view(i, nb), nb, n, wo, wo + w_stride, wo + 2 * w_stride, wo + 3 * w_stride, s);
          else
            dot4_in_order(buf.view(i, nb), nb, n, wo, wo + w_stride, wo + 2 * w_stride, wo + 3 * w_stride, s);
          float* yr = y + (r0 + i) * ldy + o;
          for (int k = 0; k < 4; ++k) yr[k] = (c0 == 0 ? (bias ? bias[o + k] : 0.0f) : yr[k]) + s[k];
        }
      }
      for (; o < out; ++o) {
        const uint8_t* wo = w + static_cast<size_t>(o) * w_stride + wc;
        for (int64_t i = 0; i < g; ++i) {
          float* yr = y + (r0 + i) * ldy + o;
          *yr = (c0 == 0 ? (bias ? bias[o] : 0.0f) : *yr) + dot1(buf.view(i, nb), nb, n, wo);
        }
      }
    }
  }
}

// The same with four dot1 calls for each group of four rows read in order.
template <class Rows, class Dot4, class Dot1>
void rounded_linear(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
                    const float* bias, int64_t rows, int64_t in, int64_t out, size_t block_bytes, Rows& buf, Dot4 dot4,
                    Dot1 dot1) {
  auto four_by_one = [&dot1](const auto& a, int64_t nb, int64_t n, const uint8_t* w0, const uint8_t* w1,
                             const uint8_t* w2, const uint8_t* w3, float* s) {
    s[0] = dot1(a, nb, n, w0);
    s[1] = dot1(a, nb, n, w1);
    s[2] = dot1(a, nb, n, w2);
    s[3] = dot1(a, nb, n, w3);
  };
  rounded_linear(y, ldy, x, ldx, w, w_stride, bias, rows, in, out, block_bytes, buf, dot4, dot1, four_by_one);
}

// out[:n] = the activations as the products above use them: per block of
// 32, dx * q (what a many-row product multiplies the widened weight by, so
// a row's result does not depend on how many rows shared its call).
template <void (*Quantize)(const float*, int64_t, int8_t*, float*, float*)>
void round_rows(const float* x, int64_t n, float* out) {
  alignas(64) int8_t q[kRoundedStackValues];
  float d[kRoundedStackValues / kActivationBlock], offset[kRoundedStackValues / kActivationBlock];
  for (int64_t c0 = 0; c0 < n; c0 += kRoundedStackValues) {
    const int64_t m = n - c0 < kRoundedStackValues ? n - c0 : kRoundedStackValues;
    Quantize(x + c0, m, q, d, offset);
    for (int64_t i = 0; i < m; ++i) out[c0 + i] = d[i / kActivationBlock] * static_cast<float>(q[i]);
  }
}

}  // namespace
}  // namespace qisa
