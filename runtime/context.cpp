#include "context.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "context_budget.h"
#include "error.h"
#include "forward.h"
#include "hash.h"
#include "overflow_window.h"
#include "registry.h"
#include "sampler.h"

namespace qisa {

namespace {

constexpr uint32_t kStateMagic = 0x53564b51u;  // "QKVS"
constexpr uint32_t kStateVersion = 2;
constexpr size_t kStateChecksumAt = 8 * sizeof(uint32_t) + 8;
constexpr size_t kStateHeader = kStateChecksumAt + 8;

BackendOptions backend_options(const Model& m, const qisa_context_params& p, int32_t threads) {
  BackendOptions o;
  o.threads = threads;
  o.value_path = p.value_path;  // engines without a gate path read gates and auto as unitary
  o.max_rows = context_max_rows(m.config, p);
  o.max_sequences = p.max_sequences;
  return o;
}

}  // namespace

Context::Context(const Model& model, DeviceSlots& slots, const qisa_context_params& params, int32_t threads)
    : model_(model),
      params_(params),
      threads_(threads),
      chosen_(choose_backend(model, slots, params, backend_options(model, params, threads))),
      backend_(chosen_.backend.get()),
      tokens_(static_cast<size_t>(params.max_sequences)),
      logits_(static_cast<size_t>(params.max_batch) * model.config.vocab_size),
      argmax_(static_cast<size_t>(params.max_batch), 0),
      has_logits_(static_cast<size_t>(params.max_batch), 0),
      window_(static_cast<size_t>(params.max_sequences)),
      touch_(static_cast<size_t>(params.max_sequences), kUntouched),
      has_pending_(static_cast<size_t>(params.max_sequences), 0) {
  pending_.reserve(static_cast<size_t>(backend_->max_rows()));
  touched_.reserve(static_cast<size_t>(params.max_sequences));
  for (auto& w : window_) w.reserve(model.config.n_ctx);
  for (auto& t : tokens_) t.reserve(model.config.n_ctx);
}

void Context::check_seq(int32_t seq) const {
  if (seq < 0 || seq >= params_.max_sequences) {
    fail(QISA_ERR_OUT_OF_RANGE, "sequence id %d is out of range 0..%d (max_sequences)", seq, params_.max_sequences - 1);
  }
}

size_t Context::kept_on_overflow() const {
  return qisa::kept_on_overflow(model_.config.n_ctx, params_.overflow);
}

void Context::check_causal() const {
  if (model_.config.reference_transposed) {
    fail(QISA_ERR_NOT_CAUSAL,
         "the model was trained with the research code's transposed (non-causal) attention, which reads future "
         "tokens: it cannot decode or generate; qisa_evaluate_window evaluates whole windows of it");
  }
}

void Context::check_window(int32_t seq, std::span<const int32_t> tokens) const {
  const ModelConfig& c = model_.config;
  check_seq(seq);
  const size_t n = tokens.size();
  if (n > c.n_ctx) fail(QISA_ERR_OUT_OF_RANGE, "%zu tokens are more than one window (n_ctx %u)", n, c.n_ctx);
  if (c.reference_transposed && n > static_cast<size_t>(backend_->max_rows())) {
    fail(QISA_ERR_OUT_OF_RANGE,
         "%zu tokens are more than this context runs in one pass (%lld rows; raise max_batch): a transposed model's "
         "window must be evaluated whole",
         n, static_cast<long long>(backend_->max_rows()));
  }
  for (size_t i = 0; i < n; ++i) {
    if (!c.valid_token(tokens[i]))
      fail(QISA_ERR_OUT_OF_RANGE, "token %d at %zu is outside the vocabulary 0..%u", tokens[i], i, c.vocab_size - 1);
  }
}

template <class Pass>
void Context::run_window(int32_t seq, std::span<const int32_t> tokens, Pass&& pass) {
  const size_t n = tokens.size();
  seq_tokens(seq).clear();  // its positions are rewritten from 0; empty if the computation fails
  std::vector<Row> rows;
  const auto per_pass = static_cast<size_t>(backend_->max_rows());
  for (size_t at = 0; at < n; at += per_pass) {
    rows.clear();
    for (size_t i = at; i < std::min(n, at + per_pass); ++i)
      rows.push_back(Row{seq, static_cast<int32_t>(i), tokens[i], -1});
    pass(std::span<Row>(rows), at);
  }
  seq_tokens(seq).assign(tokens.begin(), tokens.end());
}

void Context::probe(int32_t seq, std::span<const int32_t> tokens, qisa_probe what, int32_t layer, float* out,
                    size_t out_count) {
  const ModelConfig& c = model_.config;
  check_window(seq, tokens);
  const size_t n = tokens.size();
  // Layer inputs exist for 0..n_layer (n_layer: the last layer's output).
  const int32_t last = static_cast<int32_t>(c.n_layer) - (what == QISA_PROBE_LAYER_INPUT ? 0 : 1);
  if (layer < 0 || layer > last) fail(QISA_ERR_OUT_OF_RANGE, "layer %d is out of range 0..%d", layer, last);
  const size_t d = c.n_embd;
  if (out_count / d < n)
    fail(QISA_ERR_BUFFER_TOO_SMALL, "out has room for %zu floats, %zu needed (%zu tokens x n_embd %zu)", out_count,
         n * d, n, d);
  run_window(seq, tokens, [&](std::span<Row> rows, size_t at) {
    const ProbePoint p{what, layer, out + at * d};
    backend_->probe(rows, p);
  });
}

void Context::evaluate_window(int32_t seq, std::span<const int32_t> tokens, float* logits, size_t count) {
  check_window(seq, tokens);
  const size_t n = tokens.size(), V = model_.config.vocab_size;
  if (count / V < n)
    fail(QISA_ERR_BUFFER_TOO_SMALL, "logits has room for %zu floats, %zu needed (%zu tokens x vocab %zu)", count, n * V,
         n, V);
  run_window(seq, tokens, [&](std::span<Row> rows, size_t at) {
    for (size_t i = 0; i < rows.size(); ++i) rows[i].logits_slot = static_cast<int32_t>(i);
    backend_->forward(rows, logits + at * V, nullptr);
    check_logits_finite(rows, logits + at * V);
  });
}

size_t Context::window_after(size_t n_tokens) const {
  return qisa::window_after(model_.config.n_ctx, params_.overflow, n_tokens);
}

void Context::run_pending() {
  if (pending_.empty()) return;
  if (output_ == Output::Argmax && backend_->caps().device_argmax) {
    backend_->forward(pending_, nullptr, argmax_.data());
    for (const Row& r : pending_) {  // -1: a logit of the row was not finite (backend.h)
      if (r.logits_slot >= 0 && argmax_[static_cast<size_t>(r.logits_slot)] < 0) fail_not_finite(r, "a logit");
    }
  } else {
    backend_->forward(pending_, logits_.data(), nullptr);
    check_logits_finite(pending_, logits_.data());
    if (output_ == Output::Argmax) {
      const int32_t V = static_cast<int32_t>(model_.config.vocab_size);
      for (const Row& r : pending_) {
        if (r.logits_slot >= 0)
          argmax_[static_cast<size_t>(r.logits_slot)] =
              qisa::argmax(logits_.data() + static_cast<size_t>(r.logits_slot) * V, V);
      }
    }
  }
  for (const Row& r : pending_) has_pending_[static_cast<size_t>(r.seq)] = 0;
  pending_.clear();
}

// A logit that is not finite means a value overflowed f32 on the way: the
// model's weights, or a loaded sequence state whose finite keys or values
// are far outside what the model computes (qisa_seq_state_load checks
// what it can without a forward pass). The decode fails rather than hand
// out NaN or infinity with QISA_OK. rows' logits_slot index `logits`.
void Context::check_logits_finite(std::span<const Row> rows, const float* logits) const {
  const auto V = static_cast<size_t>(model_.config.vocab_size);
  for (const Row& r : rows) {
    if (r.logits_slot < 0) continue;
    const float* l = logits + static_cast<size_t>(r.logits_slot) * V;
    bool finite = true;  // branch-free over the row (vectorized); NaN compares false
    for (size_t i = 0; i < V; ++i) finite &= std::fabs(l[i]) <= std::numeric_limits<float>::max();
    if (finite) continue;
    for (size_t i = 0; i < V; ++i) {
      if (!std::isfinite(l[i]))
        fail_not_finite(r, ("logit " + std::to_string(i) + " (" + std::to_string(l[i]) + ")").c_str());
    }
  }
}

void Context::fail_not_finite(const Row& r, const char* what) {
  fail(QISA_ERR_NUMERIC,
       "sequence %d, position %d: %s is not finite; a value overflowed f32 (the model's weights, or a loaded "
       "sequence state far outside what the model computes)",
       r.seq, r.pos, what);
}

void Context::push(const Row& row) {
  if (pending_.size() == static_cast<size_t>(backend_->max_rows())) run_pending();
  pending_.push_back(row);
  has_pending_[static_cast<size_t>(row.seq)] = 1;
}

void Context::decode(std::span<const qisa_batch_entry> entries, Output output) {
  check_causal();
  const ModelConfig& c = model_.config;
  const auto n = static_cast<int64_t>(entries.size());
  if (n > params_.max_batch) {
    fail(QISA_ERR_OUT_OF_RANGE, "batch of %lld entries is larger than max_batch %d", static_cast<long long>(n),
         params_.max_batch);
  }
  // Validate everything before touching any state.
  for (int64_t i = 0; i < n; ++i) {
    const qisa_batch_entry& e = entries[static_cast<size_t>(i)];
    if (e.seq_id < 0 || e.seq_id >= params_.max_sequences) {
      fail(QISA_ERR_OUT_OF_RANGE, "entry %lld: sequence id %d is out of range 0..%d (max_sequences)",
           static_cast<long long>(i), e.seq_id, params_.max_sequences - 1);
    }
    if (!c.valid_token(e.token)) {
      fail(QISA_ERR_OUT_OF_RANGE, "entry %lld: token %d is out of range 0..%u", static_cast<long long>(i), e.token,
           c.vocab_size - 1);
    }
  }
  if (params_.overflow == QISA_OVERFLOW_ERROR) {
    for (int64_t i = 0; i < n; ++i) {
      const int32_t s = entries[static_cast<size_t>(i)].seq_id;
      int64_t count = 0;
      for (int64_t j = 0; j < n; ++j) count += entries[static_cast<size_t>(j)].seq_id == s;
      if (static_cast<int64_t>(seq_tokens(s).size()) + count > c.n_ctx) {
        fail(QISA_ERR_CONTEXT_FULL, "sequence %d would hold %lld tokens, more than n_ctx %u (overflow policy: error)",
             s, static_cast<long long>(static_cast<int64_t>(seq_tokens(s).size()) + count), c.n_ctx);
      }
    }
  }

  std::fill(has_logits_.begin(), has_logits_.end(), 0);
  last_entries_ = 0;
  output_ = output;
  // Rows run in passes of at most max_rows (a re-evaluated window may take
  // several); window_[s] is what sequence s holds once its rows have run,
  // and becomes its cached token list when every pass has succeeded.
  try {
    for (int64_t i = 0; i < n; ++i) {
      const qisa_batch_entry& e = entries[static_cast<size_t>(i)];
      const auto s = static_cast<size_t>(e.seq_id);
      if (touch_[s] == kUntouched) {
        window_[s] = seq_tokens(e.seq_id);
        touch_[s] = kAppended;
        touched_.push_back(e.seq_id);
      }
      std::vector<int32_t>& win = window_[s];
      const int32_t slot = e.logits ? static_cast<int32_t>(i) : -1;
      if (win.size() == c.n_ctx) {
        // The window is full: drop its oldest tokens and re-evaluate the
        // rest from position 0. Rows pending for this sequence must be in
        // the cache before its positions are rewritten.
        if (has_pending_[s]) run_pending();
        touch_[s] = kSlid;
        win.erase(win.begin(), win.end() - static_cast<std::ptrdiff_t>(kept_on_overflow()));
        for (size_t p = 0; p < win.size(); ++p) push({e.seq_id, static_cast<int32_t>(p), win[p], -1});
      }
      push({e.seq_id, static_cast<int32_t>(win.size()), e.token, slot});
      win.push_back(e.token);
    }
    run_pending();
  } catch (...) {
    // Appended rows only wrote positions past what a sequence holds, so it
    // keeps its tokens; a re-evaluated window rewrote its positions from 0,
    // so that sequence is emptied.
    for (const Row& r : pending_) has_pending_[static_cast<size_t>(r.seq)] = 0;
    pending_.clear();
    for (int32_t s : touched_) {
      if (touch_[static_cast<size_t>(s)] == kSlid) seq_tokens(s).clear();
      touch_[static_cast<size_t>(s)] = kUntouched;
    }
    touched_.clear();
    throw;
  }
  for (int32_t s : touched_) {
    seq_tokens(s) = window_[static_cast<size_t>(s)];
    touch_[static_cast<size_t>(s)] = kUntouched;
  }
  touched_.clear();
  for (int64_t i = 0; i < n; ++i) has_logits_[static_cast<size_t>(i)] = entries[static_cast<size_t>(i)].logits != 0;
  last_entries_ = static_cast<int32_t>(n);
}

void Context::check_entry(int32_t index) const {
  if (index < 0 || index >= last_entries_) {
    fail(QISA_ERR_OUT_OF_RANGE, "entry %d is out of range: the last decode had %d entries", index, last_entries_);
  }
  if (!has_logits_[static_cast<size_t>(index)])
    fail(QISA_ERR_INVALID_ARGUMENT, "entry %d did not ask for logits", index);
}

const float* Context::logits(int32_t index) const {
  check_entry(index);
  if (output_ != Output::Logits)
    fail(QISA_ERR_INVALID_ARGUMENT, "entry %d: the last decode brought back only the argmax of its logits", index);
  return logits_.data() + static_cast<size_t>(index) * model_.config.vocab_size;
}

int32_t Context::argmax(int32_t index) const {
  check_entry(index);
  if (output_ != Output::Argmax) return qisa::argmax(logits(index), static_cast<int32_t>(model_.config.vocab_size));
  return argmax_[static_cast<size_t>(index)];
}

int32_t Context::length(int32_t seq) const {
  check_seq(seq);
  return static_cast<int32_t>(seq_tokens(seq).size());
}

void Context::clear(int32_t seq) {
  if (seq == -1) {
    for (auto& t : tokens_) t.clear();
    return;
  }
  check_seq(seq);
  seq_tokens(seq).clear();
}

void Context::truncate(int32_t seq, int32_t n) {
  check_seq(seq);
  auto& t = seq_tokens(seq);
  if (n < 0 || static_cast<size_t>(n) > t.size()) {
    fail(QISA_ERR_OUT_OF_RANGE, "cannot truncate sequence %d of %zu tokens to %d", seq, t.size(), n);
  }
  t.resize(static_cast<size_t>(n));
}

// Layout (version 2): 8 u32 (magic, version, n_layer, n_embd, n_head,
// n_ctx, vocab, length), u64 identity of the model, u64 checksum of the
// first 40 header bytes and the payload; then the payload: i32
// tokens[length], then per layer K, V [length, n_embd] and |k|^2
// [length, n_head] as f32.
namespace {

size_t state_bytes(const ModelConfig& c, size_t len) {
  return kStateHeader + len * 4 + c.n_layer * len * (2 * c.n_embd + c.n_head) * 4;
}

uint64_t state_checksum(const uint8_t* state, size_t size) {
  return hash64(state + kStateHeader, size - kStateHeader, hash64(state, kStateChecksumAt));
}

// Every check of a state's payload, on the caller's bytes, before anything
// changes: tokens in range, finite keys/values/norms, each stored |k|^2
// equal to the keys' (a state edited by hand or from another build of the
// keys would otherwise give NaN or wrong logits with QISA_OK).
void check_state_payload(const ModelConfig& c, const uint8_t* p, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    int32_t t;
    std::memcpy(&t, p + 4 * i, 4);
    if (!c.valid_token(t))
      fail(QISA_ERR_INVALID_ARGUMENT, "state: token %zu is %d, out of range 0..%u", i, t, c.vocab_size - 1);
  }
  p += len * 4;
  const size_t d = c.n_embd, H = c.n_head, hs = c.head_size();
  auto value = [](const uint8_t* at) {
    float f;
    std::memcpy(&f, at, 4);
    return f;
  };
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    const uint8_t* keys = p;
    const uint8_t* norms = p + 2 * len * d * 4;
    for (size_t i = 0; i < len * (2 * d + H); ++i) {
      if (!std::isfinite(value(p + 4 * i)))
        fail(QISA_ERR_INVALID_ARGUMENT, "state: layer %u holds a non-finite value (%g)", l, value(p + 4 * i));
    }
    for (size_t t = 0; t < len; ++t) {
      for (size_t h = 0; h < H; ++h) {
        double sum = 0;
        for (size_t i = 0; i < hs; ++i) {
          const double k = value(keys + 4 * (t * d + h * hs + i));
          sum += k * k;
        }
        const double stored = value(norms + 4 * (t * H + h));
        if (std::fabs(stored - sum) > 1e-3 * std::max(1.0, sum)) {
          fail(QISA_ERR_INVALID_ARGUMENT, "state: layer %u position %zu head %zu stores |k|^2 = %g, its keys give %g",
               l, t, h, stored, sum);
        }
      }
    }
    p += len * (2 * d + H) * 4;
  }
}

}  // namespace

