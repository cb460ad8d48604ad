#include "gaussian_score.h"

namespace qisa::train {

namespace {

struct GaussianScore : torch::autograd::Function<GaussianScore> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                                                const torch::Tensor& k) {
    const auto qn = q.norm(2, -1, true).square_();                  // [B, T, 1]
    const auto kn = k.norm(2, -1, true).square_().transpose(1, 2);  // [B, 1, T]
    // -dist = 2 q.k - |q|^2 - |k|^2
    // bmm, not baddbmm: without MKL, LibTorch runs baddbmm as one addmm_ per
    // batch entry, ~2x a bmm of these small matrices.
    auto neg_dist = torch::bmm(q, k.transpose(1, 2)).mul_(2).sub_(qn).sub_(kn);
    auto e = neg_dist.exp();
    ctx->save_for_backward({q, k, e});
    ctx->mark_non_differentiable({neg_dist});
    return {e, neg_dist};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto& q = saved[0];
    const auto& k = saved[1];
    const auto& e = saved[2];
    const auto m = grad[0].mul(e).mul_(-2);  // 2 dL/d(dist)
    const auto dq = torch::bmm(m, k).neg_().addcmul_(q, m.sum(-1, true));
    const auto dk = torch::bmm(m.transpose(1, 2), q).neg_().addcmul_(k, m.sum(1).unsqueeze(-1));
    return {dq, dk};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> gaussian_score(const torch::Tensor& q, const torch::Tensor& k) {
  auto out = GaussianScore::apply(q, k);
  return {out[0], out[1]};
}

torch::Tensor gaussian_score_reference(const torch::Tensor& q, const torch::Tensor& k) {
  const auto diff = q.unsqueeze(2) - k.unsqueeze(1);  // [B, T, T, h]
  return torch::exp(-diff.pow(2).sum(-1));
}

}  // namespace qisa::train
