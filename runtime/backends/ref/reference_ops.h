// The reference implementation of every operation of the forward pass:
// short loops over plain row-major float arrays, shapes in the comments.
// The fast paths (oneDNN, CUDA) are tested against these.
#pragma once

#include <cstdint>

#include "circuit.h"
#include "sparse_selection.h"

namespace qisa::ref {

// out[r][o] = bias[o] + sum_i in[r][i] * w[o][i]     in [R, I], w [O, I], out [R, O]
void linear(float* out, const float* in, const float* w, const float* bias, int64_t R, int64_t I, int64_t O);

// out[r] = (x[r] - mean) / sqrt(var + eps) * w + b    x, out [R, d]
void layernorm(float* out, const float* x, const float* w, const float* b, int64_t R, int64_t d, float eps);

void relu(float* x, int64_t n);
void gelu(float* x, int64_t n);  // exact: x * Phi(x), as torch.nn.GELU()

// psi[r] = pad_D(x[r]) / max(|x[r]|, 1e-12) (normalized) or pad_D(x[r]) (raw).   x [R, d], psi [R, D]
void encode_amplitudes(float* psi, const float* x, int64_t R, int64_t d, int64_t D, bool normalized);

// One projection's outputs from phi = U psi given as re/im halves:
// out[k] = Re(i^ny_k sum_j (-1)^popcount(j & z_k) conj(phi[j ^ x_k]) phi[j]).
void pauli_values(float* out, const float* phi_re, const float* phi_im, int64_t D, const PauliString* paulis,
                  int64_t h);

// Causal attention of one query over the keys/values of positions 0..n-1 of
// its sequence, for one head. CSA: softmax(scale q.k); else the Gaussian
// kernel softmax(exp(-|q-k|^2)); over the positions rule.sparsity keeps
// (sparse_selection.h). k_stride/v_stride step between positions. out [h].
void attention_row(float* out, const float* q, const float* keys, const float* key_norms, const float* values,
                   int64_t n, int64_t h, int64_t k_stride, int64_t v_stride, int64_t norm_stride, const ScoreRule& rule,
                   float* scratch /* [n] */);
// The weights attention_row applies: a[:n] = softmax over the kept j < n
// of q's scores against keys 0..n-1 (0 where not kept).
void attention_weights(float* a, const float* q, const float* keys, const float* key_norms, int64_t n, int64_t h,
                       int64_t k_stride, int64_t norm_stride, const ScoreRule& rule);
// The research code's transposed attention over a whole window of n
// positions (models marked ReferenceTransposed): out_i = sum over j >= i of
// a_ji v_j, where a_j. are the weights of row j (attention_weights with
// q_j over keys 0..j). q and out are [n, q_stride]; out is overwritten.
// scratch [n].
void attention_transposed(float* out, const float* q, int64_t q_stride, const float* keys, const float* key_norms,
                          const float* values, int64_t n, int64_t h, int64_t k_stride, int64_t v_stride,
                          int64_t norm_stride, const ScoreRule& rule, float* scratch);

}  // namespace qisa::ref
