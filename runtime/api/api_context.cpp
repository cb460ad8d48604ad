// C API: contexts, decoding, sequences and their saved state.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <thread>

#include "api_context.h"
#include "api_model.h"
#include "context_budget.h"

namespace qisa {

namespace {

qisa_context_params resolve(const qisa_context_params* in) {
  qisa_context_params p;
  qisa_context_default_params(&p);
  if (in == nullptr) return p;
  // Callers built against 0.1 pass the struct without max_memory_bytes,
  // those built against 0.2 and 0.3 without allow_non_causal.
  constexpr size_t kSize01 = offsetof(qisa_context_params, max_memory_bytes);
  constexpr size_t kSize03 = offsetof(qisa_context_params, allow_non_causal);
  if (in->struct_size != sizeof(qisa_context_params) && in->struct_size != kSize01 && in->struct_size != kSize03) {
    fail(QISA_ERR_INVALID_ARGUMENT, "params->struct_size is %zu, expected %zu (call qisa_context_default_params first)",
         in->struct_size, sizeof(qisa_context_params));
  }
  std::memcpy(&p, in, in->struct_size);
  p.struct_size = sizeof(qisa_context_params);
  auto range = [](const char* name, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      fail(QISA_ERR_INVALID_ARGUMENT, "params->%s is %lld, expected %lld..%lld", name, static_cast<long long>(v),
           static_cast<long long>(lo), static_cast<long long>(hi));
    }
  };
  range("n_threads", p.n_threads, 0, 1024);
  range("backend", enum_bits(p.backend), QISA_BACKEND_AUTO, QISA_BACKEND_CUDA);
  range("engine", enum_bits(p.engine), QISA_ENGINE_FAST, QISA_ENGINE_REFERENCE);
  range("max_sequences", p.max_sequences, 1, 1 << 16);
  range("max_batch", p.max_batch, 1, 1 << 16);
  range("value_path", enum_bits(p.value_path), QISA_VALUE_PATH_AUTO, QISA_VALUE_PATH_GATES);
  range("overflow", enum_bits(p.overflow), QISA_OVERFLOW_SLIDE, QISA_OVERFLOW_ERROR);
  range("allow_non_causal", p.allow_non_causal, 0, 1);
  return p;
}

// Small models run fastest on one thread: their GEMMs are too small to split.
int32_t auto_threads(const Model& m) {
  const int32_t hw = std::max(1u, std::thread::hardware_concurrency());
  return m.config.n_embd < 256 ? 1 : std::min(hw, 4);
}

int32_t threads_of(const Model& m, const qisa_context_params& p) {
  return p.n_threads > 0 ? p.n_threads : auto_threads(m);
}

}  // namespace
}  // namespace qisa

extern "C" {

void qisa_context_default_params(qisa_context_params* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->n_threads = 0;
  p->backend = QISA_BACKEND_AUTO;
  p->engine = QISA_ENGINE_FAST;
  p->max_sequences = 1;
  p->max_batch = 64;
  p->value_path = QISA_VALUE_PATH_AUTO;
  p->overflow = QISA_OVERFLOW_SLIDE;
  p->max_memory_bytes = 0;
}

qisa_status qisa_context_create(const qisa_model* model, const qisa_context_params* params, qisa_context** out,
                                char* errmsg, size_t errmsg_size) {
  std::string msg;
  const qisa_status st = qisa::guarded(msg, [&] {
    if (out == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "out_context is NULL");
    *out = nullptr;
    if (model == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "model is NULL");
    const qisa_context_params p = qisa::resolve(params);
    const qisa::Model& m = qisa::model_of(model);
    if (m.config.reference_transposed && !p.allow_non_causal) {
      qisa::fail(QISA_ERR_NOT_CAUSAL,
                 "the model was trained with the research code's transposed (non-causal) attention, which reads "
                 "future tokens; it cannot generate text (retrain it without --reference-transpose). To evaluate "
                 "it, create the context with allow_non_causal and use qisa_evaluate_window (as qisa-eval does)");
    }
    const int32_t threads = qisa::threads_of(m, p);
    qisa::check_context_budget(m, p, threads);  // before anything is allocated
    auto ctx = std::make_unique<qisa_context>();
    ctx->impl = std::make_unique<qisa::Context>(m, model->device, p, threads);
    if (m.config.reference_transposed && !ctx->impl->supports_transposed()) {
      qisa::fail(QISA_ERR_UNSUPPORTED,
                 "the %s backend cannot run the research code's transposed attention; use the CPU backend",
                 ctx->impl->backend_info().c_str());
    }
    *out = ctx.release();
  });
  if (st != QISA_OK && out) *out = nullptr;
  qisa::copy_message(st == QISA_OK ? std::string() : msg, errmsg, errmsg_size);
  return st;
}

qisa_status qisa_context_memory_estimate(const qisa_model* model, const qisa_context_params* params,
                                         uint64_t* out_bytes, char* errmsg, size_t errmsg_size) {
  std::string msg;
  const qisa_status st = qisa::guarded(msg, [&] {
    if (model == nullptr || out_bytes == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "model or out_bytes is NULL");
    const qisa_context_params p = qisa::resolve(params);
    const qisa::Model& m = qisa::model_of(model);
    *out_bytes = qisa::context_memory_bytes(m, p, qisa::threads_of(m, p));
  });
  qisa::copy_message(st == QISA_OK ? std::string() : msg, errmsg, errmsg_size);
  return st;
}

void qisa_context_free(qisa_context* ctx) {
  std::unique_ptr<qisa_context> owned(ctx);
}

const char* qisa_context_last_error(const qisa_context* ctx) {
  return ctx == nullptr ? "context is NULL" : ctx->last_error.c_str();
}

qisa_backend qisa_context_backend(const qisa_context* ctx) {
  return ctx == nullptr ? QISA_BACKEND_AUTO : ctx->impl->backend();
}

const char* qisa_context_backend_info(const qisa_context* ctx) {
  return ctx == nullptr ? "context is NULL" : ctx->impl->backend_info().c_str();
}

int32_t qisa_context_threads(const qisa_context* ctx) {
  return ctx == nullptr ? 0 : ctx->impl->threads();
}

qisa_status qisa_decode(qisa_context* ctx, const qisa_batch_entry* entries, int32_t n) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    if (n < 0 || (n > 0 && entries == nullptr))
      qisa::fail(QISA_ERR_INVALID_ARGUMENT, "entries is NULL or n_entries < 0");
    ctx->impl->decode({entries, static_cast<size_t>(n)});
  });
}

