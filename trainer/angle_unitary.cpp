#include "angle_unitary.h"

#include <array>
#include <cmath>
#include <complex>
#include <numbers>
#include <vector>

namespace qisa::train {

namespace {

using cplx = std::complex<double>;
using Gate = std::array<cplx, 4>;  // row-major 2x2

// RY(b) RX(a). Every entry is linear in (cos a/2, sin a/2) and in
// (cos b/2, sin b/2), and shifting an angle by pi maps (cos, sin) of its
// half to (-sin, cos), its derivative times 2: so d/da G(a, b) =
// G(a + pi, b) / 2, and the same for b and for RY(c).
Gate rx_ry(double a, double b) {
  const double c1 = std::cos(a / 2), s1 = std::sin(a / 2), c2 = std::cos(b / 2), s2 = std::sin(b / 2);
  return {cplx(c2 * c1, s2 * s1), cplx(-s2 * c1, -c2 * s1), cplx(s2 * c1, -c2 * s1), cplx(c2 * c1, -s2 * s1)};
}
Gate ry(double c) {
  const double c3 = std::cos(c / 2), s3 = std::sin(c / 2);
  return {cplx(c3), cplx(-s3), cplx(s3), cplx(c3)};
}

struct Factors {
  int64_t n = 0;
  std::vector<Gate> g1, g3;  // the per-qubit gates of L1 and L3
};

Factors factors(const torch::Tensor& angles) {
  const auto a = angles.detach().to(torch::kDouble).contiguous();
  const double* t = a.data_ptr<double>();
  Factors f;
  f.n = a.numel() / 3;
  for (int64_t j = 0; j < f.n; ++j) {
    f.g1.push_back(rx_ry(t[j], t[f.n + j]));
    f.g3.push_back(ry(t[2 * f.n + j]));
  }
  return f;
}

// g (x) inner: [2h, 2h] from inner [h, h], row-major.
std::vector<cplx> kron(const Gate& g, const std::vector<cplx>& inner, int64_t h) {
  const int64_t s = 2 * h;
  std::vector<cplx> k(static_cast<size_t>(s * s));
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t r = 0; r < h; ++r)
        for (int64_t c = 0; c < h; ++c)
          k[static_cast<size_t>((a * h + r) * s + b * h + c)] =
              g[static_cast<size_t>(a * 2 + b)] * inner[static_cast<size_t>(r * h + c)];
  return k;
}

// dL/dgate_j[a][b] = sum over the (r, c) whose bits n-1-j are (a, b) of
// w(r, c) * prod_{i != j} gate_i[bits n-1-i of r, c], for the Kronecker product
// of n gates and complex weights w [D, D] (planes wr, wi, consumed). With
// the gates folded in from the most significant bit: W_0 = w and W_{j+1} =
// sum_ab gate_j[a][b] * quadrant (a, b) of W_j; then dL/dgate_j[a][b] =
// <quadrant (a, b) of W_j, gate_{j+1} (x) ... (x) gate_{n-1}> elementwise.
// About 3 D^2 complex multiply-adds for all n gates.
std::vector<Gate> kron_factor_grads(const std::vector<Gate>& gates, std::vector<double> wr, std::vector<double> wi) {
  const auto n = static_cast<int64_t>(gates.size());
  // suffix[j] = gate_{j+1} (x) ... (x) gate_{n-1}: [s, s], s = 2^(n-1-j).
  std::vector<std::vector<cplx>> suffix(static_cast<size_t>(n));
  suffix[static_cast<size_t>(n - 1)] = {cplx(1)};
  for (int64_t j = n - 2; j >= 0; --j)
    suffix[static_cast<size_t>(j)] =
        kron(gates[static_cast<size_t>(j + 1)], suffix[static_cast<size_t>(j + 1)], int64_t{1} << (n - 2 - j));
  std::vector<Gate> out(static_cast<size_t>(n), Gate{});
  std::vector<double> nr, ni;
  for (int64_t j = 0, size = int64_t{1} << n; j < n; ++j, size /= 2) {
    const int64_t h = size / 2;
    const auto& k = suffix[static_cast<size_t>(j)];
    const Gate& g = gates[static_cast<size_t>(j)];
    nr.assign(static_cast<size_t>(h * h), 0.0);
    ni.assign(static_cast<size_t>(h * h), 0.0);
    for (int64_t a = 0; a < 2; ++a) {
      for (int64_t b = 0; b < 2; ++b) {
        const double gr = g[static_cast<size_t>(a * 2 + b)].real(), gi = g[static_cast<size_t>(a * 2 + b)].imag();
        double sr = 0, si = 0;
        for (int64_t r = 0; r < h; ++r) {
          const double* __restrict qr = wr.data() + (a * h + r) * size + b * h;
          const double* __restrict qi = wi.data() + (a * h + r) * size + b * h;
          const cplx* __restrict kk = k.data() + r * h;
          double* __restrict xr = nr.data() + r * h;
          double* __restrict xi = ni.data() + r * h;
          for (int64_t c = 0; c < h; ++c) {
            sr += qr[c] * kk[c].real() - qi[c] * kk[c].imag();
            si += qr[c] * kk[c].imag() + qi[c] * kk[c].real();
            xr[c] += gr * qr[c] - gi * qi[c];
            xi[c] += gr * qi[c] + gi * qr[c];
          }
        }
        out[static_cast<size_t>(j)][static_cast<size_t>(a * 2 + b)] = cplx(sr, si);
      }
    }
    wr.swap(nr);
    wi.swap(ni);
  }
  return out;
}

// The Kronecker product of the gates as (real, imaginary) [D, D] doubles,
// rows permuted by inv_perm (row r = row inv_perm[r]); inv_perm empty: none.
std::pair<torch::Tensor, torch::Tensor> kron(const std::vector<Gate>& gates, const int64_t* inv_perm) {
  std::vector<cplx> k = {cplx(1)};
  for (int64_t j = static_cast<int64_t>(gates.size()) - 1, h = 1; j >= 0; --j, h *= 2)
    k = kron(gates[static_cast<size_t>(j)], k, h);
  const int64_t D = int64_t{1} << gates.size();
  auto re = torch::empty({D, D}, torch::kDouble), im = torch::empty({D, D}, torch::kDouble);
  double *pr = re.data_ptr<double>(), *pi = im.data_ptr<double>();
  for (int64_t r = 0; r < D; ++r) {
    const cplx* row = k.data() + (inv_perm ? inv_perm[r] : r) * D;
    for (int64_t c = 0; c < D; ++c) {
      pr[r * D + c] = row[c].real();
      pi[r * D + c] = row[c].imag();
    }
  }
  return {re, im};
}

// dL/dangle for gates g(angle) given dL/dgate: Re sum_e grad[e] * dg/dangle[e]
// with dg/dangle = g(angle + pi) / 2 (see rx_ry).
double angle_grad(const Gate& grad, const Gate& shifted) {
  double s = 0;
  for (size_t e = 0; e < 4; ++e) s += (grad[e] * shifted[e]).real() / 2;
  return s;
}

struct AngleUnitary : torch::autograd::Function<AngleUnitary> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& angles,
                                                const torch::Tensor& inv_perm) {
    const Factors f = factors(angles);
    const auto perm = inv_perm.to(torch::kInt64).contiguous();
    auto [m_re, m_im] = kron(f.g1, perm.data_ptr<int64_t>());  // P * L1
    const auto l3 = kron(f.g3, nullptr).first;                 // real
    const auto dtype = angles.scalar_type();
    const auto l3t = l3.to(dtype), mr = m_re.to(dtype), mi = m_im.to(dtype);
    ctx->save_for_backward({angles, perm, l3t, mr, mi});
    return {torch::mm(l3t, mr), torch::mm(l3t, mi)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto s = ctx->get_saved_variables();
    const auto &angles = s[0], &perm = s[1], &l3 = s[2], &mr = s[3], &mi = s[4];
    const Factors f = factors(angles);
    const int64_t n = f.n, D = int64_t{1} << n;
    const auto gr = grad[0].defined() ? grad[0] : torch::zeros_like(mr);
    const auto gi = grad[1].defined() ? grad[1] : torch::zeros_like(mi);
    // U = L3 M: dL/dL3 = Gr Mr^T + Gi Mi^T, dL/dM = L3^T G.
    const auto dl3 = (torch::mm(gr, mr.t()) + torch::mm(gi, mi.t())).to(torch::kDouble).contiguous();
    const auto dmr = torch::mm(l3.t(), gr).to(torch::kDouble).contiguous();
    const auto dmi = torch::mm(l3.t(), gi).to(torch::kDouble).contiguous();
    // Row r of M is row inv_perm[r] of L1. L is real, so its derivative in
    // a complex entry z is Re(conj(dL/dRe z + i dL/dIm z) dz).
    std::vector<int64_t> row_of(static_cast<size_t>(D));  // L1 row -> M row
    const int64_t* p = perm.data_ptr<int64_t>();
    for (int64_t r = 0; r < D; ++r) row_of[static_cast<size_t>(p[r])] = r;
    const double *a3 = dl3.data_ptr<double>(), *mr_grad = dmr.data_ptr<double>(), *mi_grad = dmi.data_ptr<double>();
    std::vector<double> w1r(static_cast<size_t>(D * D)), w1i(static_cast<size_t>(D * D));
    for (int64_t r = 0; r < D; ++r) {
      for (int64_t c = 0; c < D; ++c) {
        const int64_t at = row_of[static_cast<size_t>(r)] * D + c;
        w1r[static_cast<size_t>(r * D + c)] = mr_grad[at];
        w1i[static_cast<size_t>(r * D + c)] = -mi_grad[at];
      }
    }
    const auto g1 = kron_factor_grads(f.g1, std::move(w1r), std::move(w1i));
    const auto g3 = kron_factor_grads(f.g3, std::vector<double>(a3, a3 + D * D), std::vector<double>(D * D, 0.0));
    const auto t = angles.detach().to(torch::kDouble).contiguous();
    const double* ang = t.data_ptr<double>();
    auto d = torch::empty({3 * n}, torch::kDouble);
    double* dp = d.data_ptr<double>();
    const double pi = std::numbers::pi;
    for (int64_t j = 0; j < n; ++j) {
      const double a = ang[j], b = ang[n + j], c = ang[2 * n + j];
      const auto& gj = g1[static_cast<size_t>(j)];
      dp[j] = angle_grad(gj, rx_ry(a + pi, b));
      dp[n + j] = angle_grad(gj, rx_ry(a, b + pi));
      dp[2 * n + j] = angle_grad(g3[static_cast<size_t>(j)], ry(c + pi));
    }
    return {d.to(angles.scalar_type()), torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> angle_unitary(const torch::Tensor& angles, const torch::Tensor& inv_perm) {
  const auto out = AngleUnitary::apply(angles, inv_perm);
  return {out[0], out[1]};
}

std::pair<torch::Tensor, torch::Tensor> angle_unitary_reference(const torch::Tensor& angles,
                                                                const torch::Tensor& inv_perm) {
  const int64_t n = angles.numel() / 3;
  const auto a = angles.slice(0, 0, n), b = angles.slice(0, n, 2 * n), c = angles.slice(0, 2 * n, 3 * n);
  const auto c1 = torch::cos(a / 2), s1 = torch::sin(a / 2), c2 = torch::cos(b / 2), s2 = torch::sin(b / 2);
  const auto c3 = torch::cos(c / 2), s3 = torch::sin(c / 2);
  torch::Tensor l1_re = torch::ones({1, 1}, angles.options()), l1_im = torch::zeros({1, 1}, angles.options());
  torch::Tensor l3 = torch::ones({1, 1}, angles.options());
  for (int64_t j = 0; j < n; ++j) {
    // G = RY(b_j) RX(a_j) = [[c2c1 + i s2s1, -s2c1 - i c2s1], [s2c1 - i c2s1, c2c1 - i s2s1]]
    const auto g_re = torch::stack({c2[j] * c1[j], -s2[j] * c1[j], s2[j] * c1[j], c2[j] * c1[j]}).view({2, 2});
    const auto g_im = torch::stack({s2[j] * s1[j], -c2[j] * s1[j], -c2[j] * s1[j], -s2[j] * s1[j]}).view({2, 2});
    auto re = torch::kron(l1_re, g_re) - torch::kron(l1_im, g_im);
    auto im = torch::kron(l1_re, g_im) + torch::kron(l1_im, g_re);
    l1_re = re;
    l1_im = im;
    l3 = torch::kron(l3, torch::stack({c3[j], -s3[j], s3[j], c3[j]}).view({2, 2}));
  }
  const auto p_re = l1_re.index_select(0, inv_perm), p_im = l1_im.index_select(0, inv_perm);
  return {torch::matmul(l3, p_re), torch::matmul(l3, p_im)};
}

}  // namespace qisa::train
