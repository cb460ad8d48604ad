#include "quantum_projection.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <tuple>

namespace qisa::train {

torch::Tensor encode_amplitudes(const torch::Tensor& x, int64_t n_qubits, bool normalized) {
  const int64_t d = x.size(-1), D = int64_t{1} << n_qubits;
  torch::Tensor psi = d < D ? torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({0, D - d})) : x;
  if (!normalized) return psi;
  return psi / psi.norm(2, -1, true).clamp_min(1e-12);
}

QuantumProjectionImpl::QuantumProjectionImpl(int64_t n_qubits, const std::vector<PauliString>& paulis) : n_(n_qubits) {
  const int64_t D = int64_t{1} << n_, h = static_cast<int64_t>(paulis.size());
  angles = register_parameter("angles", torch::empty({3 * n_}).uniform_(-M_PI, M_PI));
  std::vector<int64_t> xm, zm, gather(static_cast<size_t>(h * D));
  std::vector<float> ca(static_cast<size_t>(h * D)), cb(static_cast<size_t>(h * D));
  for (int64_t k = 0; k < h; ++k) {
    const PauliString p = paulis[static_cast<size_t>(k)];
    xm.push_back(static_cast<int64_t>(p.x_mask));
    zm.push_back(static_cast<int64_t>(p.z_mask));
    // Re(i^ny S): ny%4 = 0 -> Re S, 1 -> -Im S, 2 -> -Re S, 3 -> Im S.
    static constexpr float kRe[4] = {1, 0, -1, 0}, kIm[4] = {0, -1, 0, 1};
    const int ny = std::popcount(p.x_mask & p.z_mask) & 3;
    for (int64_t j = 0; j < D; ++j) {
      const float sign = (std::popcount(static_cast<uint64_t>(j) & p.z_mask) & 1) ? -1.0f : 1.0f;
      const auto at = static_cast<size_t>(k * D + j);
      gather[at] = j ^ static_cast<int64_t>(p.x_mask);
      ca[at] = kRe[ny] * sign;
      cb[at] = kIm[ny] * sign;
    }
  }
  // CNOT(j -> j+1 mod n), j = 0..n-1 in order, applied to basis indices.
  std::vector<int64_t> inv(static_cast<size_t>(D));
  for (int64_t i = 0; i < D; ++i) {
    uint64_t s = static_cast<uint64_t>(i);
    for (int64_t j = 0; j < n_; ++j) {
      const uint64_t cb_ = uint64_t{1} << (n_ - 1 - j), tb = uint64_t{1} << (n_ - 1 - (j + 1) % n_);
      if (s & cb_) s ^= tb;
    }
    inv[s] = i;  // row s of P*M is row i of M
  }
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  x_mask_ = register_buffer("x_mask", torch::tensor(xm, i64));
  z_mask_ = register_buffer("z_mask", torch::tensor(zm, i64));
  gather_ = register_buffer("gather", torch::tensor(gather, i64));
  coef_a_ = register_buffer("coef_a", torch::tensor(ca).view({h, D}));
  coef_b_ = register_buffer("coef_b", torch::tensor(cb).view({h, D}));
  inv_perm_ = register_buffer("inv_perm", torch::tensor(inv, i64));
  // Group the strings by X mask; outputs come out group by group and
  // group_order_ puts them back in string order.
  std::vector<int64_t> masks;
  for (int64_t x : xm) {
    if (std::find(masks.begin(), masks.end(), x) == masks.end()) masks.push_back(x);
  }
  std::vector<int64_t> order(static_cast<size_t>(h));
  int64_t column = 0;
  for (size_t g = 0; g < masks.size(); ++g) {
    std::vector<int64_t> gather_g(static_cast<size_t>(D));
    for (int64_t j = 0; j < D; ++j) gather_g[static_cast<size_t>(j)] = j ^ masks[g];
    group_diagonal_.push_back(masks[g] == 0);
    std::vector<int64_t> members;
    for (int64_t k = 0; k < h; ++k) {
      if (xm[static_cast<size_t>(k)] == masks[g]) members.push_back(k);
    }
    const auto kg = static_cast<int64_t>(members.size());
    std::vector<float> a(static_cast<size_t>(D * kg)), b(static_cast<size_t>(D * kg));
    for (int64_t c = 0; c < kg; ++c) {
      const int64_t k = members[static_cast<size_t>(c)];
      order[static_cast<size_t>(k)] = column++;
      for (int64_t j = 0; j < D; ++j) {
        a[static_cast<size_t>(j * kg + c)] = ca[static_cast<size_t>(k * D + j)];
        b[static_cast<size_t>(j * kg + c)] = cb[static_cast<size_t>(k * D + j)];
      }
    }
    const std::string tag = std::to_string(g);
    group_gather_.push_back(register_buffer("group_gather" + tag, torch::tensor(gather_g, i64)));
    group_a_.push_back(register_buffer("group_a" + tag, torch::tensor(a).view({D, kg})));
    group_b_.push_back(register_buffer("group_b" + tag, torch::tensor(b).view({D, kg})));
  }
  group_order_ = register_buffer("group_order", torch::tensor(order, i64));
  std::vector<int64_t> unorder(static_cast<size_t>(h));
  for (int64_t k = 0; k < h; ++k) unorder[static_cast<size_t>(order[static_cast<size_t>(k)])] = k;
  group_unorder_ = torch::tensor(unorder, i64);
}

