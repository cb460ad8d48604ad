// Turns verified file bytes into a Model. Order of trust:
//   1. identifier and version (a tiny probe that any major can pass),
//   2. the FlatBuffers verifier with explicit depth/table limits,
//   3. a semantic check of everything the engines rely on: config limits,
//      tensor sizes (overflow-checked), shapes against the config, every
//      expected tensor present once and nothing else, Pauli strings,
//      tokenizer, and the numerics of each unitary.
// Every failure throws qisa::Error naming the field, expected vs found.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "dtype.h"
#include "error.h"
#include "hash.h"
#include "model.h"
#include "model_storage.h"
#include "qisa_generated.h"
#include "tensor_names.h"
#include "utf8.h"

namespace qisa {

Model::Model() = default;
Model::~Model() = default;

uint64_t Model::identity() const {
  std::call_once(identity_once_, [this] { identity_ = hash64(storage->data(), storage->size()); });
  return identity_;
}

namespace {

namespace fb = qisa::fb;

constexpr size_t kAlign = 64;
constexpr uint32_t kMaxVocab = 1u << 24;
constexpr uint32_t kMaxCtx = 1u << 20;
constexpr uint32_t kMaxEmbd = 1u << 16;
constexpr uint32_t kMaxLayers = 4096;
constexpr uint32_t kMaxFF = 1u << 20;
constexpr size_t kMaxRank = 4;

// The schema's enums and the tables (core/) list the same values.
static_assert(static_cast<int>(fb::DType::MAX) == kDtypeCount - 1);
static_assert(static_cast<int>(fb::AttentionKind::MAX) == kAttentionKindCount - 1);

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool valid_utf8(std::string_view s, size_t* code_points) {
  size_t i = 0, n = 0;
  uint32_t cp = 0;
  while (i < s.size()) {
    if (!utf8_next(s, i, &cp)) return false;
    ++n;
  }
  *code_points = n;
  return true;
}

// The coarser of two stored types (the one whose stored unitaries may err
// more), whose tolerance a pair of planes is checked with.
qisa_dtype coarser(qisa_dtype a, qisa_dtype b) {
  return dtype_traits(a).unitary_element_error >= dtype_traits(b).unitary_element_error ? a : b;
}

class Loader {
 public:
  Loader(std::unique_ptr<ModelStorage> storage, const LoadOptions& opt) : opt_(opt) {
    model_ = std::make_unique<Model>();
    model_->storage = std::move(storage);
    buf_ = model_->storage->data();
    size_ = model_->storage->size();
    model_->file_bytes = size_;
  }

  std::unique_ptr<Model> run() {
    const fb::Model* m = verify_structure();
    read_config(*m->config());
    read_tensors(*m->tensors());
    read_tokenizer(*m->tokenizer());
    read_metadata(m->metadata());
    read_globals();
    read_layers(*m->layers());
    for (size_t i = 0; i < model_->tensors.size(); ++i) {
      if (!used_[i])
        fail(QISA_ERR_INVALID_MODEL, "unexpected tensor '%s' (not used by this configuration)",
             model_->tensors[i].name.c_str());
    }
    if (opt_.check_weights_finite) check_all_finite();
    return std::move(model_);
  }

 private:
  void require_aligned(const void* at, size_t align, const char* what, const std::string& name) const {
    const auto offset = static_cast<size_t>(static_cast<const uint8_t*>(at) - buf_);
    if (offset % align != 0) {
      fail(QISA_ERR_CORRUPT, "the %s '%s' lies at file offset %zu, not %zu-byte aligned", what, name.c_str(), offset,
           align);
    }
  }

