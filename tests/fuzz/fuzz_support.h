// Shared by the libFuzzer targets: a CHECK that aborts (libFuzzer records
// the input), a small fixed model built in memory, and contexts.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bpe.h"
#include "qisa.h"
#include "synthetic_model.h"

#define FUZZ_CHECK(cond, ...)                                                       \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                            \
      std::fprintf(stderr, "\n");                                                   \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace qisa::fuzz {

// A small QISA v3 model (vocab 65, n_ctx 16, n_embd 16, 2 heads, 2 layers),
// loaded once per process and never freed.
inline const qisa_model* fixed_model() {
  static const qisa_model* model = [] {
    writer::SyntheticSpec s;
    s.n_head = 2;
    static const std::vector<uint8_t> bytes = writer::serialize(writer::make_synthetic_model(s));
    qisa_model* m = nullptr;
    char err[256];
    FUZZ_CHECK(qisa_model_load_buffer(bytes.data(), bytes.size(), nullptr, &m, err, sizeof err) == QISA_OK, "%s", err);
    return m;
  }();
  return model;
}

// A byte-level BPE model: merges learned on a fixed English and Greek text.
inline const qisa_model* fixed_bpe_model() {
  static const qisa_model* model = [] {
    const bpe::Learned l = bpe::learn(
        "the quick brown fox jumps over the lazy dog; THE DOG SLEEPS. 1234 5678 --- \n\n"
        "\xce\xba\xce\xb1\xce\xbb\xce\xb7\xce\xbc\xce\xad\xcf\x81\xce\xb1 the the the dog dog",
        300);
    static const std::vector<uint8_t> bytes = writer::serialize(writer::synthetic_bpe_model(l));
    qisa_model* m = nullptr;
    char err[256];
    FUZZ_CHECK(qisa_model_load_buffer(bytes.data(), bytes.size(), nullptr, &m, err, sizeof err) == QISA_OK, "%s", err);
    return m;
  }();
  return model;
}

inline qisa_context* make_context(const qisa_model* m, int32_t max_sequences, int32_t max_batch, qisa_engine engine,
                                  qisa_overflow overflow = QISA_OVERFLOW_SLIDE) {
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.backend = QISA_BACKEND_CPU;
  p.n_threads = 1;
  p.engine = engine;
  p.max_sequences = max_sequences;
  p.max_batch = max_batch;
  p.overflow = overflow;
  p.max_memory_bytes = uint64_t{256} << 20;
  qisa_context* c = nullptr;
  char err[256];
  const qisa_status st = qisa_context_create(m, &p, &c, err, sizeof err);
  FUZZ_CHECK(st == QISA_OK || (c == nullptr && err[0] != '\0'), "status %d", st);
  return c;
}

// |a - b| small against the logits' scale (engines sum in other orders).
inline bool logits_close(const float* a, const float* b, int32_t n, float tol = 1e-3f) {
  float scale = 1.0f;
  for (int32_t i = 0; i < n; ++i) scale = std::fmax(scale, std::fabs(a[i]));
  for (int32_t i = 0; i < n; ++i) {
    if (!(std::fabs(a[i] - b[i]) <= tol * scale)) return false;
  }
  return true;
}

// Reads input bytes as a little stream of choices.
class Bytes {
 public:
  Bytes(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  uint8_t next() { return i_ < n_ ? d_[i_++] : 0; }
  size_t left() const { return n_ - i_; }
  const uint8_t* rest() const { return d_ + i_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

}  // namespace qisa::fuzz