// The grouped measurement phi -> <phi|P_k|phi> as one autograd node, on
// phi transposed ([D, N]: a basis state's amplitudes over all rows are
// contiguous, so phi[j ^ x] is a gather of whole rows; gathering columns
// of [N, D] was most of the training step's QISA overhead).
// out_k = sum_j A_kj (F[j^x] F[j] + G[j^x] G[j]) + B_kj (F[j^x] G[j] - G[j^x] F[j]),
// F = Re phi, G = Im phi; so dout_k/dF[m] = (A_km + A_k,m^x) F[m^x] + (B_k,m^x - B_km) G[m^x]
// and dout_k/dG[m] = (A_km + A_k,m^x) G[m^x] - (B_k,m^x - B_km) F[m^x].
struct GroupedMeasure : torch::autograd::Function<GroupedMeasure> {
  // f_re, f_im: [D, N]; returns [N, h].
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& f_re,
                               const torch::Tensor& f_im, const QuantumProjectionImpl* p) {
    ctx->save_for_backward({f_re, f_im});
    // The module outlives the step whose backward reads it.
    ctx->saved_data["p"] = reinterpret_cast<int64_t>(p);
    std::vector<torch::Tensor> outs;  // [k_g, N] per group
    for (size_t g = 0; g < p->group_gather_.size(); ++g) {
      const auto at = p->group_a_[g].t(), bt = p->group_b_[g].t();
      if (p->group_diagonal_[g]) {  // Z strings: sum_j sign |phi_j|^2 (the B coefficients are 0)
        outs.push_back(torch::matmul(at, f_re * f_re + f_im * f_im));
        continue;
      }
      const auto g_re = f_re.index_select(0, p->group_gather_[g]);  // phi[j ^ x]
      const auto g_im = f_im.index_select(0, p->group_gather_[g]);
      const auto prod_re = g_re * f_re + g_im * f_im;  // Re conj(phi[j^x]) phi[j]
      const auto prod_im = g_re * f_im - g_im * f_re;  // Im
      outs.push_back(torch::addmm(torch::matmul(at, prod_re), bt, prod_im));
    }
    return torch::cat(outs, 0).index_select(0, p->group_order_).t().contiguous();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto& f_re = saved[0];
    const auto& f_im = saved[1];
    const auto* p = reinterpret_cast<const QuantumProjectionImpl*>(ctx->saved_data["p"].toInt());
    const auto d_cat = grad[0].t().contiguous().index_select(0, p->group_unorder_);  // [h, N], group order
    auto d_re = torch::zeros_like(f_re), d_im = torch::zeros_like(f_im);
    int64_t row = 0;
    for (size_t g = 0; g < p->group_gather_.size(); ++g) {
      const auto& perm = p->group_gather_[g];  // j -> j ^ x
      const int64_t kg = p->group_a_[g].size(1);
      const auto d_out = d_cat.narrow(0, row, kg);  // [k_g, N]
      row += kg;
      if (p->group_diagonal_[g]) {  // x = 0: d|phi_j|^2 = 2 phi_j dphi_j
        const auto w2 = torch::matmul(p->group_a_[g], d_out) * 2;
        d_re.addcmul_(w2, f_re);
        d_im.addcmul_(w2, f_im);
        continue;
      }
      const auto &a = p->group_a_[g], &b = p->group_b_[g];
      const auto w = torch::matmul(a + a.index_select(0, perm), d_out);  // [D, N]
      const auto v = torch::matmul(b.index_select(0, perm) - b, d_out);
      const auto x_re = f_re.index_select(0, perm), x_im = f_im.index_select(0, perm);
      d_re.addcmul_(w, x_re).addcmul_(v, x_im);
      d_im.addcmul_(w, x_im).addcmul_(v, x_re, -1);
    }
    return {d_re, d_im, torch::Tensor()};
  }
};

