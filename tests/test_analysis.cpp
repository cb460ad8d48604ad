// qisa-analyze's numbers (tools/qisa-analyze/analysis.h) against matrices
// whose norms are known and against an independent eigen-solver (Jacobi
// rotations on A^T A, written here).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "analysis.h"

namespace qisa::analysis {
namespace {

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(rows * cols));
  for (auto& x : a) x = g(rng);
  return a;
}

// The largest eigenvalue of a symmetric matrix by cyclic Jacobi rotations.
double jacobi_largest_eigenvalue(std::vector<double> s, int64_t n) {
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += s[p * n + q] * s[p * n + q];
    if (off < 1e-26) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = s[p * n + q];
        if (std::abs(apq) < 1e-300) continue;
        const double theta = (s[q * n + q] - s[p * n + p]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), sn = t * c;
        for (int64_t k = 0; k < n; ++k) {  // columns p, q
          const double akp = s[k * n + p], akq = s[k * n + q];
          s[k * n + p] = c * akp - sn * akq;
          s[k * n + q] = sn * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p, q
          const double apk = s[p * n + k], aqk = s[q * n + k];
          s[p * n + k] = c * apk - sn * aqk;
          s[q * n + k] = sn * apk + c * aqk;
        }
      }
    }
  }
  double best = s[0];
  for (int64_t i = 1; i < n; ++i) best = std::max(best, s[i * n + i]);
  return best;
}

double spectral_by_jacobi(const std::vector<float>& a, int64_t rows, int64_t cols) {
  std::vector<double> g(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t r = 0; r < rows; ++r) g[i * cols + j] += double(a[r * cols + i]) * a[r * cols + j];
  return std::sqrt(jacobi_largest_eigenvalue(g, cols));
}

TEST(Analysis, OrthonormalRowsHaveFrobeniusSqrtNAndSpectralOne) {
  const int64_t d = 16;
  for (int64_t n : {1, 4, 9, 16}) {
    std::vector<float> s(static_cast<size_t>(n * d), 0.0f);
    for (int64_t i = 0; i < n; ++i) s[i * d + (i * 7) % d] = 1.0f;  // distinct unit vectors
    EXPECT_NEAR(frobenius_norm(s.data(), n, d), std::sqrt(double(n)), 1e-12) << n;
    EXPECT_NEAR(spectral_norm(s.data(), n, d), 1.0, 1e-9) << n;
  }
}

TEST(Analysis, EqualRowsHaveSpectralEqualToFrobenius) {
  const int64_t d = 12;
  const auto v = random_matrix(1, d, 3);
  double nv = 0.0;
  for (float x : v) nv += double(x) * x;
  for (int64_t n : {2, 5, 32}) {
    std::vector<float> s;
    for (int64_t i = 0; i < n; ++i) s.insert(s.end(), v.begin(), v.end());
    const double f = frobenius_norm(s.data(), n, d);
    EXPECT_NEAR(f, std::sqrt(double(n) * nv), 1e-6 * f);
    EXPECT_NEAR(spectral_norm(s.data(), n, d), f, 1e-6 * f) << n;
  }
}

TEST(Analysis, SpectralNormMatchesAJacobiEigenSolver) {
  for (auto [rows, cols] : {std::pair{5, 3}, std::pair{3, 5}, std::pair{16, 16}, std::pair{40, 12}, std::pair{7, 30}}) {
    const auto a = random_matrix(rows, cols, static_cast<uint32_t>(rows * 100 + cols));
    const double want = spectral_by_jacobi(a, rows, cols);
    EXPECT_NEAR(spectral_norm(a.data(), rows, cols), want, 1e-7 * want) << rows << "x" << cols;
    EXPECT_LE(spectral_norm(a.data(), rows, cols), frobenius_norm(a.data(), rows, cols) * (1 + 1e-12));
  }
  // Two equal top singular values (no spectral gap) still give the norm.
  std::vector<float> twin = {3, 0, 0, 0, 3, 0, 0, 0, 1};
  EXPECT_NEAR(spectral_norm(twin.data(), 3, 3), 3.0, 1e-6);
  std::vector<float> zero(6, 0.0f);
  EXPECT_EQ(spectral_norm(zero.data(), 2, 3), 0.0);
}

TEST(Analysis, ScoresAreQTimesKTransposed) {
  const int64_t n = 5, h = 3, stride = 7;  // one head's columns of wider rows
  const auto q = random_matrix(n, stride, 1), k = random_matrix(n, stride, 2);
  const auto s = scores(q.data() + 2, k.data() + 2, n, h, stride);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double want = 0.0;
      for (int64_t t = 0; t < h; ++t) want += double(q[i * stride + 2 + t]) * k[j * stride + 2 + t];
      EXPECT_NEAR(s[i * n + j], want, 1e-5);
    }
}

TEST(Analysis, PowerLawFitRecoversExactLaws) {
  const std::vector<double> x = {2, 4, 8, 16, 32, 64};
  for (double a : {0.5, 1.0, -0.25, 0.0}) {
    std::vector<double> y;
    for (double v : x) y.push_back(3.5 * std::pow(v, a));
    const PowerLaw f = fit_power_law(x, y);
    EXPECT_NEAR(f.slope, a, 1e-12);
    EXPECT_NEAR(f.coefficient, 3.5, 1e-10);
    EXPECT_NEAR(f.r2, 1.0, 1e-12);
  }
  // A noisy law fits below r2 = 1.
  const PowerLaw noisy = fit_power_law(x, {1.0, 2.5, 1.8, 4.0, 3.9, 8.5});
  EXPECT_GT(noisy.slope, 0.3);
  EXPECT_LT(noisy.r2, 0.99);
  const Spread s = spread({1.0, 2.0, 3.0, 4.0});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.stddev, std::sqrt(5.0 / 3.0), 1e-12);
}

}  // namespace
}  // namespace qisa::analysis