  // ---- 1 + 2: structure ------------------------------------------------
  const fb::Model* verify_structure() {
    if (size_ < 8) fail(QISA_ERR_NOT_A_MODEL, "file is %zu bytes; a .qisa file is at least 8", size_);
    if (size_ >= FLATBUFFERS_MAX_BUFFER_SIZE) {
      fail(QISA_ERR_UNSUPPORTED, "file is %zu bytes; the format's limit is %zu", size_,
           static_cast<size_t>(FLATBUFFERS_MAX_BUFFER_SIZE) - 1);
    }
    if (!fb::ModelBufferHasIdentifier(buf_)) {
      std::string found(reinterpret_cast<const char*>(buf_) + 4, 4);
      for (auto& c : found) {
        if (c < 32 || c > 126) c = '?';
      }
      fail(QISA_ERR_NOT_A_MODEL, "file identifier is '%s', expected '%s' (not a .qisa model)", found.c_str(),
           fb::ModelIdentifier());
    }
    flatbuffers::Verifier::Options vopt;
    vopt.max_depth = 16;
    vopt.max_tables = static_cast<flatbuffers::uoffset_t>(std::min<size_t>(size_ / 4 + 16, 50'000'000));
    {
      flatbuffers::Verifier probe(buf_, size_, vopt);
      if (!probe.VerifyBuffer<fb::VersionProbe>(fb::ModelIdentifier())) {
        fail(QISA_ERR_CORRUPT, "file header fails verification (truncated or corrupt)");
      }
    }
    const auto* probe = flatbuffers::GetRoot<fb::VersionProbe>(buf_);
    const unsigned major = probe->format_major(), minor = probe->format_minor();
    if (major > QISA_FORMAT_VERSION_MAJOR || major == 0) {
      fail(QISA_ERR_VERSION, "format version %u.%u is not supported: this libqisa reads major version %d", major, minor,
           QISA_FORMAT_VERSION_MAJOR);
    }
    model_->format_major = static_cast<uint16_t>(major);
    model_->format_minor = static_cast<uint16_t>(minor);
    flatbuffers::Verifier verifier(buf_, size_, vopt);
    if (!fb::VerifyModelBuffer(verifier)) {
      fail(QISA_ERR_CORRUPT,
           "file fails FlatBuffers verification (truncated, an offset out of range, or a missing "
           "required field)");
    }
    return fb::GetModel(buf_);
  }

  // ---- 3: content --------------------------------------------------------
  void read_config(const fb::Config& c) {
    ModelConfig& cfg = model_->config;
    auto limit = [](const char* field, uint32_t v, uint32_t lo, uint32_t hi) {
      if (v < lo || v > hi) fail(QISA_ERR_INVALID_MODEL, "config.%s is %u, expected %u..%u", field, v, lo, hi);
      return v;
    };
    cfg.vocab_size = limit("vocab_size", c.vocab_size(), 1, kMaxVocab);
    cfg.n_ctx = limit("n_ctx", c.n_ctx(), 1, kMaxCtx);
    cfg.n_embd = limit("n_embd", c.n_embd(), 1, kMaxEmbd);
    cfg.n_layer = limit("n_layer", c.n_layer(), 1, kMaxLayers);
    cfg.n_head = limit("n_head", c.n_head(), 1, cfg.n_embd);
    cfg.n_ff = limit("n_ff", c.n_ff(), 1, kMaxFF);
    if (cfg.n_embd % cfg.n_head != 0) {
      fail(QISA_ERR_INVALID_MODEL, "config.n_head %u does not divide n_embd %u", cfg.n_head, cfg.n_embd);
    }
    const float eps = c.ln_eps();
    if (!(std::isfinite(eps) && eps > 0.0f)) fail(QISA_ERR_INVALID_MODEL, "config.ln_eps is %g, expected > 0", eps);
    cfg.ln_eps = eps;
    const auto pl = static_cast<unsigned>(c.ln_placement());
    if (pl > 1) fail(QISA_ERR_INVALID_MODEL, "config.ln_placement is %u, expected 0 (pre) or 1 (post)", pl);
    cfg.ln_placement = static_cast<qisa_ln_placement>(pl);
    const auto act = static_cast<unsigned>(c.activation());
    if (act > 1) fail(QISA_ERR_INVALID_MODEL, "config.activation is %u, expected 0 (ReLU) or 1 (GELU)", act);
    cfg.activation = static_cast<qisa_activation>(act);
    const auto mask = static_cast<unsigned>(c.attention_mask());
    if (mask > 1) fail(QISA_ERR_INVALID_MODEL, "config.attention_mask is %u, expected 0 or 1", mask);
    cfg.reference_transposed = mask == 1;
    cfg.tied_lm_head = c.tied_lm_head();
  }

