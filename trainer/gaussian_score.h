// The Gaussian-kernel attention score exp(-|q_i - k_j|^2) of QISA v2/v3 and
// QSAT as one autograd node. Written with autograd over LibTorch ops the
// score is ~10 passes over [B, T, h] and [B, T, T] forward and ~15 backward
// (pow, broadcast sums, their expansions and accumulations); this node
// takes one batched product and four in-place passes over [B, T, T]
// forward, and two batched products plus two row scalings backward:
//   M = -2 dL/dE * E,  dq_i = q_i sum_j M_ij - (M k)_i,
//                      dk_j = k_j sum_i M_ij - (M^T q)_j.
#pragma once

#include <torch/torch.h>

#include <utility>

namespace qisa::train {

// q, k: [B, T, h]. Returns (E, -dist): E = exp(-dist) [B, T, T],
// differentiable in q and k, and -dist = -(|q_i|^2 + |k_j|^2 - 2 q_i.k_j)
// without gradient (QSAT ranks keys by it).
std::pair<torch::Tensor, torch::Tensor> gaussian_score(const torch::Tensor& q, const torch::Tensor& k);

// The same score with LibTorch ops and their autograd: the independent check.
torch::Tensor gaussian_score_reference(const torch::Tensor& q, const torch::Tensor& k);

}  // namespace qisa::train
