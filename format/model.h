// The loaded model: an immutable description whose tensors point into the
// file's bytes (mapped or owned). Built only by load_model() after every
// check in model_loader.cpp has passed, so the engines can trust it.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "attention_kind.h"
#include "bpe.h"
#include "circuit.h"
#include "qisa.h"
#include "sparse_selection.h"

namespace qisa {

class ModelStorage;  // owns the bytes (mapping or buffer); model_storage.h

struct TensorView {
  std::string name;
  qisa_dtype dtype = QISA_DTYPE_F32;
  std::vector<uint64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
  uint64_t elements = 0;

  uint64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  uint64_t rows() const { return cols() == 0 ? 0 : elements / cols(); }
  uint64_t row_stride() const { return cols() == 0 ? 0 : bytes / rows(); }
  const uint8_t* row(uint64_t r) const { return data + r * row_stride(); }
  // f32 tensors only.
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

enum class Encoding : uint8_t { Normalized = 0, Raw = 1 };
enum class CircuitKind : uint8_t { RxRyCnotRy = 0, Dense = 1 };

struct QuantumProjection {
  uint32_t n_qubits = 0;
  Encoding encoding = Encoding::Normalized;
  CircuitKind circuit = CircuitKind::RxRyCnotRy;
  std::vector<float> angles;                   // 3n
  std::vector<PauliString> paulis;             // head size
  const TensorView* unitary_re = nullptr;      // D x D
  const TensorView* unitary_im = nullptr;      // D x D
  const TensorView* observables_re = nullptr;  // h x D x D, optional
  const TensorView* observables_im = nullptr;
};

// A linear map y = W x (+ b); W is [out, in].
struct Linear {
  const TensorView* weight = nullptr;
  const TensorView* bias = nullptr;  // optional for q/k/v
};

// A head's q, k and v come from a linear map or a quantum projection, as
// its kind's row of the attention-kind table says (attention_kind.h).
struct Head {
  qisa_attention_kind kind = QISA_ATTENTION_CSA;
  float scale = 1.0f;
  Sparsity sparsity;                                             // where the kind's row says Select::TopK
  std::array<Linear, kRoles> linear;                             // by Role, where Source::Linear
  std::array<std::optional<QuantumProjection>, kRoles> quantum;  // by Role, where Source::Quantum

  const Linear& lin(Role r) const { return linear[static_cast<size_t>(r)]; }
  const std::optional<QuantumProjection>& qp(Role r) const { return quantum[static_cast<size_t>(r)]; }
  // How the attention kernels score and choose this head's keys.
  ScoreRule rule() const { return {attention_kind(kind).score == Score::Gaussian, scale, sparsity}; }
};

struct Layer {
  const TensorView *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
  Linear proj, up, down;
  std::vector<Head> heads;
};

struct ModelConfig {
  uint32_t vocab_size = 0, n_ctx = 0, n_embd = 0, n_layer = 0, n_head = 0, n_ff = 0;
  qisa_ln_placement ln_placement = QISA_LN_PRE;
  float ln_eps = 1e-5f;
  qisa_activation activation = QISA_ACTIVATION_RELU;
  bool tied_lm_head = false;
  bool reference_transposed = false;
  uint32_t head_size() const { return n_embd / n_head; }
  bool valid_token(int32_t t) const { return t >= 0 && static_cast<uint32_t>(t) < vocab_size; }
};

enum class TokenizerKind : uint8_t { Char = 0, ByteBPE = 1 };

struct Tokenizer {
  TokenizerKind kind = TokenizerKind::Char;
  // Each token's text: its bytes (byte-level BPE pieces are stored mapped
  // to printable characters; these are the raw bytes, possibly part of a
  // UTF-8 character).
  std::vector<std::string> pieces;
  std::vector<std::pair<uint32_t, int32_t>> char_index;  // (code point, id), sorted: char tokenizer lookup
  std::vector<std::string> merges;                       // byte-level BPE: "left right" as stored, by rank
  bpe::Encoder bpe;                                      // byte-level BPE: built from pieces and merges
  int32_t bos_id = -1, eos_id = -1, unk_id = -1;
};

struct Model {
  Model();
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  uint16_t format_major = 0, format_minor = 0;
  ModelConfig config;
  uint32_t n_qubits = 0;  // 0 when no head is quantum-inspired
  Tokenizer tokenizer;
  std::vector<TensorView> tensors;  // file order; never resized after load
  std::map<std::string, std::string> metadata;
  const TensorView *tok_emb = nullptr, *pos_emb = nullptr, *lnf_w = nullptr, *lnf_b = nullptr;
  Linear lm_head;  // weight == tok_emb when tied
  std::vector<Layer> layers;
  uint64_t n_params = 0;
  uint64_t file_bytes = 0;
  std::unique_ptr<ModelStorage> storage;

  // A hash of the file's bytes (config, weights, vocabulary): saved states
  // carry it, so a state loads only into the model that made it. Computed
  // on first use (it reads the whole file), once, from any thread.
  uint64_t identity() const;

 private:
  mutable std::once_flag identity_once_;
  mutable uint64_t identity_ = 0;
};

struct LoadOptions {
  bool check_unitaries = true;
  bool check_weights_finite = false;
};

// Verifies `bytes` (which must outlive the model: the caller moves the
// owning storage into the result) and builds the model. Throws qisa::Error.
std::unique_ptr<Model> load_model(std::unique_ptr<ModelStorage> storage, const LoadOptions& options);
// The file at `path`, mapped. Throws qisa::Error with the loader's message.
std::unique_ptr<Model> load_model_file(const std::string& path, const LoadOptions& options = {});

}  // namespace qisa
