#include "gpt_model.h"

#include <cmath>
#include <stdexcept>
#include <tuple>

#include "gaussian_score.h"
#include "synthetic_model.h"

namespace qisa::train {

namespace F = torch::nn::functional;

int64_t ModelOptions::n_qubits() const {
  return qubits_for_width(static_cast<uint64_t>(n_embd));
}

qisa_attention_kind parse_attention(const std::string& s) {
  if (const AttentionKind* k = find_attention_kind(s)) return k->kind;
  throw std::runtime_error("unknown attention '" + s + "' (" + attention_kind_names() + ")");
}

const char* attention_name(qisa_attention_kind k) {
  return attention_kind(k).name;
}

HeadImpl::HeadImpl(const ModelOptions& o, int64_t layer, int64_t head)
    : kind(o.attention),
      top_k_(o.qsat_top_k),
      window_(o.qsat_window),
      transpose_(o.reference_transpose),
      normalized_(!o.raw_encoding) {
  const AttentionKind& kd = attention_kind(kind);
  const int64_t d = o.n_embd, h = o.head_size();
  if (kd.select == Select::TopK && (top_k_ < 1 || window_ < 0))
    throw std::runtime_error(std::string(kd.label) + " needs qsat_top_k >= 1 and qsat_window >= 0");
  if (kd.select == Select::TopK && transpose_)
    throw std::runtime_error(std::string(kd.label) + " has no transposed (research-code) form");
  if (kd.score == Score::Dot) scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));  // n_embd^-1/2
  std::vector<PauliString> paulis, z0;
  if (kd.any_quantum()) {
    n_qubits_ = o.n_qubits();
    const uint64_t seed =
        o.pauli_seed * 1000003ull + static_cast<uint64_t>(layer) * 1009ull + static_cast<uint64_t>(head);
    paulis = writer::draw_paulis(static_cast<uint32_t>(n_qubits_), static_cast<uint32_t>(h), seed);
    z0.assign(static_cast<size_t>(h), PauliString{0, uint64_t{1} << (n_qubits_ - 1)});  // <Z on qubit 0>
  }
  for (Role r : kAllRoles) {
    const std::string letter(1, role_letter(r));
    if (kd.of(r) == Source::Linear) {  // with a bias where the score is the Gaussian kernel
      linear(r) =
          register_module(letter, torch::nn::Linear(torch::nn::LinearOptions(d, h).bias(kd.score == Score::Gaussian)));
    } else {
      const bool first_qubit = r != Role::V && kd.qk_strings == QkStrings::FirstQubitZ;
      quantum(r) = register_module("q" + letter, QuantumProjection(n_qubits_, first_qubit ? z0 : paulis));
    }
  }
}

torch::Tensor HeadImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1);
  const AttentionKind& kd = attention_kind(kind);
  torch::Tensor psi;
  if (kd.any_quantum()) psi = encode_amplitudes(x, n_qubits_, normalized_).reshape({B * T, -1});
  auto project = [&](Role r) { return kd.of(r) == Source::Linear ? linear(r)(x) : quantum(r)(psi).view({B, T, -1}); };
  const torch::Tensor qt = project(Role::Q), kt = project(Role::K), vt = project(Role::V);
  torch::Tensor scores, scores_for_selection;
  if (kd.score == Score::Dot) {
    scores = torch::matmul(qt, kt.transpose(1, 2)) * scale;
  } else {  // exp(-|q_i - k_j|^2)
    std::tie(scores, scores_for_selection) = gaussian_score(qt, kt);
  }
  const auto mask = torch::ones({T, T}, torch::kBool).triu(1);  // j > i
  const float inf = std::numeric_limits<float>::infinity();
  if (kd.select == Select::TopK && top_k_ < T) {
    // QSAT: each row keeps its top_k nearest keys, ranked by -|q-k|^2 (not
    // by exp(), which ties distant keys at 0), future positions excluded
    // (so a row with fewer than top_k earlier positions keeps them all),
    // and its window_ most recent positions. The runtime breaks exact
    // ties toward the later position; topk's choice among ties is
    // unspecified, which only equal distances can tell apart.
    const auto idx = std::get<1>(scores_for_selection.masked_fill(mask, -inf).topk(top_k_, -1));
    auto keep = torch::zeros_like(scores, torch::kBool).scatter(-1, idx, true);
    if (window_ > 0) keep = keep.logical_or(torch::ones({T, T}, torch::kBool).triu(-(window_ - 1)));
    scores = scores.masked_fill(keep.logical_not(), -inf);
  }
  scores = scores.masked_fill(mask, -inf);
  const auto att = torch::softmax(scores, -1);
  // Causal: out_i = sum_j a_ij v_j. The research code's transposed form,
  // out_i = sum_j a_ji v_j, reads later tokens (docs/math.md).
  return torch::matmul(transpose_ ? att.transpose(1, 2) : att, vt);
}

BlockImpl::BlockImpl(const ModelOptions& o, int64_t layer) {
  const int64_t d = o.n_embd;
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5)));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5)));
  heads = register_module("heads", torch::nn::ModuleList());
  for (int64_t h = 0; h < o.n_head; ++h) heads->push_back(Head(o, layer, h));
  proj = register_module("proj", torch::nn::Linear(d, d));
  up = register_module("up", torch::nn::Linear(d, o.n_ff()));
  down = register_module("down", torch::nn::Linear(o.n_ff(), d));
  drop = register_module("drop", torch::nn::Dropout(o.dropout));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  const auto u = ln1(x);
  std::vector<torch::Tensor> outs;
  for (const auto& m : *heads) outs.push_back(m->as<HeadImpl>()->forward(u));
  auto y = x + drop(proj(torch::cat(outs, -1)));
  return y + drop(down(torch::relu(up(ln2(y)))));
}

GptImpl::GptImpl(const ModelOptions& o) : options(o) {
  if (o.n_embd % o.n_head != 0) throw std::runtime_error("--n-head must divide --n-embd");
  tok_emb = register_module("tok_emb", torch::nn::Embedding(o.vocab_size, o.n_embd));
  pos_emb = register_module("pos_emb", torch::nn::Embedding(o.n_ctx, o.n_embd));
  for (int64_t l = 0; l < o.n_layer; ++l) blocks.push_back(register_module("blk" + std::to_string(l), Block(o, l)));
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.n_embd}).eps(1e-5)));
  lm_head = register_module("lm_head", torch::nn::Linear(o.n_embd, o.vocab_size));
}

torch::Tensor GptImpl::forward(const torch::Tensor& idx) {
  const int64_t T = idx.size(1);
  if (T > options.n_ctx) throw std::runtime_error("sequence longer than n_ctx");
  auto x = tok_emb(idx) + pos_emb(torch::arange(T, torch::kInt64));
  for (auto& b : blocks) x = b(x);
  return lm_head(ln_f(x));
}

void GptImpl::precompute_unitaries(bool on) {
  for (auto& b : blocks) {
    for (const auto& m : *b->heads) {
      auto* head = m->as<HeadImpl>();
      for (auto* p : {&head->qq, &head->qk, &head->qv}) {
        if (!*p) continue;
        if (on)
          (*p)->precompute();
        else
          (*p)->forget();
      }
    }
  }
}

}  // namespace qisa::train