  void read_tensors(const flatbuffers::Vector<flatbuffers::Offset<fb::Tensor>>& ts) {
    auto& out = model_->tensors;
    out.reserve(ts.size());
    for (flatbuffers::uoffset_t i = 0; i < ts.size(); ++i) {
      const fb::Tensor* t = ts.Get(i);
      TensorView v;
      v.name = t->name()->str();
      if (v.name.empty()) fail(QISA_ERR_INVALID_MODEL, "tensor %u has an empty name", i);
      const auto dt = static_cast<int>(t->dtype());
      if (!dtype_valid(dt)) fail(QISA_ERR_INVALID_MODEL, "tensor '%s' has unknown dtype %d", v.name.c_str(), dt);
      v.dtype = static_cast<qisa_dtype>(dt);
      const auto* shape = t->shape();
      // The verifier checks a vector's length field (4 bytes), not that
      // 8-byte elements are 8-byte aligned: reading them unaligned is UB.
      require_aligned(shape->data(), 8, "tensor shape of", v.name);
      if (shape->size() == 0 || shape->size() > kMaxRank) {
        fail(QISA_ERR_INVALID_MODEL, "tensor '%s' has rank %u, expected 1..%zu", v.name.c_str(), shape->size(),
             kMaxRank);
      }
      uint64_t elements = 1;
      for (auto d : *shape) {
        if (d == 0) fail(QISA_ERR_INVALID_MODEL, "tensor '%s' has a zero dimension", v.name.c_str());
        if (elements > std::numeric_limits<uint64_t>::max() / d) {
          fail(QISA_ERR_INVALID_MODEL, "tensor '%s' element count overflows", v.name.c_str());
        }
        elements *= d;
        v.shape.push_back(d);
      }
      v.elements = elements;
      const auto rb = row_bytes(v.dtype, v.cols());
      const uint64_t rows = elements / v.cols();
      if (!rb || (rows != 0 && *rb > std::numeric_limits<uint64_t>::max() / rows)) {
        fail(QISA_ERR_INVALID_MODEL, "tensor '%s' byte size overflows", v.name.c_str());
      }
      v.bytes = *rb * rows;
      const auto* data = t->data();
      if (data->size() != v.bytes) {
        fail(QISA_ERR_INVALID_MODEL, "tensor '%s' has %u data bytes, expected %llu for %s %s", v.name.c_str(),
             data->size(), static_cast<unsigned long long>(v.bytes), dtype_name(v.dtype), shape_str(v.shape).c_str());
      }
      v.data = data->data();
      const auto offset = static_cast<size_t>(v.data - buf_);
      if (offset % kAlign != 0) {
        fail(QISA_ERR_INVALID_MODEL, "tensor '%s' data at file offset %zu is not %zu-byte aligned", v.name.c_str(),
             offset, kAlign);
      }
      model_->n_params += elements;
      out.push_back(std::move(v));
    }
    used_.assign(out.size(), false);
    by_name_.reserve(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
      if (!by_name_.emplace(out[i].name, i).second) {
        fail(QISA_ERR_INVALID_MODEL, "tensor '%s' appears more than once", out[i].name.c_str());
      }
    }
  }

  const TensorView* find(const std::string& name) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return nullptr;
    used_[it->second] = true;
    return &model_->tensors[it->second];
  }

  const TensorView* require(const std::string& name, const std::vector<uint64_t>& shape) {
    const TensorView* t = find(name);
    if (!t)
      fail(QISA_ERR_INVALID_MODEL, "missing tensor '%s' (expected shape %s)", name.c_str(), shape_str(shape).c_str());
    check_shape(*t, shape);
    return t;
  }

  const TensorView* optional(const std::string& name, const std::vector<uint64_t>& shape) {
    const TensorView* t = find(name);
    if (t) check_shape(*t, shape);
    return t;
  }

  static void check_shape(const TensorView& t, const std::vector<uint64_t>& shape) {
    if (t.shape != shape) {
      fail(QISA_ERR_INVALID_MODEL, "tensor '%s' has shape %s, expected %s", t.name.c_str(), shape_str(t.shape).c_str(),
           shape_str(shape).c_str());
    }
  }

  void forbid(const std::string& name, const char* why) {
    if (find(name)) fail(QISA_ERR_INVALID_MODEL, "unexpected tensor '%s': %s", name.c_str(), why);
  }

