#include "circuit_gates.h"

#include <algorithm>
#include <cmath>
#include <complex>

namespace qisa {

namespace {

using c64 = std::complex<double>;

// One complex gate on the pairs (a[t], b[t]), t < len, in split real and
// imaginary arrays: a function of its own so the compiler sees the four
// rows as distinct and vectorizes the loop (len >= 4 for whole vectors).
void complex_pairs(float* __restrict ar, float* __restrict ai, float* __restrict br, float* __restrict bi, int64_t len,
                   float r00, float i00, float r01, float i01, float r10, float i10, float r11, float i11) {
  for (int64_t t = 0; t < len; ++t) {
    const float xr = ar[t], xi = ai[t], yr = br[t], yi = bi[t];
    ar[t] = r00 * xr - i00 * xi + r01 * yr - i01 * yi;
    ai[t] = r00 * xi + i00 * xr + r01 * yi + i01 * yr;
    br[t] = r10 * xr - i10 * xi + r11 * yr - i11 * yi;
    bi[t] = r10 * xi + i10 * xr + r11 * yi + i11 * yr;
  }
}

// A K x K complex matrix (m_re, m_im transposed: [column][row]) on each run
// of K amplitudes, K <= 8.
void complex_runs(float* __restrict xr, float* __restrict xi, int64_t D, int64_t K, const float* __restrict m_re,
                  const float* __restrict m_im) {
  for (int64_t i0 = 0; i0 < D; i0 += K) {
    float yr[8] = {}, yi[8] = {};
    for (int64_t c = 0; c < K; ++c) {
      const float ar = xr[i0 + c], ai = xi[i0 + c];
      const float* mr = m_re + c * K;
      const float* mi = m_im + c * K;
      for (int64_t r = 0; r < 8; ++r) {
        yr[r] += mr[r & (K - 1)] * ar - mi[r & (K - 1)] * ai;
        yi[r] += mr[r & (K - 1)] * ai + mi[r & (K - 1)] * ar;
      }
    }
    for (int64_t r = 0; r < K; ++r) {
      xr[i0 + r] = yr[r];
      xi[i0 + r] = yi[r];
    }
  }
}

// A K x K real matrix (transposed) on each run of K values of one plane.
void real_runs(float* __restrict x, int64_t D, int64_t K, const float* __restrict m) {
  for (int64_t i0 = 0; i0 < D; i0 += K) {
    float y[8] = {};
    for (int64_t c = 0; c < K; ++c) {
      const float a = x[i0 + c];
      const float* mc = m + c * K;
      for (int64_t r = 0; r < 8; ++r) y[r] += mc[r & (K - 1)] * a;
    }
    for (int64_t r = 0; r < K; ++r) x[i0 + r] = y[r];
  }
}

// RY(c) on the pairs (a[t], b[t]) of one real plane.
void rotate_pairs(float* __restrict a, float* __restrict b, int64_t len, float c, float s) {
  for (int64_t t = 0; t < len; ++t) {
    const float x = a[t], y = b[t];
    a[t] = c * x - s * y;
    b[t] = s * x + c * y;
  }
}

}  // namespace

CircuitGates::CircuitGates(const QuantumProjection& q) : n_(q.n_qubits), D_(int64_t{1} << q.n_qubits) {
  const uint32_t n = n_;
  for (uint32_t j = 0; j < n; ++j) {
    const double ca = std::cos(q.angles[j] / 2.0), sa = std::sin(q.angles[j] / 2.0);
    const double cb = std::cos(q.angles[n + j] / 2.0), sb = std::sin(q.angles[n + j] / 2.0);
    const c64 rx[2][2] = {{{ca, 0}, {0, -sa}}, {{0, -sa}, {ca, 0}}};
    const c64 ry[2][2] = {{{cb, 0}, {-sb, 0}}, {{sb, 0}, {cb, 0}}};
    c64 g[2][2];
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) g[r][c] = ry[r][0] * rx[0][c] + ry[r][1] * rx[1][c];
    auto f = [](double v) { return static_cast<float>(v); };
    l1_.push_back({f(g[0][0].real()), f(g[0][0].imag()), f(g[0][1].real()), f(g[0][1].imag()), f(g[1][0].real()),
                   f(g[1][0].imag()), f(g[1][1].real()), f(g[1][1].imag())});
    l3_cos_.push_back(f(std::cos(q.angles[2 * n + j] / 2.0)));
    l3_sin_.push_back(f(std::sin(q.angles[2 * n + j] / 2.0)));
  }
  // The last `low` qubits' gates as K x K matrices: entry (r, c) is the
  // product over those qubits of their gate's (bit of r, bit of c) entry;
  // bit i of a run index belongs to qubit n-1-i.
  low_ = std::min<uint32_t>(n, 3);
  K_ = int64_t{1} << low_;
  l1_low_re_.assign(static_cast<size_t>(K_ * K_), 0.0f);
  l1_low_im_ = l1_low_re_;
  l3_low_ = l1_low_re_;
  for (int64_t r = 0; r < K_; ++r) {
    for (int64_t c = 0; c < K_; ++c) {
      c64 m1 = 1.0;
      double m3 = 1.0;
      for (uint32_t i = 0; i < low_; ++i) {
        const uint32_t j = n - 1 - i;
        const int br = static_cast<int>((r >> i) & 1), bc = static_cast<int>((c >> i) & 1);
        const double ca = std::cos(q.angles[j] / 2.0), sa = std::sin(q.angles[j] / 2.0);
        const double cb = std::cos(q.angles[n + j] / 2.0), sb = std::sin(q.angles[n + j] / 2.0);
        const c64 rx[2][2] = {{{ca, 0}, {0, -sa}}, {{0, -sa}, {ca, 0}}};
        const c64 ry[2][2] = {{{cb, 0}, {-sb, 0}}, {{sb, 0}, {cb, 0}}};
        m1 *= ry[br][0] * rx[0][bc] + ry[br][1] * rx[1][bc];
        const double cc = std::cos(q.angles[2 * n + j] / 2.0), sc = std::sin(q.angles[2 * n + j] / 2.0);
        const double ry3[2][2] = {{cc, -sc}, {sc, cc}};
        m3 *= ry3[br][bc];
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

void CircuitGates::apply(const float* psi, int64_t d, float* re, float* im, float* scratch) const {
  const int64_t D = D_;
  float* xr = scratch;
  float* xi = scratch + D;
  std::copy_n(psi, d, xr);
  std::fill(xr + d, xr + D, 0.0f);
  std::fill(xi, xi + D, 0.0f);
  // L1: qubit j acts on the bit b = 2^(n-1-j) of a basis index; the last
  // `low` qubits together.
  complex_runs(xr, xi, D, K_, l1_low_re_.data(), l1_low_im_.data());
  for (uint32_t j = 0; j + low_ < n_; ++j) {
    const int64_t b = int64_t{1} << (n_ - 1 - j);
    const Complex2& g = l1_[j];
    for (int64_t i0 = 0; i0 < D; i0 += 2 * b)
      complex_pairs(xr + i0, xi + i0, xr + i0 + b, xi + i0 + b, b, g.r00, g.i00, g.r01, g.i01, g.r10, g.i10, g.r11,
                    g.i11);
  }
  for (int64_t s = 0; s < D; ++s) {  // P
    re[s] = xr[inv_perm_[static_cast<size_t>(s)]];
    im[s] = xi[inv_perm_[static_cast<size_t>(s)]];
  }
  real_runs(re, D, K_, l3_low_.data());  // L3
  real_runs(im, D, K_, l3_low_.data());
  for (uint32_t j = 0; j + low_ < n_; ++j) {
    const int64_t b = int64_t{1} << (n_ - 1 - j);
    for (int64_t i0 = 0; i0 < D; i0 += 2 * b) {
      rotate_pairs(re + i0, re + i0 + b, b, l3_cos_[j], l3_sin_[j]);
      rotate_pairs(im + i0, im + i0 + b, b, l3_cos_[j], l3_sin_[j]);
    }
  }
}

}  // namespace qisa
