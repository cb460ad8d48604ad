// A quantum-inspired projection as a differentiable LibTorch module:
// psi = encode(x), phi = U(angles) psi, out_k = <phi|P_k|phi>.
// U is built from its 3n angles in real arithmetic (real and imaginary
// planes) as L3 * CNOT-ring permutation * L1, with L1 and L3 Kronecker
// products of per-qubit 2x2 gates (docs/math.md).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "circuit.h"
#include "pauli_measure.h"

namespace qisa::train {

// pad(x) to D = 2^n and, for the normalized encoding, divide by
// max(|x|, 1e-12) (a zero vector stays zero). x: [..., d] -> [..., D].
// The normalization is one autograd node with a hand-written backward;
// encode_amplitudes_reference is the same with LibTorch ops (its check).
torch::Tensor encode_amplitudes(const torch::Tensor& x, int64_t n_qubits, bool normalized);
torch::Tensor encode_amplitudes_reference(const torch::Tensor& x, int64_t n_qubits, bool normalized);

class QuantumProjectionImpl : public torch::nn::Module {
 public:
  QuantumProjectionImpl(int64_t n_qubits, const std::vector<PauliString>& paulis);

  // (Re U, Im U), each [D, D].
  std::pair<torch::Tensor, torch::Tensor> unitary() const;
  // psi [N, D] real -> [N, h] expectations.
  // Uses the precomputed U when precompute() was called, else builds U
  // from the angles (differentiable; what training needs).
  torch::Tensor forward(const torch::Tensor& psi) const;
  // Inference: build U once from the current angles and reuse it (the
  // research code's "precomputation"); forget() goes back to building it.
  void precompute();
  void forget();
  bool precomputed() const { return u_re_.defined(); }
  // The same from an already-built U: phi = U psi, then for each Pauli
  // string <phi|P_k|phi> = Re(i^ny sum_j (-1)^popcount(j & z_k)
  // conj(phi[j ^ x_k]) phi[j]).
  //  - measure: the fused kernels of pauli_measure.h (one autograd node,
  //    hand-written backward; no [N, D]-sized temporaries per X mask);
  //  - measure_pauli: the formula for every string with LibTorch ops
  //    ([N, h, D] temporaries): the independent check of measure.
  torch::Tensor measure(const torch::Tensor& psi, const torch::Tensor& u_re, const torch::Tensor& u_im) const;
  torch::Tensor measure_pauli(const torch::Tensor& psi, const torch::Tensor& u_re, const torch::Tensor& u_im) const;

  int64_t n_qubits() const { return n_; }
  std::vector<PauliString> paulis() const;
  torch::Tensor angles;  // [3n]: a_0.., b_0.., c_0..

 private:
  int64_t n_;
  torch::Tensor x_mask_, z_mask_;  // [h] int64: the Pauli strings
  torch::Tensor gather_;           // [h * D] int64: j ^ x_k
  torch::Tensor coef_a_, coef_b_;  // [h, D]: phase * sign, see measure_pauli()
  PauliMeasurePlan plan_;
  torch::Tensor inv_perm_;     // [D] int64: inverse CNOT-ring permutation
  torch::Tensor u_re_, u_im_;  // precomputed U, or undefined
};
TORCH_MODULE(QuantumProjection);

}  // namespace qisa::train
