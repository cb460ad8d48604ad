// The GPT-1-style model of docs/math.md as LibTorch modules: embeddings,
// pre-LN blocks with CSA or QISA v1/v2/v3 heads, final LayerNorm, LM head.
#pragma once

#include <torch/torch.h>

#include "attention_kind.h"

#include <string>
#include <vector>

#include "qisa.h"
#include "quantum_projection.h"

namespace qisa::train {

struct ModelOptions {
  int64_t vocab_size = 65;
  int64_t n_ctx = 16;
  int64_t n_embd = 16;
  int64_t n_layer = 6;
  int64_t n_head = 1;
  qisa_attention_kind attention = QISA_ATTENTION_QISA_V3;
  double dropout = 0.2;
  bool reference_transpose = false;  // the research code's non-causal attention
  bool raw_encoding = false;         // psi = pad(x) instead of pad(x)/|x|
  uint64_t pauli_seed = 1;           // Pauli strings are drawn from this
  // QSAT (attention qsat): each query keeps its qsat_top_k nearest keys
  // and its qsat_window most recent positions (itself included), and the
  // softmax runs over those alone (core/sparse_selection.h).
  int64_t qsat_top_k = 0;
  int64_t qsat_window = 0;

  int64_t head_size() const { return n_embd / n_head; }
  int64_t n_ff() const { return 4 * n_embd; }
  int64_t n_qubits() const;
};

// Parses a kind's name (attention_kind.h); throws on anything else.
qisa_attention_kind parse_attention(const std::string& s);
const char* attention_name(qisa_attention_kind k);

class HeadImpl : public torch::nn::Module {
 public:
  HeadImpl(const ModelOptions& o, int64_t layer, int64_t head);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, d] -> [B, T, h]

  qisa_attention_kind kind;
  float scale = 1.0f;  // where the kind's score is Score::Dot
  // Per role, as the kind's row says (attention_kind.h): registered as
  // "q", "k", "v" (linear) or "qq", "qk", "qv" (quantum).
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr};
  QuantumProjection qq{nullptr}, qk{nullptr}, qv{nullptr};
  torch::nn::Linear& linear(Role r) { return r == Role::Q ? q : r == Role::K ? k : v; }
  QuantumProjection& quantum(Role r) { return r == Role::Q ? qq : r == Role::K ? qk : qv; }

 private:
  int64_t n_qubits_ = 0;
  int64_t top_k_ = 0, window_ = 0;
  bool transpose_, normalized_;
};
TORCH_MODULE(Head);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelOptions& o, int64_t layer);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::ModuleList heads;
  torch::nn::Linear proj{nullptr}, up{nullptr}, down{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(Block);

class GptImpl : public torch::nn::Module {
 public:
  explicit GptImpl(const ModelOptions& o);
  torch::Tensor forward(const torch::Tensor& idx);  // [B, T] int64 -> [B, T, vocab]
  // Every quantum projection keeps U built once (inference), or not.
  void precompute_unitaries(bool on);

  ModelOptions options;
  torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr};
  std::vector<Block> blocks;
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear lm_head{nullptr};
};
TORCH_MODULE(Gpt);

}  // namespace qisa::train
