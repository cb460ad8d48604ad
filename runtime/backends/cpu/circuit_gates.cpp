#include "circuit_gates.h"

#include <algorithm>

#include "circuit.h"

namespace qisa {

namespace {

struct Gates {
  cplx l1[2][2];    // RY(b) RX(a)
  double l3[2][2];  // RY(c), real
};

Gates qubit_gates(const QuantumProjection& q, uint32_t j) {
  const uint32_t n = q.n_qubits;
  const Gate2 x = rx(q.angles[j]), y = ry(q.angles[n + j]), y3 = ry(q.angles[2 * n + j]);
  const cplx a[2][2] = {{x.m00, x.m01}, {x.m10, x.m11}}, b[2][2] = {{y.m00, y.m01}, {y.m10, y.m11}};
  Gates g{};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) g.l1[r][c] = b[r][0] * a[0][c] + b[r][1] * a[1][c];
  g.l3[0][0] = y3.m00.real();
  g.l3[0][1] = y3.m01.real();
  g.l3[1][0] = y3.m10.real();
  g.l3[1][1] = y3.m11.real();
  return g;
}

}  // namespace

CircuitGates::CircuitGates(const QuantumProjection& q)
    : n_(q.n_qubits), low_(std::min<uint32_t>(q.n_qubits, 3)), D_(int64_t{1} << q.n_qubits), K_(int64_t{1} << low_) {
  const uint32_t n = n_;
  for (uint32_t j = 0; j < n; ++j) {
    const Gates g = qubit_gates(q, j);
    for (int r = 0; r < 2; ++r) {
      for (int c = 0; c < 2; ++c) {
        l1_.push_back(static_cast<float>(g.l1[r][c].real()));
        l1_.push_back(static_cast<float>(g.l1[r][c].imag()));
      }
    }
    l3_.push_back(static_cast<float>(g.l3[0][0]));
    l3_.push_back(static_cast<float>(g.l3[1][0]));
  }
  // The last `low` qubits' gates as K x K matrices: entry (r, c) is the
  // product over those qubits of their gate's (bit of r, bit of c) entry;
  // bit i of a run index belongs to qubit n-1-i.
  l1_low_re_.assign(static_cast<size_t>(K_ * K_), 0.0f);
  l1_low_im_ = l1_low_re_;
  l3_low_ = l1_low_re_;
  for (int64_t r = 0; r < K_; ++r) {
    for (int64_t c = 0; c < K_; ++c) {
      cplx m1 = 1.0;
      double m3 = 1.0;
      for (uint32_t i = 0; i < low_; ++i) {
        const Gates g = qubit_gates(q, n - 1 - i);
        const auto br = static_cast<size_t>((r >> i) & 1), bc = static_cast<size_t>((c >> i) & 1);
        m1 *= g.l1[br][bc];
        m3 *= g.l3[br][bc];
      }
      const auto at = static_cast<size_t>(c * K_ + r);  // transposed
      l1_low_re_[at] = static_cast<float>(m1.real());
      l1_low_im_[at] = static_cast<float>(m1.imag());
      l3_low_[at] = static_cast<float>(m3);
    }
  }
  inv_perm_ = cnot_ring_inverse_permutation(n);
  // Each block of 8 outputs draws from at most two source blocks (for the
  // CNOT ring, n = 4..10, always exactly two; the last CNOT flips the top
  // bit by the lowest).
  for (int64_t s0 = 0; D_ >= 8 && s0 < D_; s0 += 8) {
    const auto first = static_cast<int32_t>(inv_perm_[static_cast<size_t>(s0)] & ~7u);
    int32_t second = first;
    for (int64_t l = 0; l < 8; ++l) {
      const auto block = static_cast<int32_t>(inv_perm_[static_cast<size_t>(s0 + l)] & ~7u);
      if (block == first) continue;
      if (second != first && block != second) {
        perm_blocks_.clear();
        perm_lanes_.clear();
        perm_second_.clear();
        return;
      }
      second = block;
    }
    perm_blocks_.push_back(first);
    perm_blocks_.push_back(second);
    for (int64_t l = 0; l < 8; ++l) {
      const uint32_t src = inv_perm_[static_cast<size_t>(s0 + l)];
      perm_lanes_.push_back(static_cast<int32_t>(src & 7u));
      perm_second_.push_back(static_cast<int32_t>(src & ~7u) == first ? 0 : -1);
    }
  }
}

CircuitPlan CircuitGates::plan() const {
  CircuitPlan p;
  p.n = n_;
  p.low = low_;
  p.D = D_;
  p.K = K_;
  p.l1 = l1_.data();
  p.l3 = l3_.data();
  p.l1_low_re = l1_low_re_.data();
  p.l1_low_im = l1_low_im_.data();
  p.l3_low = l3_low_.data();
  p.inv_perm = inv_perm_.data();
  if (!perm_blocks_.empty()) {
    p.perm_blocks = perm_blocks_.data();
    p.perm_lanes = perm_lanes_.data();
    p.perm_second = perm_second_.data();
  }
  return p;
}

void CircuitGates::apply(const float* psi, int64_t d, float* re, float* im, float* scratch) const {
  cpu_kernels().circuit(plan(), psi, d, re, im, scratch);
}

}  // namespace qisa
