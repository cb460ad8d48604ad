// The circuit simulator against dense linear algebra built independently
// from Kronecker products of 2x2 matrices.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "circuit.h"

namespace qisa {
namespace {

using Mat = std::vector<cplx>;  // row-major square

Mat identity(size_t d) {
  Mat m(d * d, 0.0);
  for (size_t i = 0; i < d; ++i) m[i * d + i] = 1.0;
  return m;
}

Mat kron(const Mat& a, size_t da, const Mat& b, size_t db) {
  Mat out(da * db * da * db);
  for (size_t i = 0; i < da; ++i)
    for (size_t j = 0; j < da; ++j)
      for (size_t k = 0; k < db; ++k)
        for (size_t l = 0; l < db; ++l) out[(i * db + k) * (da * db) + j * db + l] = a[i * da + j] * b[k * db + l];
  return out;
}

Mat matmul(const Mat& a, const Mat& b, size_t d) {
  Mat out(d * d, 0.0);
  for (size_t i = 0; i < d; ++i)
    for (size_t k = 0; k < d; ++k)
      for (size_t j = 0; j < d; ++j) out[i * d + j] += a[i * d + k] * b[k * d + j];
  return out;
}

// op on qubit q of n (qubit 0 = leftmost Kronecker factor), identity elsewhere.
Mat on_qubit(const Mat& op, uint32_t q, uint32_t n) {
  Mat m{1.0};
  size_t d = 1;
  for (uint32_t j = 0; j < n; ++j) {
    m = kron(m, d, j == q ? op : identity(2), 2);
    d *= 2;
  }
  return m;
}

const cplx I1{0, 1};
Mat RX(double t) {
  return {std::cos(t / 2), -I1 * std::sin(t / 2), -I1 * std::sin(t / 2), std::cos(t / 2)};
}
Mat RY(double t) {
  return {std::cos(t / 2), -std::sin(t / 2), std::sin(t / 2), std::cos(t / 2)};
}
const Mat kX{0, 1, 1, 0}, kY{0, -I1, I1, 0}, kZ{1, 0, 0, -1}, kP0{1, 0, 0, 0}, kP1{0, 0, 0, 1};

// CNOT = |0><0|_c (x) I + |1><1|_c (x) X_t.
Mat CNOT(uint32_t c, uint32_t t, uint32_t n) {
  const size_t d = size_t{1} << n;
  Mat a = on_qubit(kP0, c, n);
  Mat b = matmul(on_qubit(kP1, c, n), on_qubit(kX, t, n), d);
  for (size_t i = 0; i < d * d; ++i) a[i] += b[i];
  return a;
}

Mat dense_circuit(uint32_t n, const std::vector<float>& ang) {
  const size_t d = size_t{1} << n;
  Mat u = identity(d);
  for (uint32_t j = 0; j < n; ++j) {
    u = matmul(on_qubit(RX(ang[j]), j, n), u, d);
    u = matmul(on_qubit(RY(ang[n + j]), j, n), u, d);
  }
  for (uint32_t j = 0; j < n; ++j) u = matmul(CNOT(j, (j + 1) % n, n), u, d);
  for (uint32_t j = 0; j < n; ++j) u = matmul(on_qubit(RY(ang[2 * n + j]), j, n), u, d);
  return u;
}

std::vector<float> random_angles(uint32_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-3.2f, 3.2f);
  std::vector<float> a(3 * n);
  for (auto& x : a) x = dist(rng);
  return a;
}

// The CNOT ring as a gather table: the product of the dense CNOT matrices
// maps basis state inv[s] to s.
TEST(Circuit, CnotRingPermutationIsTheProductOfTheCnots) {
  for (uint32_t n = 2; n <= 6; ++n) {
    const size_t d = size_t{1} << n;
    Mat u = identity(d);
    for (uint32_t j = 0; j < n; ++j) u = matmul(CNOT(j, (j + 1) % n, n), u, d);
    const std::vector<uint32_t> inv = cnot_ring_inverse_permutation(n);
    ASSERT_EQ(inv.size(), d);
    for (size_t s = 0; s < d; ++s)
      for (size_t i = 0; i < d; ++i)
        EXPECT_EQ(u[s * d + i], cplx(i == inv[s] ? 1.0 : 0.0)) << n << " " << s << " " << i;
  }
}

TEST(Circuit, QubitsForWidth) {
  EXPECT_EQ(qubits_for_width(1), 2u);
  EXPECT_EQ(qubits_for_width(4), 2u);
  EXPECT_EQ(qubits_for_width(5), 3u);
  EXPECT_EQ(qubits_for_width(16), 4u);
  EXPECT_EQ(qubits_for_width(17), 5u);
  EXPECT_EQ(qubits_for_width(128), 7u);
  EXPECT_EQ(qubits_for_width(768), 10u);
}

TEST(Circuit, ZeroAnglesIsTheCnotRing) {
  // n = 2, all angles 0: U = CNOT(1->0) CNOT(0->1). |10> -> |11> -> |01>.
  const std::vector<float> zero(6, 0.0f);
  const Mat u = circuit_unitary(2, zero);
  const uint64_t expect_row_of_col[4] = {0, 3, 1, 2};  // U e_j = e_{expect[j]}
  for (uint64_t j = 0; j < 4; ++j)
    for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(u[i * 4 + j], cplx(i == expect_row_of_col[j] ? 1.0 : 0.0)) << i << j;
}

TEST(Circuit, SingleQubitRotationValues) {
  // n = 2, only a_0 = pi: RX(pi) on qubit 0 = -i X, then the CNOT ring.
  std::vector<float> a(6, 0.0f);
  a[0] = static_cast<float>(M_PI);
  std::vector<cplx> s(4, 0.0);
  s[0] = 1.0;  // |00> -> -i|10> -> CNOT(0->1): -i|11> -> CNOT(1->0): -i|01>
  apply_circuit(2, a, s);
  EXPECT_NEAR(std::abs(s[1] - cplx(0, -1)), 0.0, 1e-7);
  EXPECT_NEAR(std::abs(s[0]) + std::abs(s[2]) + std::abs(s[3]), 0.0, 1e-7);
}

class CircuitN : public ::testing::TestWithParam<uint32_t> {};

TEST_P(CircuitN, EqualsProductOfGateMatrices) {
  const uint32_t n = GetParam();
  const auto ang = random_angles(n, 7 + n);
  const Mat fast = circuit_unitary(n, ang);
  const Mat dense = dense_circuit(n, ang);
  double worst = 0.0;
  for (size_t i = 0; i < fast.size(); ++i) worst = std::max(worst, std::abs(fast[i] - dense[i]));
  EXPECT_LT(worst, 1e-12);
}

TEST_P(CircuitN, IsUnitary) {
  const uint32_t n = GetParam();
  const size_t d = size_t{1} << n;
  const Mat u = circuit_unitary(n, random_angles(n, 99 + n));
  double worst = 0.0;
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j < d; ++j) {
      cplx acc = 0.0;
      for (size_t k = 0; k < d; ++k) acc += std::conj(u[k * d + i]) * u[k * d + j];
      worst = std::max(worst, std::abs(acc - cplx(i == j ? 1.0 : 0.0)));
    }
  EXPECT_LT(worst, 1e-12);
}

