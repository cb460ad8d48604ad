// U(angles) = L3 * P * L1 of a quantum projection (docs/math.md) as one
// autograd node: the Kronecker factors are formed directly, and the
// gradient of the 3n angles is contracted by hand from dL/dU. Built from
// LibTorch ops (stack, kron, index_select), the same U and gradient take
// ~100 tiny operations per projection and training step, about twice this
// node's time at n = 7; angle_unitary_reference() keeps that form as the
// independent check.
#pragma once

#include <torch/torch.h>

#include <utility>

namespace qisa::train {

// angles [3n] = (a, b, c): L1 = G(a_0, b_0) (x) ... (x) G(a_n-1, b_n-1) with
// G(a, b) = RY(b) RX(a), L3 = RY(c_0) (x) ... (x) RY(c_n-1) (qubit 0 the
// most significant bit of a basis index), and row r of P * L1 is row
// inv_perm[r] of L1. Returns (Re U, Im U), each [D, D], D = 2^n, in the
// angles' dtype; differentiable in the angles.
std::pair<torch::Tensor, torch::Tensor> angle_unitary(const torch::Tensor& angles, const torch::Tensor& inv_perm);

// The same with LibTorch's stack / kron / index_select / matmul and their
// autograd.
std::pair<torch::Tensor, torch::Tensor> angle_unitary_reference(const torch::Tensor& angles,
                                                                const torch::Tensor& inv_perm);

}  // namespace qisa::train