  void read_tokenizer(const fb::Tokenizer& t) {
    Tokenizer& tok = model_->tokenizer;
    const auto kind = static_cast<unsigned>(t.kind());
    if (kind > 1) fail(QISA_ERR_INVALID_MODEL, "tokenizer.kind is %u, expected 0 (char) or 1 (byte BPE)", kind);
    tok.kind = static_cast<TokenizerKind>(kind);
    const auto& pieces = *t.pieces();
    const uint32_t vocab = model_->config.vocab_size;
    if (pieces.size() != vocab) {
      fail(QISA_ERR_INVALID_MODEL, "tokenizer has %u pieces, expected vocab_size %u", pieces.size(), vocab);
    }
    tok.pieces.reserve(vocab);
    std::unordered_map<std::string_view, uint32_t> seen;
    seen.reserve(vocab);
    for (uint32_t i = 0; i < vocab; ++i) {
      const auto* s = pieces.Get(i);
      const std::string_view piece(s->c_str(), s->size());
      size_t cps = 0;
      if (piece.empty() || !valid_utf8(piece, &cps)) {
        fail(QISA_ERR_INVALID_MODEL, "tokenizer piece %u is %s", i, piece.empty() ? "empty" : "not valid UTF-8");
      }
      if (tok.kind == TokenizerKind::Char && cps != 1) {
        fail(QISA_ERR_INVALID_MODEL, "tokenizer piece %u has %zu characters, expected 1 for a char tokenizer", i, cps);
      }
      if (!seen.emplace(piece, i).second) {
        fail(QISA_ERR_INVALID_MODEL, "tokenizer pieces %u and %u are the same", seen[piece], i);
      }
      if (tok.kind == TokenizerKind::ByteBPE) {
        std::string raw;
        if (!bpe::from_stored(piece, &raw)) {
          fail(QISA_ERR_INVALID_MODEL, "tokenizer piece %u has a character outside GPT-2's byte map", i);
        }
        tok.pieces.push_back(std::move(raw));
      } else {
        tok.pieces.emplace_back(piece);
      }
    }
    if (tok.kind == TokenizerKind::Char && t.merges() && t.merges()->size() > 0) {
      fail(QISA_ERR_INVALID_MODEL, "a char tokenizer has %u merges, expected none", t.merges()->size());
    }
    if (tok.kind == TokenizerKind::ByteBPE) read_merges(t, seen);
    if (tok.kind == TokenizerKind::Char) {
      for (uint32_t i = 0; i < vocab; ++i) {
        size_t at = 0;
        uint32_t cp = 0;
        utf8_next(tok.pieces[i], at, &cp);  // validated above
        tok.char_index.emplace_back(cp, static_cast<int32_t>(i));
      }
      std::sort(tok.char_index.begin(), tok.char_index.end());
    }
    auto id = [&](const char* field, int32_t v) {
      if (v < -1 || v >= static_cast<int64_t>(vocab)) {
        fail(QISA_ERR_INVALID_MODEL, "tokenizer.%s is %d, expected -1..%u", field, v, vocab - 1);
      }
      return v;
    };
    tok.bos_id = id("bos_id", t.bos_id());
    tok.eos_id = id("eos_id", t.eos_id());
    tok.unk_id = id("unk_id", t.unk_id());
  }

  // "left right" per rank, both stored pieces, whose concatenation is a
  // piece too; every byte must be a piece (byte fallback).
  void read_merges(const fb::Tokenizer& t, const std::unordered_map<std::string_view, uint32_t>& id_of) {
    Tokenizer& tok = model_->tokenizer;
    std::vector<std::pair<int32_t, int32_t>> pairs;
    std::vector<int32_t> merged;
    std::string joined;
    if (t.merges()) {
      pairs.reserve(t.merges()->size());
      merged.reserve(t.merges()->size());
      for (uint32_t r = 0; r < t.merges()->size(); ++r) {
        const std::string_view m(t.merges()->Get(r)->c_str(), t.merges()->Get(r)->size());
        const size_t sp = m.find(' ');
        if (sp == std::string_view::npos || m.find(' ', sp + 1) != std::string_view::npos) {
          fail(QISA_ERR_INVALID_MODEL, "tokenizer merge %u is not \"left right\"", r);
        }
        const auto left = id_of.find(m.substr(0, sp)), right = id_of.find(m.substr(sp + 1));
        joined.assign(m.substr(0, sp));
        joined.append(m.substr(sp + 1));
        const auto result = id_of.find(joined);
        if (left == id_of.end() || right == id_of.end() || result == id_of.end()) {
          fail(QISA_ERR_INVALID_MODEL, "tokenizer merge %u names a piece the vocabulary lacks (%s)", r,
               left == id_of.end()    ? "left"
               : right == id_of.end() ? "right"
                                      : "their concatenation");
        }
        pairs.emplace_back(static_cast<int32_t>(left->second), static_cast<int32_t>(right->second));
        merged.push_back(static_cast<int32_t>(result->second));
        tok.merges.emplace_back(m);
      }
    }
    for (int b = 0; b < 256; ++b) {
      if (!id_of.count(bpe::to_stored(std::string(1, static_cast<char>(b))))) {
        fail(QISA_ERR_INVALID_MODEL, "byte-level BPE vocabulary has no token for byte 0x%02x", b);
      }
    }
    tok.bpe = bpe::Encoder(tok.pieces, pairs, merged);
  }

