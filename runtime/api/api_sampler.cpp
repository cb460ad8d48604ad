// C API: samplers.
#include <cstring>
#include <memory>

#include "api_guard.h"
#include "sampler.h"

struct qisa_sampler {
  std::unique_ptr<qisa::Sampler> impl;
};

extern "C" {

void qisa_sampler_default_params(qisa_sampler_params* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->temperature = 0.8f;
  p->top_k = 40;
  p->top_p = 0.95f;
  p->min_p = 0.05f;
  p->repeat_penalty = 1.1f;
  p->repeat_last_n = 64;
  p->seed = 1234;
}

qisa_status qisa_sampler_create(const qisa_sampler_params* params, qisa_sampler** out) {
  if (out == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  qisa_sampler_params p;
  qisa_sampler_default_params(&p);
  if (params) p = *params;
  std::string msg;
  return qisa::guarded(msg, [&] {
    auto s = std::make_unique<qisa_sampler>();
    s->impl = std::make_unique<qisa::Sampler>(p);  // checks p
    *out = s.release();
  });
}

void qisa_sampler_free(qisa_sampler* s) {
  std::unique_ptr<qisa_sampler> owned(s);
}

qisa_status qisa_sampler_sample(qisa_sampler* s, const float* logits, int32_t n_vocab, int32_t* out_token) {
  if (s == nullptr || logits == nullptr || out_token == nullptr || n_vocab <= 0) return QISA_ERR_INVALID_ARGUMENT;
  std::string msg;
  return qisa::guarded(msg, [&] { *out_token = s->impl->sample(logits, n_vocab); });
}

qisa_status qisa_sampler_accept(qisa_sampler* s, int32_t token) {
  if (s == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  std::string msg;
  return qisa::guarded(msg, [&] { s->impl->accept(token); });
}

qisa_status qisa_sampler_reset(qisa_sampler* s, uint64_t seed) {
  if (s == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  s->impl->reset(seed);
  return QISA_OK;
}

}  // extern "C"
