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

// Entry (r, c) of the Kronecker product's gate j: bit n-1-j of r and c.
int64_t entry(int64_t r, int64_t c, int64_t n, int64_t j) {
  const int64_t s = n - 1 - j;
  return ((r >> s) & 1) * 2 + ((c >> s) & 1);
}

// dL/dgate[j][e] = sum over the (r, c) with entry(r, c, j) = e of
// w(r, c) * prod_{i != j} gate_i[entry(r, c, i)], for a Kronecker product
// of n gates and weights w [D, D] (prefix and suffix products: O(n D^2)).
template <class W>
std::vector<Gate> kron_factor_grads(const std::vector<Gate>& gates, int64_t D, W w) {
  const auto n = static_cast<int64_t>(gates.size());
  std::vector<Gate> out(static_cast<size_t>(n), Gate{});
  std::vector<cplx> prefix(static_cast<size_t>(n + 1)), suffix(static_cast<size_t>(n + 1));
  std::vector<int64_t> e(static_cast<size_t>(n));
  for (int64_t r = 0; r < D; ++r) {
    for (int64_t c = 0; c < D; ++c) {
      const cplx wrc = w(r, c);
      if (wrc == cplx(0)) continue;
      for (int64_t j = 0; j < n; ++j) e[static_cast<size_t>(j)] = entry(r, c, n, j);
      prefix[0] = 1;
      for (int64_t j = 0; j < n; ++j)
        prefix[static_cast<size_t>(j + 1)] =
            prefix[static_cast<size_t>(j)] *
            gates[static_cast<size_t>(j)][static_cast<size_t>(e[static_cast<size_t>(j)])];
      suffix[static_cast<size_t>(n)] = 1;
      for (int64_t j = n - 1; j >= 0; --j)
        suffix[static_cast<size_t>(j)] = suffix[static_cast<size_t>(j + 1)] *
                                         gates[static_cast<size_t>(j)][static_cast<size_t>(e[static_cast<size_t>(j)])];
      for (int64_t j = 0; j < n; ++j) {
        out[static_cast<size_t>(j)][static_cast<size_t>(e[static_cast<size_t>(j)])] +=
            wrc * prefix[static_cast<size_t>(j)] * suffix[static_cast<size_t>(j + 1)];
      }
    }
  }
  return out;
}

// The Kronecker product of the gates as (real, imaginary) [D, D] doubles,
// rows permuted by inv_perm (row r = row inv_perm[r]); inv_perm empty: none.
std::pair<torch::Tensor, torch::Tensor> kron(const std::vector<Gate>& gates, const int64_t* inv_perm) {
  const auto n = static_cast<int64_t>(gates.size());
  const int64_t D = int64_t{1} << n;
  auto re = torch::empty({D, D}, torch::kDouble), im = torch::empty({D, D}, torch::kDouble);
  double *pr = re.data_ptr<double>(), *pi = im.data_ptr<double>();
  for (int64_t r = 0; r < D; ++r) {
    const int64_t src = inv_perm ? inv_perm[r] : r;
    for (int64_t c = 0; c < D; ++c) {
      cplx z = 1;
      for (int64_t j = 0; j < n; ++j) z *= gates[static_cast<size_t>(j)][static_cast<size_t>(entry(src, c, n, j))];
      pr[r * D + c] = z.real();
      pi[r * D + c] = z.imag();
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
    const double *a3 = dl3.data_ptr<double>(), *wr = dmr.data_ptr<double>(), *wi = dmi.data_ptr<double>();
    const auto g1 = kron_factor_grads(f.g1, D, [&](int64_t r, int64_t c) {
      const int64_t at = row_of[static_cast<size_t>(r)] * D + c;
      return cplx(wr[at], -wi[at]);
    });
    const auto g3 = kron_factor_grads(f.g3, D, [&](int64_t r, int64_t c) { return cplx(a3[r * D + c]); });
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
