// What the benchmark programs share: handle owners, the backend choice,
// synthetic models and medians.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "qisa.h"
#include "synthetic_model.h"

namespace qisa::bench {

struct ModelDeleter {
  void operator()(qisa_model* m) const { qisa_model_free(m); }
};
struct ContextDeleter {
  void operator()(qisa_context* c) const { qisa_context_free(c); }
};
using ModelPtr = std::unique_ptr<qisa_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<qisa_context, ContextDeleter>;

// The CPU unless QISA_BENCH_BACKEND=cuda (or auto) asks otherwise.
inline qisa_backend backend_from_env() {
  const char* b = std::getenv("QISA_BENCH_BACKEND");
  if (b && std::string(b) == "cuda") return QISA_BACKEND_CUDA;
  if (b && std::string(b) == "auto") return QISA_BACKEND_AUTO;
  return QISA_BACKEND_CPU;
}

// A synthetic model (random weights of the spec's shapes), loaded without
// the unitary check; null when it does not load.
inline ModelPtr load_synthetic(const writer::SyntheticSpec& s) {
  const auto bytes = writer::serialize(writer::make_synthetic_model(s));
  qisa_model_params p;
  qisa_model_default_params(&p);
  p.check_unitaries = 0;
  qisa_model* m = nullptr;
  if (qisa_model_load_buffer(bytes.data(), bytes.size(), &p, &m, nullptr, 0) != QISA_OK) return nullptr;
  return ModelPtr(m);
}

// The median of v (the mean of the middle two for an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace qisa::bench
