#include "reference_ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

namespace qisa::ref {

void linear(float* out, const float* in, const float* w, const float* bias, int64_t R, int64_t I, int64_t O) {
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t o = 0; o < O; ++o) {
      float acc = bias ? bias[o] : 0.0f;
      for (int64_t i = 0; i < I; ++i) acc += in[r * I + i] * w[o * I + i];
      out[r * O + o] = acc;
    }
  }
}

void layernorm(float* out, const float* x, const float* w, const float* b, int64_t R, int64_t d, float eps) {
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * d;
    float mean = 0.0f;
    for (int64_t i = 0; i < d; ++i) mean += xr[i];
    mean /= static_cast<float>(d);
    float var = 0.0f;
    for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<float>(d);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < d; ++i) out[r * d + i] = (xr[i] - mean) * inv * w[i] + b[i];
  }
}

void relu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void gelu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void encode_amplitudes(float* psi, const float* x, int64_t R, int64_t d, int64_t D, bool normalized) {
  for (int64_t r = 0; r < R; ++r) {
    float norm = 0.0f;
    for (int64_t i = 0; i < d; ++i) norm += x[r * d + i] * x[r * d + i];
    const float inv = normalized ? 1.0f / std::max(std::sqrt(norm), 1e-12f) : 1.0f;
    for (int64_t i = 0; i < D; ++i) psi[r * D + i] = i < d ? x[r * d + i] * inv : 0.0f;
  }
}

void pauli_values(float* out, const float* phi_re, const float* phi_im, int64_t D, const PauliString* paulis,
                  int64_t h) {
  for (int64_t k = 0; k < h; ++k) {
    const uint64_t x = paulis[k].x_mask, z = paulis[k].z_mask;
    float re = 0.0f, im = 0.0f;  // sum_j sign * conj(phi[j^x]) * phi[j]
    for (int64_t j = 0; j < D; ++j) {
      const auto jj = static_cast<uint64_t>(j);
      const float sign = (std::popcount(jj & z) & 1) ? -1.0f : 1.0f;
      const auto g = static_cast<int64_t>(jj ^ x);
      re += sign * (phi_re[g] * phi_re[j] + phi_im[g] * phi_im[j]);
      im += sign * (phi_re[g] * phi_im[j] - phi_im[g] * phi_re[j]);
    }
    switch (std::popcount(x & z) & 3) {  // Re(i^ny * (re + i im))
      case 0: out[k] = re; break;
      case 1: out[k] = -im; break;
      case 2: out[k] = -re; break;
      default: out[k] = im; break;
    }
  }
}

void attention_weights(float* a, const float* q, const float* keys, const float* key_norms, int64_t n, int64_t h,
                       int64_t k_stride, int64_t norm_stride, const ScoreRule& rule) {
  float qn = 0.0f;
  for (int64_t i = 0; i < h; ++i) qn += q[i] * q[i];
  // Selection scores: -|q-k|^2 (Gaussian kernel, with |q-k|^2 = |q|^2 +
  // |k|^2 - 2 q.k) or scale * q.k.
  for (int64_t j = 0; j < n; ++j) {
    float dot = 0.0f;
    for (int64_t i = 0; i < h; ++i) dot += q[i] * keys[j * k_stride + i];
    a[j] = rule.gaussian ? -(qn + key_norms[j * norm_stride] - 2.0f * dot) : rule.scale * dot;
  }
  std::vector<uint8_t> keep(static_cast<size_t>(n));
  select_positions_reference(a, n, rule.sparsity, keep.data());
  // Softmax over the kept positions of the scores (Gaussian: exp(-|q-k|^2)).
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    if (rule.gaussian) a[j] = std::exp(a[j]);
    if (keep[j]) mx = std::max(mx, a[j]);
  }
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) sum += (a[j] = keep[j] ? std::exp(a[j] - mx) : 0.0f);
  for (int64_t j = 0; j < n; ++j) a[j] /= sum;
}

void attention_row(float* out, const float* q, const float* keys, const float* key_norms, const float* values,
                   int64_t n, int64_t h, int64_t k_stride, int64_t v_stride, int64_t norm_stride, const ScoreRule& rule,
                   float* scores) {
  attention_weights(scores, q, keys, key_norms, n, h, k_stride, norm_stride, rule);
  for (int64_t i = 0; i < h; ++i) out[i] = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < h; ++i) out[i] += scores[j] * values[j * v_stride + i];
  }
}

void attention_transposed(float* out, const float* q, int64_t q_stride, const float* keys, const float* key_norms,
                          const float* values, int64_t n, int64_t h, int64_t k_stride, int64_t v_stride,
                          int64_t norm_stride, const ScoreRule& rule, float* a) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < h; ++c) out[i * q_stride + c] = 0.0f;
  for (int64_t j = 0; j < n; ++j) {  // row j's weights go to the outputs of the positions it attends to
    attention_weights(a, q + j * q_stride, keys, key_norms, j + 1, h, k_stride, norm_stride, rule);
    for (int64_t i = 0; i <= j; ++i)
      for (int64_t c = 0; c < h; ++c) out[i * q_stride + c] += a[i] * values[j * v_stride + c];
  }
}

}  // namespace qisa::ref
