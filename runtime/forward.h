// The model's forward pass, written once: which operation runs on which
// buffer, in what order. Backends provide the operations (Ops) on buffers
// they own; the forward pass never touches numbers itself, so the same
// sequence runs on every backend (a device backend may capture it into a
// graph and replay it).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend.h"

#include "model.h"

namespace qisa {

// The per-row buffers of a pass. Width n_embd each, except Hidden (n_ff).
enum class Buf : uint8_t { X, U, Q, K, V, Att, Tmp, Hidden };
inline constexpr int kBufs = 8;

enum class Act : uint8_t { None, Relu, Gelu };

// Numbering of a model's linear maps and LayerNorms, shared by the forward
// pass and the backends (which prepare their weights in this order).
struct WeightIds {
  explicit WeightIds(const ModelConfig& c) : n_layer(c.n_layer), n_head(c.n_head) {}
  int64_t n_layer, n_head;

  int64_t per_layer() const { return 3 + kRoles * n_head; }
  int64_t proj(int64_t l) const { return l * per_layer(); }
  int64_t up(int64_t l) const { return l * per_layer() + 1; }
  int64_t down(int64_t l) const { return l * per_layer() + 2; }
  int64_t head(int64_t l, int64_t h, Role r) const { return l * per_layer() + 3 + kRoles * h + static_cast<int>(r); }
  int64_t lm_head() const { return n_layer * per_layer(); }
  int64_t linears() const { return lm_head() + 1; }

  int64_t ln1(int64_t l) const { return 2 * l; }
  int64_t ln2(int64_t l) const { return 2 * l + 1; }
  int64_t lnf() const { return 2 * n_layer; }
  int64_t norms() const { return lnf() + 1; }
};

// By id: the linear maps (weight nullptr where a head's role is quantum)
// and the LayerNorms (weight, bias).
std::vector<const Linear*> linears_by_id(const Model& m);
std::vector<std::pair<const TensorView*, const TensorView*>> norms_by_id(const Model& m);

// What a backend computes for the forward pass. Rows were staged by the
// backend (their tokens, positions, sequences and logit slots) before
// run_forward(); `rows` counts them, or the gathered rows after
// gather_logits.
class Ops {
 public:
  virtual ~Ops() = default;
  // out = tok_emb[token] + pos_emb[pos] of every staged row.
  virtual void embed(Buf out) = 0;
  virtual void layernorm(Buf out, Buf in, int64_t norm, int64_t rows) = 0;
  // out[:, col : col + n_out] = act(in W^T + b) for linear `id`.
  virtual void linear(int64_t id, Buf in, Buf out, int64_t col, Act act, int64_t rows) = 0;
  // Every quantum projection of layer l, from in into its head's columns
  // of Q, K or V.
  virtual void quantum(int64_t layer, Buf in) = 0;
  // Keys, values (and what attention needs of them) of every staged row
  // into the store.
  virtual void kv_write(int64_t layer, Buf k, Buf v) = 0;
  // out = causal attention of q over the row's sequence, every head, by
  // its kind's score rule.
  virtual void attention(int64_t layer, Buf q, Buf out) = 0;
  // The research code's transposed attention (ReferenceTransposed models):
  // the staged rows are a whole window from position 0 of one sequence
  // (BackendCaps::transposed_window says a backend has it).
  virtual void attention_transposed(int64_t layer, Buf q, Buf out);
  virtual void add(Buf out, Buf a, Buf b) = 0;  // rows x n_embd
  // out's first m rows = in's rows that asked for logits; returns m.
  virtual int64_t gather_logits(Buf out, Buf in) = 0;
  // Logits (or argmax) of the m gathered rows from `in`, to where the
  // staged rows' slots say.
  virtual void lm_head(Buf in, int64_t m) = 0;

  // For the ops-parity tests (tests/test_ops_parity.cpp), which run one
  // operation at a time: rows staged as forward() stages them, and the
  // first rows of a buffer from or to the host (after the queued work).
  virtual void stage(std::span<const Row> rows) = 0;
  virtual void upload(Buf b, const float* host, int64_t rows) = 0;
  virtual void download(Buf b, float* host, int64_t rows) = 0;
};

// A matrix of the pass copied to the host when the pass reaches it
// (qisa_context_probe): what (a qisa_probe), of which layer, into out
// ([rows, n_embd]).
struct ProbePoint {
  qisa_probe what = QISA_PROBE_LAYER_INPUT;
  int64_t layer = 0;
  float* out = nullptr;
};

// The model's forward pass over `rows` staged rows; with a probe, its
// matrix is downloaded on the way and the pass ends before the LM head.
void run_forward(const Model& m, Ops& ops, int64_t rows, const ProbePoint* probe = nullptr);

}  // namespace qisa