  void read_metadata(const flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>* md) {
    if (!md) return;
    for (const auto* kv : *md) {
      if (!model_->metadata.emplace(kv->key()->str(), kv->value()->str()).second) {
        fail(QISA_ERR_INVALID_MODEL, "metadata key '%s' appears more than once", kv->key()->c_str());
      }
    }
  }

  void read_globals() {
    const ModelConfig& c = model_->config;
    model_->tok_emb = require(names::kTokEmb, {c.vocab_size, c.n_embd});
    model_->pos_emb = require(names::kPosEmb, {c.n_ctx, c.n_embd});
    model_->lnf_w = require(names::kLnFWeight, {c.n_embd});
    model_->lnf_b = require(names::kLnFBias, {c.n_embd});
    if (c.tied_lm_head) {
      forbid(names::kLmHeadWeight, "the LM head is tied to tok_emb");
      model_->lm_head.weight = model_->tok_emb;
    } else {
      model_->lm_head.weight = require(names::kLmHeadWeight, {c.vocab_size, c.n_embd});
    }
    model_->lm_head.bias = optional(names::kLmHeadBias, {c.vocab_size});
  }

  void read_layers(const flatbuffers::Vector<flatbuffers::Offset<fb::Layer>>& layers) {
    const ModelConfig& c = model_->config;
    if (layers.size() != c.n_layer) {
      fail(QISA_ERR_INVALID_MODEL, "file has %u layers, expected config.n_layer %u", layers.size(), c.n_layer);
    }
    model_->layers.resize(c.n_layer);
    for (uint32_t l = 0; l < c.n_layer; ++l) {
      Layer& L = model_->layers[l];
      const std::string p = names::layer(static_cast<int>(l));
      L.ln1_w = require(p + names::kLn1Weight, {c.n_embd});
      L.ln1_b = require(p + names::kLn1Bias, {c.n_embd});
      L.ln2_w = require(p + names::kLn2Weight, {c.n_embd});
      L.ln2_b = require(p + names::kLn2Bias, {c.n_embd});
      L.proj = {require(p + names::kProjWeight, {c.n_embd, c.n_embd}), require(p + names::kProjBias, {c.n_embd})};
      L.up = {require(p + names::kUpWeight, {c.n_ff, c.n_embd}), require(p + names::kUpBias, {c.n_ff})};
      L.down = {require(p + names::kDownWeight, {c.n_embd, c.n_ff}), require(p + names::kDownBias, {c.n_embd})};
      const auto& heads = *layers.Get(l)->heads();
      if (heads.size() != c.n_head) {
        fail(QISA_ERR_INVALID_MODEL, "layer %u has %u heads, expected config.n_head %u", l, heads.size(), c.n_head);
      }
      L.heads.resize(c.n_head);
      for (uint32_t h = 0; h < c.n_head; ++h)
        read_head(*heads.Get(h), static_cast<int>(l), static_cast<int>(h), L.heads[h]);
    }
  }

  Linear linear(int l, int h, char role) {
    const ModelConfig& c = model_->config;
    const std::string p = names::proj(l, h, role);
    return {require(p + names::kWeight, {c.head_size(), c.n_embd}), optional(p + names::kBias, {c.head_size()})};
  }