std::vector<PauliString> QuantumProjectionImpl::paulis() const {
  std::vector<PauliString> out;
  auto x = x_mask_.accessor<int64_t, 1>();
  auto z = z_mask_.accessor<int64_t, 1>();
  for (int64_t k = 0; k < x_mask_.size(0); ++k) {
    out.push_back({static_cast<uint64_t>(x[k]), static_cast<uint64_t>(z[k])});
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> QuantumProjectionImpl::unitary() const {
  const auto a = angles.slice(0, 0, n_), b = angles.slice(0, n_, 2 * n_), c = angles.slice(0, 2 * n_, 3 * n_);
  const auto c1 = torch::cos(a / 2), s1 = torch::sin(a / 2), c2 = torch::cos(b / 2), s2 = torch::sin(b / 2);
  const auto c3 = torch::cos(c / 2), s3 = torch::sin(c / 2);
  torch::Tensor l1_re = torch::ones({1, 1}, angles.options()), l1_im = torch::zeros({1, 1}, angles.options());
  torch::Tensor l3 = torch::ones({1, 1}, angles.options());
  for (int64_t j = 0; j < n_; ++j) {
    // G = RY(b_j) RX(a_j) = [[c2c1 + i s2s1, -s2c1 - i c2s1], [s2c1 - i c2s1, c2c1 - i s2s1]]
    const auto g_re = torch::stack({c2[j] * c1[j], -s2[j] * c1[j], s2[j] * c1[j], c2[j] * c1[j]}).view({2, 2});
    const auto g_im = torch::stack({s2[j] * s1[j], -c2[j] * s1[j], -c2[j] * s1[j], -s2[j] * s1[j]}).view({2, 2});
    auto re = torch::kron(l1_re, g_re) - torch::kron(l1_im, g_im);
    auto im = torch::kron(l1_re, g_im) + torch::kron(l1_im, g_re);
    l1_re = re;
    l1_im = im;
    l3 = torch::kron(l3, torch::stack({c3[j], -s3[j], s3[j], c3[j]}).view({2, 2}));
  }
  const auto p_re = l1_re.index_select(0, inv_perm_), p_im = l1_im.index_select(0, inv_perm_);
  return {torch::matmul(l3, p_re), torch::matmul(l3, p_im)};
}

torch::Tensor QuantumProjectionImpl::measure(const torch::Tensor& psi, const torch::Tensor& u_re,
                                             const torch::Tensor& u_im) const {
  const auto f_re = torch::matmul(u_re, psi.t()), f_im = torch::matmul(u_im, psi.t());  // phi^T, [D, N]
  return GroupedMeasure::apply(f_re, f_im, this);
}

torch::Tensor QuantumProjectionImpl::measure_pauli(const torch::Tensor& psi, const torch::Tensor& u_re,
                                                   const torch::Tensor& u_im) const {
  const int64_t D = int64_t{1} << n_, h = coef_a_.size(0);
  const auto f_re = torch::matmul(psi, u_re.t()), f_im = torch::matmul(psi, u_im.t());  // phi, [N, D]
  const int64_t N = f_re.size(0);
  const auto g_re = f_re.index_select(1, gather_).view({N, h, D});  // phi[j ^ x_k]
  const auto g_im = f_im.index_select(1, gather_).view({N, h, D});
  const auto fr = f_re.unsqueeze(1), fi = f_im.unsqueeze(1);
  // sum_j sign * conj(phi[j^x]) phi[j] = sum (g_re f_re + g_im f_im) + i (g_re f_im - g_im f_re)
  return ((g_re * fr + g_im * fi) * coef_a_ + (g_re * fi - g_im * fr) * coef_b_).sum(-1);
}

torch::Tensor QuantumProjectionImpl::forward(const torch::Tensor& psi) const {
  if (precomputed()) return measure(psi, u_re_, u_im_);
  const auto [u_re, u_im] = unitary();
  return measure(psi, u_re, u_im);
}

void QuantumProjectionImpl::precompute() {
  torch::NoGradGuard no_grad;
  std::tie(u_re_, u_im_) = unitary();
}

void QuantumProjectionImpl::forget() {
  u_re_ = torch::Tensor();
  u_im_ = torch::Tensor();
}

}  // namespace qisa::train