size_t Context::state_size(int32_t seq) const {
  return state_bytes(model_.config, static_cast<size_t>(length(seq)));
}

void Context::save_state(int32_t seq, uint8_t* out) {
  const ModelConfig& c = model_.config;
  const auto& tokens = seq_tokens(seq);
  const uint32_t head[8] = {kStateMagic, kStateVersion, c.n_layer,    c.n_embd,
                            c.n_head,    c.n_ctx,       c.vocab_size, static_cast<uint32_t>(tokens.size())};
  const uint64_t identity = model_.identity();
  uint8_t* const start = out;
  std::memcpy(out, head, sizeof head);
  std::memcpy(out + sizeof head, &identity, 8);
  out += kStateHeader;
  if (!tokens.empty()) std::memcpy(out, tokens.data(), tokens.size() * 4);
  out += tokens.size() * 4;
  backend_->save_kv(seq, static_cast<int64_t>(tokens.size()), out);
  const uint64_t sum = state_checksum(start, state_size(seq));
  std::memcpy(start + kStateChecksumAt, &sum, 8);
}

void Context::load_state(int32_t seq, const uint8_t* data, size_t size) {
  check_seq(seq);
  const ModelConfig& c = model_.config;
  if (size < kStateHeader) fail(QISA_ERR_INVALID_ARGUMENT, "state is %zu bytes, shorter than its header", size);
  uint32_t head[8];
  std::memcpy(head, data, sizeof head);
  if (head[0] != kStateMagic || head[1] != kStateVersion) {
    fail(QISA_ERR_INVALID_ARGUMENT, "not a libqisa sequence state (or version %u, expected %u)", head[1],
         kStateVersion);
  }
  const uint32_t want[5] = {c.n_layer, c.n_embd, c.n_head, c.n_ctx, c.vocab_size};
  static const char* const kFields[5] = {"n_layer", "n_embd", "n_head", "n_ctx", "vocab_size"};
  for (int i = 0; i < 5; ++i) {
    if (head[2 + i] != want[i]) {
      fail(QISA_ERR_INVALID_ARGUMENT, "state was saved for a model with %s %u, this model has %u", kFields[i],
           head[2 + i], want[i]);
    }
  }
  uint64_t identity, sum;
  std::memcpy(&identity, data + sizeof head, 8);
  std::memcpy(&sum, data + kStateChecksumAt, 8);
  if (identity != model_.identity()) {
    fail(QISA_ERR_INVALID_ARGUMENT,
         "state was saved from a different model (identity %016llx, this model %016llx; same shape, other weights)",
         static_cast<unsigned long long>(identity), static_cast<unsigned long long>(model_.identity()));
  }
  const size_t len = head[7];
  if (len > c.n_ctx) fail(QISA_ERR_INVALID_ARGUMENT, "state holds %zu tokens, more than n_ctx %u", len, c.n_ctx);
  const size_t need = state_bytes(c, len);
  if (size != need) fail(QISA_ERR_INVALID_ARGUMENT, "state is %zu bytes, expected %zu", size, need);
  if (state_checksum(data, size) != sum) fail(QISA_ERR_INVALID_ARGUMENT, "state is corrupt (checksum mismatch)");
  const uint8_t* p = data + kStateHeader;
  check_state_payload(c, p, len);
  std::vector<int32_t> tokens(len);
  if (len > 0) std::memcpy(tokens.data(), p, len * 4);
  p += len * 4;
  seq_tokens(seq).clear();  // stays empty if the copy below fails half-way
  backend_->load_kv(seq, static_cast<int64_t>(len), p);
  seq_tokens(seq) = std::move(tokens);
}

}  // namespace qisa