  void read_head(const fb::Head& f, int l, int h, Head& out) {
    const auto raw = static_cast<unsigned>(f.kind());
    const AttentionKind* kind = find_attention_kind(static_cast<int>(raw));
    if (!kind) {
      fail(QISA_ERR_INVALID_MODEL, "layer %d head %d has attention kind %u, expected 0..%zu", l, h, raw,
           attention_kinds().size() - 1);
    }
    out.kind = kind->kind;
    if (kind->score == Score::Dot) {
      if (!(std::isfinite(f.scale()) && f.scale() > 0.0f)) {
        fail(QISA_ERR_INVALID_MODEL, "layer %d head %d %s scale is %g, expected a finite value > 0", l, h, kind->label,
             f.scale());
      }
      out.scale = f.scale();
    }
    // QSAT's selection: a query keeps at most top_k + window positions; the
    // dense kinds store none (a value there would be ignored silently).
    const Sparsity sp{f.top_k(), f.window()};
    if (kind->select == Select::TopK) {
      const uint32_t n_ctx = model_->config.n_ctx;
      if (sp.top_k < 1 || sp.top_k > n_ctx || sp.window > n_ctx) {
        fail(QISA_ERR_INVALID_MODEL,
             "layer %d head %d (%s) has top_k %u and window %u, expected 1 <= top_k <= n_ctx=%u "
             "and window <= n_ctx",
             l, h, kind->label, sp.top_k, sp.window, n_ctx);
      }
      out.sparsity = sp;
    } else if (sp.top_k != 0 || sp.window != 0) {
      fail(QISA_ERR_INVALID_MODEL, "layer %d head %d (%s) has top_k %u and window %u, expected 0 (dense attention)", l,
           h, kind->label, sp.top_k, sp.window);
    }
    const fb::QuantumProjection* stored[] = {f.q(), f.k(), f.v()};
    for (Role role : kAllRoles) {
      const auto r = static_cast<size_t>(role);
      const char letter = role_letter(role);
      const bool quantum = kind->of(role) == Source::Quantum;
      if ((stored[r] != nullptr) != quantum) {
        fail(QISA_ERR_INVALID_MODEL, "layer %d head %d (%s) %s a quantum projection for %c", l, h, kind->label,
             quantum ? "lacks" : "has", letter);
      }
      const std::string p = names::proj(l, h, letter);
      if (quantum) {  // a projection is either linear or quantum, never both
        out.quantum[r] = projection(*stored[r], l, h, letter);
        forbid(p + names::kWeight, "this projection is quantum-inspired");
        forbid(p + names::kBias, "this projection is quantum-inspired");
      } else {
        out.linear[r] = linear(l, h, letter);
      }
    }
  }

  QuantumProjection projection(const fb::QuantumProjection& f, int l, int h, char role) {
    const ModelConfig& c = model_->config;
    const std::string p = names::proj(l, h, role);
    QuantumProjection q;
    const uint32_t n = qubits_for_width(c.n_embd);
    if (f.n_qubits() != n) {
      fail(QISA_ERR_INVALID_MODEL, "projection '%s' has n_qubits %u, expected ceil(log2 n_embd=%u) = %u", p.c_str(),
           f.n_qubits(), c.n_embd, n);
    }
    q.n_qubits = n;
    model_->n_qubits = n;
    const auto enc = static_cast<unsigned>(f.encoding());
    if (enc > 1) fail(QISA_ERR_INVALID_MODEL, "projection '%s' has encoding %u, expected 0 or 1", p.c_str(), enc);
    q.encoding = static_cast<Encoding>(enc);
    const auto circ = static_cast<unsigned>(f.circuit());
    if (circ > 1) fail(QISA_ERR_INVALID_MODEL, "projection '%s' has circuit kind %u, expected 0 or 1", p.c_str(), circ);
    q.circuit = static_cast<CircuitKind>(circ);
    if (q.circuit == CircuitKind::RxRyCnotRy) {
      const uint32_t na = f.angles() ? f.angles()->size() : 0;
      if (na != 3 * n)
        fail(QISA_ERR_INVALID_MODEL, "projection '%s' has %u angles, expected 3n = %u", p.c_str(), na, 3 * n);
      q.angles.assign(f.angles()->begin(), f.angles()->end());
      for (uint32_t i = 0; i < na; ++i) {
        if (!std::isfinite(q.angles[i]))
          fail(QISA_ERR_NUMERIC, "projection '%s' angle %u is %g", p.c_str(), i, q.angles[i]);
      }
    }
    const uint32_t hs = c.head_size();
    const uint32_t np = f.paulis() ? f.paulis()->size() : 0;
    if (np != hs) {
      fail(QISA_ERR_INVALID_MODEL, "projection '%s' has %u Pauli strings, expected head size %u", p.c_str(), np, hs);
    }
    const uint64_t full = (uint64_t{1} << n) - 1;
    if (np > 0) require_aligned(f.paulis()->data(), 8, "Pauli strings of projection", p);
    q.paulis.reserve(np);
    for (uint32_t i = 0; i < np; ++i) {
      const fb::Pauli* ps = f.paulis()->Get(i);
      const PauliString s{ps->x_mask(), ps->z_mask()};
      if ((s.x_mask | s.z_mask) & ~full) {
        fail(QISA_ERR_INVALID_MODEL,
             "projection '%s' Pauli string %u (x_mask 0x%llx, z_mask 0x%llx) is longer than %u qubits", p.c_str(), i,
             static_cast<unsigned long long>(s.x_mask), static_cast<unsigned long long>(s.z_mask), n);
      }
      if ((s.x_mask | s.z_mask) == 0) {
        fail(QISA_ERR_INVALID_MODEL, "projection '%s' Pauli string %u is all identity", p.c_str(), i);
      }
      q.paulis.push_back(s);
    }
    const uint64_t D = uint64_t{1} << n;
    q.unitary_re = require(p + names::kUnitaryRe, {D, D});
    q.unitary_im = require(p + names::kUnitaryIm, {D, D});
    if (f.has_observables()) {
      q.observables_re = require(p + names::kObservablesRe, {hs, D, D});
      q.observables_im = require(p + names::kObservablesIm, {hs, D, D});
    } else {
      forbid(p + names::kObservablesRe, "has_observables is false");
      forbid(p + names::kObservablesIm, "has_observables is false");
    }
    for (const TensorView* t : {q.unitary_re, q.unitary_im, q.observables_re, q.observables_im})
      if (t && !dtype_traits(t->dtype).holds_unitaries)
        fail(QISA_ERR_INVALID_MODEL, "tensor '%s' is stored as %s, which is too coarse for a unitary or observable",
             t->name.c_str(), dtype_name(t->dtype));
    check_unitary(q, p);
    if (q.observables_re && opt_.check_unitaries) check_observables(q, p);
    return q;
  }

