// The trainer's Pauli measurement out_k = <phi|P_k|phi> of a batch of
// states and its gradient, fused: no temporaries the size of the batch
// (LibTorch's gathers and products of [D, N] matrices per X mask were most
// of a QISA training step's overhead). phi is given transposed, F = Re phi
// and G = Im phi as [D, N] row-major, so a basis state's amplitudes over
// the batch are one contiguous row. Float and double (the gradient tests
// run in double).
//
// With p = j ^ x, the products conj(phi_p) phi_j have a real part symmetric
// in (j, p) and an imaginary part antisymmetric; a string's sign s_z(j) =
// (-1)^popcount(j & z) satisfies s_z(p) = s_z(j) (-1)^popcount(x & z), and
// its phase i^ny (ny = popcount(x & z)) is real exactly when that parity is
// even. So each string with x != 0 is a signed sum over the D/2 pairs of
// either 2 Re or 2 Im of the product, never both; strings with x = 0 are
// sum_j s_z(j) |phi_j|^2, all of them from one Walsh-Hadamard transform.
#pragma once

#include <cstdint>
#include <vector>

#include "circuit.h"

namespace qisa::train {

class PauliMeasurePlan {
 public:
  PauliMeasurePlan(int64_t n_qubits, const std::vector<PauliString>& paulis);

  // out [h, N] (string order) = the expectations.
  template <class T>
  void forward(const T* F, const T* G, int64_t N, T* out) const;
  // dF, dG [D, N] (overwritten) = the gradient of sum_k <dout_k, out_k>,
  // dout [h, N].
  template <class T>
  void backward(const T* F, const T* G, const T* dout, int64_t N, T* dF, T* dG) const;

  int64_t states() const { return D_; }
  int64_t strings() const { return h_; }

 private:
  struct Term {
    int64_t k;   // output row
    uint64_t z;  // Z mask: the sign s_z(j)
    float coef;  // x != 0: 2 * (Re or Im of i^ny); x = 0: 1
    bool imag;   // x != 0: the term reads Im conj(phi_p) phi_j
  };
  struct Group {
    uint64_t x;
    std::vector<Term> terms;
    int n_real, n_imag;  // how many of its terms read Re / Im of the products
  };
  // One block of m columns (rows ld apart); scratch of kBlockCols-wide rows.
  template <class T>
  void forward_block(const T* F, const T* G, int64_t m, int64_t ld, T* out, T* q, T* prod) const;
  template <class T>
  void backward_block(const T* F, const T* G, const T* dout, int64_t m, int64_t ld, T* dF, T* dG, T* dq, T* w) const;
  int64_t D_, h_;
  std::vector<Term> diagonal_;  // x = 0
  std::vector<Group> groups_;   // x != 0, one per distinct mask
};

}  // namespace qisa::train
