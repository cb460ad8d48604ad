#include "quantum_projection.h"

#include "angle_unitary.h"

#include <bit>
#include <cmath>
#include <tuple>

namespace qisa::train {

namespace {

constexpr double kMinNorm = 1e-12;

// x / max(|x|, eps) over the last dimension as one autograd node: autograd
// of norm / clamp / div takes ~7 passes over the rows backward, this 4:
// dx = (g - psi (g . psi)) / |x|, or g / eps where the norm was clamped.
struct NormalizeRows : torch::autograd::Function<NormalizeRows> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    const auto r = x.norm(2, -1, true).clamp_min_(kMinNorm);
    auto psi = x / r;
    ctx->save_for_backward({psi, r});
    return psi;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto& psi = saved[0];
    const auto& r = saved[1];
    const auto& g = grad[0];
    const auto s = (g * psi).sum(-1, true).masked_fill_(r <= kMinNorm, 0);
    return {torch::addcmul(g, psi, s, -1).div_(r)};
  }
};

// x [..., d] zero-padded to [..., 2^n].
torch::Tensor pad_to_states(const torch::Tensor& x, int64_t n_qubits) {
  const int64_t d = x.size(-1), D = int64_t{1} << n_qubits;
  return d < D ? torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({0, D - d})) : x;
}

}  // namespace

torch::Tensor encode_amplitudes(const torch::Tensor& x, int64_t n_qubits, bool normalized) {
  const torch::Tensor psi = pad_to_states(x, n_qubits);
  return normalized ? NormalizeRows::apply(psi) : psi;
}

torch::Tensor encode_amplitudes_reference(const torch::Tensor& x, int64_t n_qubits, bool normalized) {
  const torch::Tensor psi = pad_to_states(x, n_qubits);
  return normalized ? psi / psi.norm(2, -1, true).clamp_min(kMinNorm) : psi;
}

QuantumProjectionImpl::QuantumProjectionImpl(int64_t n_qubits, const std::vector<PauliString>& paulis)
    : n_(n_qubits), plan_(n_qubits, paulis) {
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
  // Row s of P*M is row inv[s] of M (P: the CNOT ring).
  const std::vector<uint32_t> ring = cnot_ring_inverse_permutation(static_cast<uint32_t>(n_));
  const std::vector<int64_t> inv(ring.begin(), ring.end());
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  x_mask_ = register_buffer("x_mask", torch::tensor(xm, i64));
  z_mask_ = register_buffer("z_mask", torch::tensor(zm, i64));
  gather_ = register_buffer("gather", torch::tensor(gather, i64));
  coef_a_ = register_buffer("coef_a", torch::tensor(ca).view({h, D}));
  coef_b_ = register_buffer("coef_b", torch::tensor(cb).view({h, D}));
  inv_perm_ = register_buffer("inv_perm", torch::tensor(inv, i64));
}

// The measurement phi -> <phi|P_k|phi> as one autograd node: the fused
// kernels of pauli_measure.h, forward and backward, on phi transposed.
struct FusedMeasure : torch::autograd::Function<FusedMeasure> {
  // f: [2D, N], the rows of Re phi^T then those of Im phi^T; returns [N, h].
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& f,
                               const PauliMeasurePlan* plan) {
    const auto fc = f.contiguous();
    ctx->save_for_backward({fc});
    // The module (and its plan) outlives the step whose backward reads it.
    ctx->saved_data["plan"] = reinterpret_cast<int64_t>(plan);
    const int64_t N = fc.size(1), half = fc.size(0) / 2 * N;
    auto out = torch::empty({plan->strings(), N}, fc.options());
    if (fc.scalar_type() == torch::kDouble)
      plan->forward(fc.data_ptr<double>(), fc.data_ptr<double>() + half, N, out.data_ptr<double>());
    else
      plan->forward(fc.data_ptr<float>(), fc.data_ptr<float>() + half, N, out.data_ptr<float>());
    return out.t();  // a view: the products that read it take either layout
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto& f = saved[0];
    const auto* plan = reinterpret_cast<const PauliMeasurePlan*>(ctx->saved_data["plan"].toInt());
    const auto dout = grad[0].t().contiguous().to(f.scalar_type());  // [h, N]
    const int64_t N = f.size(1), half = f.size(0) / 2 * N;
    auto df = torch::empty_like(f);
    if (f.scalar_type() == torch::kDouble) {
      plan->backward(f.data_ptr<double>(), f.data_ptr<double>() + half, dout.data_ptr<double>(), N,
                     df.data_ptr<double>(), df.data_ptr<double>() + half);
    } else {
      plan->backward(f.data_ptr<float>(), f.data_ptr<float>() + half, dout.data_ptr<float>(), N, df.data_ptr<float>(),
                     df.data_ptr<float>() + half);
    }
    return {df, torch::Tensor()};
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
  return angle_unitary(angles, inv_perm_);
}

torch::Tensor QuantumProjectionImpl::measure(const torch::Tensor& psi, const torch::Tensor& u_re,
                                             const torch::Tensor& u_im) const {
  // phi^T as one product: [Re U; Im U] [2D, D] times psi^T [D, N] (psi is
  // real), so the backward is one product for dpsi too, with no sum of two.
  const auto f = torch::matmul(torch::cat({u_re, u_im}), psi.t());
  return FusedMeasure::apply(f, &plan_);
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