TEST_P(CircuitN, PauliExpectationEqualsDenseForm) {
  const uint32_t n = GetParam();
  const size_t d = size_t{1} << n;
  std::mt19937 rng(n);
  std::normal_distribution<double> g;
  std::vector<cplx> phi(d);
  for (auto& x : phi) x = cplx(g(rng), g(rng));
  const Mat paulis[4] = {identity(2), kX, kY, kZ};
  const char letters[] = "IXYZ";
  for (int trial = 0; trial < 20; ++trial) {
    std::string s;
    Mat p{1.0};
    size_t dp = 1;
    for (uint32_t j = 0; j < n; ++j) {
      const int which = static_cast<int>(rng() % 4);
      s += letters[which];
      p = kron(p, dp, paulis[which], 2);
      dp *= 2;
    }
    PauliString ps;
    ASSERT_TRUE(pauli_from_string(s, &ps));
    EXPECT_EQ(pauli_to_string(n, ps), s);
    cplx dense = 0.0;
    for (size_t i = 0; i < d; ++i)
      for (size_t j = 0; j < d; ++j) dense += std::conj(phi[i]) * p[i * d + j] * phi[j];
    EXPECT_NEAR(dense.imag(), 0.0, 1e-9) << s;
    EXPECT_NEAR(pauli_expectation(ps, phi), dense.real(), 1e-9) << s;
    std::vector<cplx> out(d);
    apply_pauli(ps, phi, out);
    for (size_t i = 0; i < d; ++i) {
      cplx row = 0.0;
      for (size_t j = 0; j < d; ++j) row += p[i * d + j] * phi[j];
      EXPECT_NEAR(std::abs(out[i] - row), 0.0, 1e-9) << s;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Qubits, CircuitN, ::testing::Values(2u, 3u, 4u, 5u));

TEST(Circuit, PauliStringParsing) {
  PauliString p;
  EXPECT_FALSE(pauli_from_string("", &p));
  EXPECT_FALSE(pauli_from_string("XQ", &p));
  ASSERT_TRUE(pauli_from_string("ZIIY", &p));
  EXPECT_EQ(p.x_mask, 0x1u);  // Y on qubit 3 = bit 0
  EXPECT_EQ(p.z_mask, 0x9u);  // Z on qubit 0 = bit 3
}

}  // namespace
}  // namespace qisa
