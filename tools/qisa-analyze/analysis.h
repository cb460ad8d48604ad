// The numbers qisa-analyze computes from a window's matrices: Frobenius and
// spectral norms, and power-law fits of a norm against the window length N.
// Plain double-precision loops; tested against an independent eigen-solver
// (tests/test_analysis.cpp).
#pragma once

#include <cstdint>
#include <vector>

namespace qisa::analysis {

// ||A||_F of a row-major [rows, cols] matrix.
double frobenius_norm(const float* a, int64_t rows, int64_t cols);

// ||A||_2, the largest singular value: power iteration on the smaller Gram
// matrix (A^T A or A A^T, formed in double) until the estimate changes by
// less than 1e-13 relative, from a start vector with a component along
// every direction.
double spectral_norm(const float* a, int64_t rows, int64_t cols);

// Q K^T, [n, n], of two [n, h] matrices whose rows are `stride` floats
// apart (one head's columns of the queries and keys).
std::vector<float> scores(const float* q, const float* k, int64_t n, int64_t h, int64_t stride);

// y = c x^slope fitted by least squares on (log x, log y); r2 of that fit.
struct PowerLaw {
  double slope = 0.0, coefficient = 0.0, r2 = 0.0;
};
PowerLaw fit_power_law(const std::vector<double>& x, const std::vector<double>& y);

// Mean and sample standard deviation.
struct Spread {
  double mean = 0.0, stddev = 0.0;
};
Spread spread(const std::vector<double>& v);

}  // namespace qisa::analysis
