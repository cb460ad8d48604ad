// What a context runs its forward passes on. A backend holds its copy of
// the weights (or views of the file's), its keys and values, and scratch
// for max_rows rows; it computes by running the one forward pass
// (forward.h) over its operations. Backends are listed in registry.h.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "qisa.h"

namespace qisa {

struct Row {
  int32_t seq = 0;
  int32_t pos = 0;
  int32_t token = 0;
  int32_t logits_slot = -1;  // where to write this row's logits; -1: none
};

struct ProbePoint;  // forward.h

struct BackendOptions {
  qisa_value_path value_path = QISA_VALUE_PATH_UNITARY;
  int64_t max_rows = 64;      // rows per forward() call
  int64_t max_sequences = 1;  // sequences the KV store holds, n_ctx positions each
  int32_t threads = 1;        // threads a CPU backend may use
};

// What a backend can do beyond the interface's minimum, declared up front.
struct BackendCaps {
  // forward() can bring back only each slot's largest logit (a device then
  // copies one int per row instead of a row of logits).
  bool device_argmax = false;
  // Runs models trained with the research code's transposed attention:
  // a whole window from position 0 in one forward() (forward.h).
  bool transposed_window = false;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual BackendCaps caps() const { return {}; }
  virtual int64_t max_rows() const = 0;
  // Runs rows (at most max_rows(); positions of one sequence contiguous
  // with what the store holds): keys and values of every row are stored,
  // every row attends to its sequence's positions 0..pos. With logits:
  // [slots, vocab] on the host get the rows' logits; otherwise (only where
  // caps().device_argmax) argmax[slot] gets the index of the largest
  // (ties: the lowest index, as greedy sampling picks), or -1 where a
  // logit of the row is NaN or infinite.
  virtual void forward(std::span<const Row> rows, float* logits, int32_t* argmax) = 0;
  // As forward() for rows that want no logits, copying the probed matrix
  // ([rows, n_embd], forward.h) to the host on the way.
  virtual void probe(std::span<const Row> rows, const ProbePoint& probe) = 0;
  // Keys, values and key norms of positions [0, n) of one sequence, to or
  // from a saved state: per layer K [n, n_embd], V [n, n_embd], |k|^2
  // [n, n_head], f32.
  virtual void save_kv(int64_t seq, int64_t n, uint8_t* out) = 0;
  virtual void load_kv(int64_t seq, int64_t n, const uint8_t* in) = 0;
  // What the backend does now that its creation line did not say (e.g. the
  // captured graphs of a device backend); empty where nothing.
  virtual std::string state() const { return {}; }
};

}  // namespace qisa