  // Finite entries and unit column norms always; with check_unitaries also
  // orthogonality and agreement with the angles on a sample of columns
  // (all of them when D <= 64). Memory O(64 D).
  void check_unitary(const QuantumProjection& q, const std::string& p) {
    const uint64_t D = uint64_t{1} << q.n_qubits;
    const DtypeTraits& tol = dtype_traits(coarser(q.unitary_re->dtype, q.unitary_im->dtype));
    std::vector<uint64_t> sample;
    const uint64_t ns = std::min<uint64_t>(D, 64);
    for (uint64_t i = 0; i < ns; ++i) sample.push_back(ns == D ? i : i * (D - 1) / (ns - 1));
    std::vector<double> norm(D, 0.0);
    std::vector<cplx> cols(ns * D);
    std::vector<float> re(D), im(D);
    for (uint64_t r = 0; r < D; ++r) {
      dequantize_row(q.unitary_re->dtype, q.unitary_re->row(r), D, re.data());
      dequantize_row(q.unitary_im->dtype, q.unitary_im->row(r), D, im.data());
      for (uint64_t c = 0; c < D; ++c) {
        if (!std::isfinite(re[c]) || !std::isfinite(im[c])) {
          fail(QISA_ERR_NUMERIC, "tensor '%s%s' has a non-finite value at [%llu, %llu]", p.c_str(),
               std::isfinite(re[c]) ? names::kUnitaryIm : names::kUnitaryRe, static_cast<unsigned long long>(r),
               static_cast<unsigned long long>(c));
        }
        norm[c] += double(re[c]) * re[c] + double(im[c]) * im[c];
      }
      for (uint64_t s = 0; s < ns; ++s) cols[s * D + r] = cplx(re[sample[s]], im[sample[s]]);
    }
    for (uint64_t c = 0; c < D; ++c) {
      if (std::fabs(norm[c] - 1.0) > tol.unitary_norm_error) {
        fail(QISA_ERR_NUMERIC, "unitary of '%s' is not unitary: column %llu has squared norm %.6g (tolerance %g)",
             p.c_str(), static_cast<unsigned long long>(c), norm[c], tol.unitary_norm_error);
      }
    }
    if (!opt_.check_unitaries) return;
    for (uint64_t s = 0; s + 1 < ns; ++s) {
      cplx dot = 0.0;
      for (uint64_t r = 0; r < D; ++r) dot += std::conj(cols[s * D + r]) * cols[(s + 1) * D + r];
      if (std::abs(dot) > tol.unitary_norm_error) {
        fail(QISA_ERR_NUMERIC, "unitary of '%s' is not unitary: columns %llu and %llu have inner product %.6g",
             p.c_str(), static_cast<unsigned long long>(sample[s]), static_cast<unsigned long long>(sample[s + 1]),
             std::abs(dot));
      }
    }
    if (q.circuit != CircuitKind::RxRyCnotRy) return;
    std::vector<cplx> expect(D);
    for (uint64_t s = 0; s < ns; ++s) {
      circuit_column(q.n_qubits, q.angles, sample[s], expect);
      double worst = 0.0;
      for (uint64_t r = 0; r < D; ++r) worst = std::max(worst, std::abs(expect[r] - cols[s * D + r]));
      if (worst > tol.unitary_element_error) {
        fail(QISA_ERR_NUMERIC,
             "unitary of '%s' does not match its angles: max |dU| = %.3g in column %llu (tolerance %g)", p.c_str(),
             worst, static_cast<unsigned long long>(sample[s]), tol.unitary_element_error);
      }
    }
  }

