// C API: qisa_generate, prompt in, text streamed out.
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "api_context.h"
#include "sampler.h"
#include "text_stream.h"
#include "tokenizer.h"

namespace qisa {
namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace
}  // namespace qisa

extern "C" {

void qisa_generate_default_params(qisa_generate_params* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->max_tokens = 128;
  p->seq_id = 0;
  qisa_sampler_default_params(&p->sampling);
}

qisa_status qisa_generate(qisa_context* ctx, const char* prompt, const qisa_generate_params* params,
                          qisa_generate_result* result) {
  if (ctx == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  return ctx->run([&] {
    using qisa::fail;
    if (prompt == nullptr) fail(QISA_ERR_INVALID_ARGUMENT, "prompt is NULL");
    qisa_generate_params p;
    qisa_generate_default_params(&p);
    if (params) {
      if (params->struct_size != sizeof(qisa_generate_params)) {
        fail(QISA_ERR_INVALID_ARGUMENT, "params->struct_size is %zu, expected %zu", params->struct_size,
             sizeof(qisa_generate_params));
      }
      p = *params;
    }
    if (result && result->struct_size != sizeof(qisa_generate_result)) {
      fail(QISA_ERR_INVALID_ARGUMENT, "result->struct_size must be sizeof(qisa_generate_result)");
    }
    if (p.max_tokens < 0) fail(QISA_ERR_INVALID_ARGUMENT, "max_tokens is %d", p.max_tokens);
    if (p.n_stop_strings < 0 || (p.n_stop_strings > 0 && p.stop_strings == nullptr)) {
      fail(QISA_ERR_INVALID_ARGUMENT, "stop_strings is NULL or n_stop_strings < 0");
    }
    std::vector<std::string> stops;
    for (int32_t i = 0; i < p.n_stop_strings; ++i) {
      if (p.stop_strings[i] == nullptr || p.stop_strings[i][0] == '\0') {
        fail(QISA_ERR_INVALID_ARGUMENT, "stop string %d is NULL or empty", i);
      }
      stops.emplace_back(p.stop_strings[i]);
    }
    qisa::Context& c = *ctx->impl;
    const qisa::Model& m = c.model();
    // Everything is checked before the sequence is cleared: a failed call
    // changes no state.
    c.check_seq(p.seq_id);
    c.check_causal();
    qisa::Sampler sampler(p.sampling);  // checks the sampling parameters
    std::vector<int32_t> tokens;
    qisa::tokenize(m.tokenizer, prompt, std::strlen(prompt), (p.tokenize_flags & QISA_TOKENIZE_SKIP_UNKNOWN) != 0,
                   tokens);
    if (tokens.empty()) fail(QISA_ERR_INVALID_ARGUMENT, "the prompt has no tokens");
    if (c.params().overflow == QISA_OVERFLOW_ERROR && tokens.size() > m.config.n_ctx) {
      fail(QISA_ERR_CONTEXT_FULL, "the prompt has %zu tokens, more than n_ctx %u (overflow policy: error)",
           tokens.size(), m.config.n_ctx);
    }
    for (int32_t t : tokens) sampler.accept(t);
    // The state a prompt leaves is that of its last window evaluated afresh
    // (see Context::window_after), so only that window is run: a long
    // prompt costs O(n_ctx), not O(length * n_ctx).
    const size_t window = c.window_after(tokens.size());
    const size_t skipped = tokens.size() - window;
    c.clear(p.seq_id);

    qisa_generate_result r{};
    r.struct_size = sizeof r;
    r.n_prompt_tokens = static_cast<int32_t>(tokens.size());
    r.stop_reason = QISA_STOP_MAX_TOKENS;
    // Prefill in batches of max_batch entries; the last entry wants logits.
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<qisa_batch_entry> batch;
    const auto max_batch = static_cast<size_t>(c.params().max_batch);
    for (size_t i = skipped; i < tokens.size(); i += max_batch) {
      batch.clear();
      for (size_t j = i; j < std::min(tokens.size(), i + max_batch); ++j) {
        batch.push_back({p.seq_id, tokens[j], j + 1 == tokens.size()});
      }
      c.decode(batch);
    }
    r.prefill_ms = qisa::ms_since(t0);
    const float* logits = c.logits(static_cast<int32_t>(batch.size() - 1));

    const auto t1 = std::chrono::steady_clock::now();
    qisa::TextStream stream(std::move(stops));
    bool stopped = false;
    auto emit = [&](const std::string& text) {
      if (stopped || p.on_piece == nullptr || text.empty()) return;
      if (p.on_piece(text.c_str(), text.size(), p.user_data) != 0) {
        stopped = true;
        r.stop_reason = QISA_STOP_CALLBACK;
      }
    };
    // Greedy without a repetition penalty needs only each step's argmax: a
    // GPU context then copies one token id back instead of a row of logits.
    const bool argmax_only = sampler.is_argmax();
    int32_t next = -1;  // the argmax of the last step, when argmax_only
    for (int32_t n = 0; n < p.max_tokens && !stopped; ++n) {
      const int32_t tok = next >= 0 ? next : sampler.sample(logits, static_cast<int32_t>(m.config.vocab_size));
      sampler.accept(tok);
      ++r.n_generated;
      if (tok == m.tokenizer.eos_id) {
        r.stop_reason = QISA_STOP_EOS;
        break;
      }
      if (stream.add(m.tokenizer.pieces[static_cast<size_t>(tok)], emit)) {
        if (!stopped) r.stop_reason = QISA_STOP_STRING;
        stopped = true;
        break;
      }
      if (stopped || n + 1 == p.max_tokens) break;
      const qisa_batch_entry e{p.seq_id, tok, 1};
      if (argmax_only) {
        c.decode({&e, 1}, qisa::Context::Output::Argmax);
        next = c.argmax(0);
      } else {
        c.decode({&e, 1});
        logits = c.logits(0);
      }
    }
    if (r.stop_reason != QISA_STOP_STRING && r.stop_reason != QISA_STOP_CALLBACK && stream.finish(emit))
      r.stop_reason = QISA_STOP_STRING;
    r.decode_ms = qisa::ms_since(t1);
    if (result) *result = r;
  });
}

}  // extern "C"
