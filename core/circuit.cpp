#include "circuit.h"

#include <bit>
#include <cmath>

namespace qisa {

uint32_t qubits_for_width(uint64_t d) {
  uint32_t n = 0;
  while ((uint64_t{1} << n) < d) ++n;
  return n < 2 ? 2 : n;
}

Gate2 rx(double t) {
  const double c = std::cos(t / 2), s = std::sin(t / 2);
  return {{c, 0}, {0, -s}, {0, -s}, {c, 0}};
}

Gate2 ry(double t) {
  const double c = std::cos(t / 2), s = std::sin(t / 2);
  return {{c, 0}, {-s, 0}, {s, 0}, {c, 0}};
}

std::vector<uint32_t> cnot_ring_inverse_permutation(uint32_t n) {
  const uint64_t D = uint64_t{1} << n;
  std::vector<uint32_t> inv(D);
  for (uint64_t i = 0; i < D; ++i) {
    uint64_t s = i;  // where the gates take basis state i
    for (uint32_t j = 0; j < n; ++j) {
      const uint64_t cb = uint64_t{1} << (n - 1 - j), tb = uint64_t{1} << (n - 1 - (j + 1) % n);
      if (s & cb) s ^= tb;
    }
    inv[s] = static_cast<uint32_t>(i);
  }
  return inv;
}

namespace {

void apply_1q(const Gate2& g, uint32_t n, uint32_t qubit, std::span<cplx> s) {
  const uint64_t bit = uint64_t{1} << (n - 1 - qubit);
  for (uint64_t i = 0; i < s.size(); ++i) {
    if (i & bit) continue;
    const cplx a = s[i], b = s[i | bit];
    s[i] = g.m00 * a + g.m01 * b;
    s[i | bit] = g.m10 * a + g.m11 * b;
  }
}

void apply_cnot(uint32_t n, uint32_t control, uint32_t target, std::span<cplx> s) {
  const uint64_t cb = uint64_t{1} << (n - 1 - control);
  const uint64_t tb = uint64_t{1} << (n - 1 - target);
  for (uint64_t i = 0; i < s.size(); ++i) {
    if ((i & cb) && !(i & tb)) std::swap(s[i], s[i | tb]);
  }
}

}  // namespace

void apply_circuit(uint32_t n, std::span<const float> angles, std::span<cplx> state) {
  for (uint32_t j = 0; j < n; ++j) {
    apply_1q(rx(angles[j]), n, j, state);
    apply_1q(ry(angles[n + j]), n, j, state);
  }
  for (uint32_t j = 0; j < n; ++j) apply_cnot(n, j, (j + 1) % n, state);
  for (uint32_t j = 0; j < n; ++j) apply_1q(ry(angles[2 * n + j]), n, j, state);
}

void circuit_column(uint32_t n, std::span<const float> angles, uint64_t j, std::span<cplx> column) {
  for (auto& c : column) c = 0.0;
  column[j] = 1.0;
  apply_circuit(n, angles, column);
}

std::vector<cplx> circuit_unitary(uint32_t n, std::span<const float> angles) {
  const uint64_t d = uint64_t{1} << n;
  std::vector<cplx> u(d * d), col(d);
  for (uint64_t j = 0; j < d; ++j) {
    circuit_column(n, angles, j, col);
    for (uint64_t i = 0; i < d; ++i) u[i * d + j] = col[i];
  }
  return u;
}

// P|j> = i^ny (-1)^popcount(j & z) |j ^ x>, ny = popcount(x & z).
static cplx pauli_phase(PauliString p) {
  static constexpr cplx kPow[4] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}};
  return kPow[std::popcount(p.x_mask & p.z_mask) & 3];
}

void apply_pauli(PauliString p, std::span<const cplx> in, std::span<cplx> out) {
  const cplx phase = pauli_phase(p);
  for (uint64_t j = 0; j < in.size(); ++j) {
    const double sign = (std::popcount(j & p.z_mask) & 1) ? -1.0 : 1.0;
    out[j ^ p.x_mask] = phase * sign * in[j];
  }
}

double pauli_expectation(PauliString p, std::span<const cplx> phi) {
  const cplx phase = pauli_phase(p);
  cplx acc = 0.0;
  for (uint64_t j = 0; j < phi.size(); ++j) {
    const double sign = (std::popcount(j & p.z_mask) & 1) ? -1.0 : 1.0;
    acc += std::conj(phi[j ^ p.x_mask]) * sign * phi[j];
  }
  return (phase * acc).real();
}

void dense_observables(uint32_t n, const std::vector<cplx>& u, const std::vector<PauliString>& paulis,
                       std::vector<float>& re, std::vector<float>& im) {
  const uint64_t D = uint64_t{1} << n;
  re.assign(paulis.size() * D * D, 0.0f);
  im.assign(paulis.size() * D * D, 0.0f);
  std::vector<cplx> col(D), pcol(D);
  for (size_t k = 0; k < paulis.size(); ++k) {
    for (uint64_t c = 0; c < D; ++c) {
      for (uint64_t r = 0; r < D; ++r) col[r] = u[r * D + c];
      apply_pauli(paulis[k], col, pcol);
      for (uint64_t r = 0; r < D; ++r) {  // (U^dag P U)[r][c] = sum_i conj(U[i][r]) (P U e_c)[i]
        cplx acc = 0.0;
        for (uint64_t i = 0; i < D; ++i) acc += std::conj(u[i * D + r]) * pcol[i];
        re[(k * D + r) * D + c] = static_cast<float>(acc.real());
        im[(k * D + r) * D + c] = static_cast<float>(acc.imag());
      }
    }
  }
}

std::string pauli_to_string(uint32_t n, PauliString p) {
  std::string s(n, 'I');
  for (uint32_t j = 0; j < n; ++j) {
    const uint64_t bit = uint64_t{1} << (n - 1 - j);
    const bool x = p.x_mask & bit, z = p.z_mask & bit;
    s[j] = x ? (z ? 'Y' : 'X') : (z ? 'Z' : 'I');
  }
  return s;
}

bool pauli_from_string(const std::string& s, PauliString* out) {
  if (s.empty() || s.size() > 64) return false;
  PauliString p;
  const auto n = static_cast<uint32_t>(s.size());
  for (uint32_t j = 0; j < n; ++j) {
    const uint64_t bit = uint64_t{1} << (n - 1 - j);
    switch (s[j]) {
      case 'I': break;
      case 'X': p.x_mask |= bit; break;
      case 'Y':
        p.x_mask |= bit;
        p.z_mask |= bit;
        break;
      case 'Z': p.z_mask |= bit; break;
      default: return false;
    }
  }
  *out = p;
  return true;
}

}  // namespace qisa
