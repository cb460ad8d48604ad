// What a context runs its forward passes on: the CPU engine (engine.h) or
// the CUDA engine (cuda/cuda_backend.h). Both write keys and values of
// every row into their own storage of the cache and give logits on the host.
#pragma once

#include <cstdint>
#include <span>

#include "kv_cache.h"
#include "qisa.h"

namespace qisa {

struct Row {
  int32_t seq = 0;
  int32_t pos = 0;
  int32_t token = 0;
  int32_t logits_slot = -1;  // where to write this row's logits; -1: none
};

struct EngineOptions {
  qisa_engine engine = QISA_ENGINE_FAST;
  qisa_value_path value_path = QISA_VALUE_PATH_UNITARY;
  int64_t max_rows = 64;  // rows per forward() call
  int32_t threads = 1;    // the context's thread count (CPU engine)
};

class Backend {
 public:
  virtual ~Backend() = default;
  // rows.size() <= max_rows(); positions of one sequence must be contiguous
  // with what the cache holds. logits: [slots, vocab] on the host.
  virtual void forward(std::span<const Row> rows, KvCache& cache, float* logits) = 0;
  virtual int64_t max_rows() const = 0;
  virtual qisa_backend kind() const = 0;
  // Keys/values of positions [0, n) of one sequence, between the backend's
  // storage and the host arrays of `cache` (state save / load). The CPU
  // engine works on the host arrays: nothing to do.
  virtual void kv_to_host(KvCache& /*cache*/, int64_t /*seq*/, int64_t /*n*/) {}
  virtual void kv_from_host(KvCache& /*cache*/, int64_t /*seq*/, int64_t /*n*/) {}
};

}  // namespace qisa
