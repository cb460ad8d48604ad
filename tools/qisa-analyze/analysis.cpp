#include "analysis.h"

#include <algorithm>
#include <cmath>

namespace qisa::analysis {

double frobenius_norm(const float* a, int64_t rows, int64_t cols) {
  double s = 0.0;
  for (int64_t i = 0; i < rows * cols; ++i) s += static_cast<double>(a[i]) * a[i];
  return std::sqrt(s);
}

double spectral_norm(const float* a, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return 0.0;
  // G = A^T A [cols, cols] or A A^T [rows, rows]: same nonzero eigenvalues.
  const bool by_cols = cols <= rows;
  const int64_t m = by_cols ? cols : rows, k = by_cols ? rows : cols;
  auto at = [&](int64_t i, int64_t j) {  // element (i, j) of A^T (by_cols) or A, [m, k]
    return static_cast<double>(by_cols ? a[j * cols + i] : a[i * cols + j]);
  };
  std::vector<double> g(static_cast<size_t>(m * m), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = i; j < m; ++j) {
      double s = 0.0;
      for (int64_t t = 0; t < k; ++t) s += at(i, t) * at(j, t);
      g[i * m + j] = g[j * m + i] = s;
    }
  // Power iteration on the symmetric positive semi-definite G; the start
  // vector has an irrational mix of every coordinate, so it is not
  // orthogonal to the top eigenvector by construction.
  std::vector<double> x(static_cast<size_t>(m)), y(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) x[i] = 1.0 + 0.5 * std::sin(1.0 + 0.618033988749895 * static_cast<double>(i));
  double lambda = 0.0;
  for (int iter = 0; iter < 20000; ++iter) {
    double norm = 0.0;
    for (int64_t i = 0; i < m; ++i) norm += x[i] * x[i];
    norm = std::sqrt(norm);
    if (norm == 0.0) return 0.0;
    for (auto& v : x) v /= norm;
    double next = 0.0;  // Rayleigh quotient x^T G x
    for (int64_t i = 0; i < m; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < m; ++j) s += g[i * m + j] * x[j];
      y[i] = s;
      next += x[i] * s;
    }
    x.swap(y);
    if (iter > 0 && std::abs(next - lambda) <= 1e-13 * std::max(next, 1e-300)) {
      lambda = next;
      break;
    }
    lambda = next;
  }
  return std::sqrt(std::max(lambda, 0.0));
}

std::vector<float> scores(const float* q, const float* k, int64_t n, int64_t h, int64_t stride) {
  std::vector<float> s(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0.0;
      for (int64_t t = 0; t < h; ++t) dot += static_cast<double>(q[i * stride + t]) * k[j * stride + t];
      s[i * n + j] = static_cast<float>(dot);
    }
  return s;
}

PowerLaw fit_power_law(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = std::min(x.size(), y.size());
  PowerLaw f;
  if (n < 2) return f;
  double mx = 0.0, my = 0.0;
  for (size_t i = 0; i < n; ++i) {
    mx += std::log(x[i]);
    my += std::log(y[i]);
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxx = 0.0, sxy = 0.0, syy = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = std::log(x[i]) - mx, dy = std::log(y[i]) - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx == 0.0) return f;
  f.slope = sxy / sxx;
  f.coefficient = std::exp(my - f.slope * mx);
  f.r2 = syy == 0.0 ? 1.0 : (sxy * sxy) / (sxx * syy);
  return f;
}

Spread spread(const std::vector<double>& v) {
  Spread s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() < 2) return s;
  double ss = 0.0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.stddev = std::sqrt(ss / static_cast<double>(v.size() - 1));
  return s;
}

}  // namespace qisa::analysis
