#include "circuit_gates.h"

#include <algorithm>
#include <cmath>
#include <complex>

namespace qisa {

namespace {

using c64 = std::complex<double>;

struct Gates {
  c64 l1[2][2];     // RY(b) RX(a)
  double l3[2][2];  // RY(c)
};

Gates qubit_gates(const QuantumProjection& q, uint32_t j) {
  const uint32_t n = q.n_qubits;
  const double ca = std::cos(q.angles[j] / 2.0), sa = std::sin(q.angles[j] / 2.0);
  const double cb = std::cos(q.angles[n + j] / 2.0), sb = std::sin(q.angles[n + j] / 2.0);
  const double cc = std::cos(q.angles[2 * n + j] / 2.0), sc = std::sin(q.angles[2 * n + j] / 2.0);
  const c64 rx[2][2] = {{{ca, 0}, {0, -sa}}, {{0, -sa}, {ca, 0}}};
  const c64 ry[2][2] = {{{cb, 0}, {-sb, 0}}, {{sb, 0}, {cb, 0}}};
  Gates g{};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) g.l1[r][c] = ry[r][0] * rx[0][c] + ry[r][1] * rx[1][c];
  g.l3[0][0] = cc;
  g.l3[0][1] = -sc;
  g.l3[1][0] = sc;
  g.l3[1][1] = cc;
  return g;
}

}  // namespace

CircuitGates::CircuitGates(const QuantumProjection& q)
    : n_(q.n_qubits), low_(std::min<uint32_t>(q.n_qubits, 3)), D_(int64_t{1} << q.n_qubits), K_(int64_t{1} << low_) {
  const uint32_t n = n_;
  for (uint32_t j = 0; j + low_ < n; ++j) {
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
      c64 m1 = 1.0;
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
  // CNOT(j -> j+1 mod n) for j = 0..n-1 in order maps basis state i to s.
  inv_perm_.resize(static_cast<size_t>(D_));
  for (int64_t i = 0; i < D_; ++i) {
    uint64_t s = static_cast<uint64_t>(i);
    for (uint32_t j = 0; j < n; ++j) {
      const uint64_t cbit = uint64_t{1} << (n - 1 - j), tbit = uint64_t{1} << (n - 1 - (j + 1) % n);
      if (s & cbit) s ^= tbit;
    }
    inv_perm_[s] = static_cast<uint32_t>(i);
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
  return p;
}

void CircuitGates::apply(const float* psi, int64_t d, float* re, float* im, float* scratch) const {
  cpu_kernels().circuit(plan(), psi, d, re, im, scratch);
}

}  // namespace qisa
