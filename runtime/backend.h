// What a context runs its forward passes on: the CPU engine (engine.h) or
// the CUDA engine (cuda/cuda_backend.h). Both write keys and values of
// every row into their own storage of the cache and give logits on the host.
#pragma once

#include <cstdint>
#include <span>
#include <string>

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
  // As forward(), but only the index of each slot's largest logit comes
  // back, in argmax[slot] (ties: the lowest index, as greedy sampling
  // picks): a device copies one int per row instead of a row of logits.
  // False where the backend has no such path (nothing was run then).
  virtual bool forward_argmax(std::span<const Row> /*rows*/, KvCache& /*cache*/, int32_t* /*argmax*/) { return false; }
  virtual int64_t max_rows() const = 0;
  virtual qisa_backend kind() const = 0;
  // Keys, values and key norms of positions [0, n) of one sequence, to or
  // from a saved state: per layer K [n, n_embd], V [n, n_embd], |k|^2
  // [n, n_head] as f32. These defaults use the cache's host arrays (CPU
  // engine); a backend with its own storage copies from or to it directly.
  virtual void save_kv(const KvCache& cache, int64_t seq, int64_t n, uint8_t* out);
  virtual void load_kv(KvCache& cache, int64_t seq, int64_t n, const uint8_t* in);
  // What the backend does now that its creation line did not say (e.g. the
  // CUDA engine's graphs); empty where nothing.
  virtual std::string state() const { return {}; }
  // Whether keys and values live in the cache's host arrays.
  virtual bool uses_host_cache() const { return true; }
};

}  // namespace qisa