  // O'_k = U^dag P_k U, checked on one probe vector x: O'_k x vs U^dag P_k U x.
  void check_observables(const QuantumProjection& q, const std::string& p) {
    const uint64_t D = uint64_t{1} << q.n_qubits;
    const DtypeTraits& tol = dtype_traits(coarser(coarser(q.unitary_re->dtype, q.unitary_im->dtype),
                                                  coarser(q.observables_re->dtype, q.observables_im->dtype)));
    std::vector<double> x(D);
    double nx = 0.0;
    for (uint64_t i = 0; i < D; ++i) {
      x[i] = std::sin(1.0 + 0.7 * static_cast<double>(i));
      nx += x[i] * x[i];
    }
    for (double& v : x) v /= std::sqrt(nx);
    std::vector<float> re(D), im(D);
    std::vector<cplx> ux(D, 0.0), pux(D), want(D);
    for (uint64_t r = 0; r < D; ++r) {
      dequantize_row(q.unitary_re->dtype, q.unitary_re->row(r), D, re.data());
      dequantize_row(q.unitary_im->dtype, q.unitary_im->row(r), D, im.data());
      cplx acc = 0.0;
      for (uint64_t c = 0; c < D; ++c) acc += cplx(re[c], im[c]) * x[c];
      ux[r] = acc;
    }
    for (size_t k = 0; k < q.paulis.size(); ++k) {
      apply_pauli(q.paulis[k], ux, pux);
      std::fill(want.begin(), want.end(), cplx(0.0));
      for (uint64_t r = 0; r < D; ++r) {  // want = U^dag pux, row by row of U
        dequantize_row(q.unitary_re->dtype, q.unitary_re->row(r), D, re.data());
        dequantize_row(q.unitary_im->dtype, q.unitary_im->row(r), D, im.data());
        for (uint64_t c = 0; c < D; ++c) want[c] += std::conj(cplx(re[c], im[c])) * pux[r];
      }
      double worst = 0.0;
      for (uint64_t r = 0; r < D; ++r) {
        const uint64_t row = k * D + r;
        dequantize_row(q.observables_re->dtype, q.observables_re->row(row), D, re.data());
        dequantize_row(q.observables_im->dtype, q.observables_im->row(row), D, im.data());
        cplx acc = 0.0;
        for (uint64_t c = 0; c < D; ++c) {
          if (!std::isfinite(re[c]) || !std::isfinite(im[c])) {
            fail(QISA_ERR_NUMERIC, "observables of '%s' have a non-finite value in observable %zu", p.c_str(), k);
          }
          acc += cplx(re[c], im[c]) * x[c];
        }
        worst = std::max(worst, std::abs(acc - want[r]));
      }
      if (worst > 4 * tol.unitary_element_error * std::sqrt(static_cast<double>(D)) + tol.unitary_element_error) {
        fail(QISA_ERR_NUMERIC, "observable %zu of '%s' does not equal U^dag P U: max error %.3g on a probe vector", k,
             p.c_str(), worst);
      }
    }
  }

  void check_all_finite() {
    std::vector<float> row;
    for (const TensorView& t : model_->tensors) {
      row.resize(t.cols());
      for (uint64_t r = 0; r < t.rows(); ++r) {
        dequantize_row(t.dtype, t.row(r), t.cols(), row.data());
        for (uint64_t c = 0; c < t.cols(); ++c) {
          if (!std::isfinite(row[c])) {
            fail(QISA_ERR_NUMERIC, "tensor '%s' has a non-finite value in row %llu, column %llu", t.name.c_str(),
                 static_cast<unsigned long long>(r), static_cast<unsigned long long>(c));
          }
        }
      }
    }
  }

  LoadOptions opt_;
  std::unique_ptr<Model> model_;
  const uint8_t* buf_ = nullptr;
  size_t size_ = 0;
  std::unordered_map<std::string_view, size_t> by_name_;
  std::vector<bool> used_;
};

}  // namespace

std::unique_ptr<Model> load_model(std::unique_ptr<ModelStorage> storage, const LoadOptions& options) {
  return Loader(std::move(storage), options).run();
}

std::unique_ptr<Model> load_model_file(const std::string& path, const LoadOptions& options) {
  return load_model(map_file(path), options);
}

}  // namespace qisa
