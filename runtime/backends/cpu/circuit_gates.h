// phi = U psi for a real psi, gate by gate: U = L3 P L1 of docs/math.md
// (L1, L3 Kronecker products of per-qubit 2x2 gates, P the CNOT-ring
// permutation of basis states) costs ~12 n D flops, where the dense stored
// U takes 2 D d multiply-adds and reads 8 D d bytes. The CPU engine uses it
// where that pays (quantum_layer.cpp says where). This class prepares the
// gates from the angles; the loops are the CircuitKernel of the kernel sets
// (circuit_loops.h). core/circuit.h's apply_circuit (double, std::complex)
// is the reference they are tested against.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_kernels.h"
#include "model.h"

namespace qisa {

class CircuitGates {
 public:
  // From the projection's angles; only for CircuitKind::RxRyCnotRy.
  explicit CircuitGates(const QuantumProjection& q);

  int64_t states() const { return D_; }
  // The prepared gates for a CircuitKernel (pointers into this object).
  CircuitPlan plan() const;
  // psi [d] real (zero past d, d <= D) -> re, im [D]; scratch [2 D]; with
  // the kernel set cpu_kernels() chose.
  void apply(const float* psi, int64_t d, float* re, float* im, float* scratch) const;

 private:
  uint32_t n_, low_;  // low_: the last qubits (lowest index bits), at most 3
  int64_t D_, K_;     // K = 2^low
  // Every qubit's gates: L1 as 8 floats per qubit (RY(b) RX(a)), L3 as
  // cos, sin of c / 2 (the last `low` also in the K x K matrices).
  std::vector<float> l1_, l3_;
  // The last `low` qubits' gates as one K x K matrix acting on each run of
  // K consecutive amplitudes (a pair loop over runs of 1, 2 or 4 would not
  // vectorize): L1's complex, L3's real, transposed ([column][row]).
  std::vector<float> l1_low_re_, l1_low_im_, l3_low_;
  std::vector<uint32_t> inv_perm_;  // (P x)[s] = x[inv_perm[s]]
  // The same by blocks of 8 (CircuitPlan); empty when it does not fit.
  std::vector<int32_t> perm_blocks_, perm_lanes_, perm_second_;
};

}  // namespace qisa