qisa_status qisa_evaluate_window(qisa_context* ctx, int32_t seq_id, const int32_t* tokens, int32_t n_tokens,
                                 float* logits, size_t logits_count) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    if (tokens == nullptr || logits == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "tokens or logits is NULL");
    if (n_tokens < 1) qisa::fail(QISA_ERR_OUT_OF_RANGE, "n_tokens is %d, expected at least 1", n_tokens);
    ctx->impl->evaluate_window(seq_id, {tokens, static_cast<size_t>(n_tokens)}, logits, logits_count);
  });
}

qisa_status qisa_context_probe(qisa_context* ctx, int32_t seq_id, const int32_t* tokens, int32_t n_tokens,
                               qisa_probe what, int32_t layer, float* out, size_t out_count) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    if (tokens == nullptr || out == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "tokens or out is NULL");
    if (n_tokens <= 0) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "n_tokens is %d, expected at least 1", n_tokens);
    // A C caller may pass any int: read the bits, never the enum, until checked.
    const int bits = qisa::enum_bits(what);
    if (bits < QISA_PROBE_LAYER_INPUT || bits > QISA_PROBE_KEYS)
      qisa::fail(QISA_ERR_INVALID_ARGUMENT, "what is %d, expected 0..2 (qisa_probe)", bits);
    ctx->impl->probe(seq_id, {tokens, static_cast<size_t>(n_tokens)}, static_cast<qisa_probe>(bits), layer, out,
                     out_count);
  });
}

qisa_status qisa_decode_greedy(qisa_context* ctx, const qisa_batch_entry* entries, int32_t n, int32_t* out) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    if (n < 0 || (n > 0 && (entries == nullptr || out == nullptr)))
      qisa::fail(QISA_ERR_INVALID_ARGUMENT, "entries or out_tokens is NULL, or n_entries < 0");
    ctx->impl->decode({entries, static_cast<size_t>(n)}, qisa::Context::Output::Argmax);
    for (int32_t i = 0; i < n; ++i) out[i] = entries[i].logits ? ctx->impl->argmax(i) : -1;
  });
}

qisa_status qisa_get_logits(qisa_context* ctx, int32_t index, const float** out) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    if (out == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "out_logits is NULL");
    *out = ctx->impl->logits(index);
  });
}

qisa_status qisa_seq_length(qisa_context* ctx, int32_t seq, int32_t* out) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    if (out == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "out_length is NULL");
    *out = ctx->impl->length(seq);
  });
}

qisa_status qisa_seq_clear(qisa_context* ctx, int32_t seq) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] { ctx->impl->clear(seq); });
}

qisa_status qisa_seq_truncate(qisa_context* ctx, int32_t seq, int32_t n) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] { ctx->impl->truncate(seq, n); });
}

qisa_status qisa_seq_state_save(qisa_context* ctx, int32_t seq, void* buf, size_t capacity, size_t* out_size) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    if (out_size == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "out_size is NULL");
    const size_t need = ctx->impl->state_size(seq);
    *out_size = need;
    if (buf == nullptr || capacity < need) {
      qisa::fail(QISA_ERR_BUFFER_TOO_SMALL, "the state of sequence %d needs %zu bytes, the buffer has %zu", seq, need,
                 buf == nullptr ? size_t{0} : capacity);
    }
    ctx->impl->save_state(seq, static_cast<uint8_t*>(buf));
  });
}

qisa_status qisa_seq_state_load(qisa_context* ctx, int32_t seq, const void* buf, size_t size) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    if (buf == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "buf is NULL");
    ctx->impl->load_state(seq, static_cast<const uint8_t*>(buf), size);
  });
}

}  // extern "C"
