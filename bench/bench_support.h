// What both benchmark programs share: handle owners and the backend choice.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include "qisa.h"

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

}  // namespace qisa::bench
