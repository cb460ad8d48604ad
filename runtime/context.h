// A context: KV caches for up to max_sequences sequences, the engine, and
// the decode logic that turns batch entries into engine rows, including the
// context-overflow policies.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <memory>

#include "backend.h"
#include "device_slots.h"
#include "model.h"
#include "qisa.h"
#include "registry.h"

namespace qisa {

class Context {
 public:
  // Runs on the backend params ask for (registry.h; AUTO: the best usable,
  // backend_info() says which and why).
  Context(const Model& model, DeviceSlots& slots, const qisa_context_params& params, int32_t threads);

  // Output::Argmax brings back, for each entry that asks for logits, only
  // the index of its largest logit (argmax()); logits() is then unavailable.
  enum class Output { Logits, Argmax };
  void decode(std::span<const qisa_batch_entry> entries, Output output = Output::Logits);
  const float* logits(int32_t index) const;
  int32_t argmax(int32_t index) const;

  // Throws QISA_ERR_OUT_OF_RANGE unless 0 <= seq < max_sequences.
  void check_seq(int32_t seq) const;
  // overflow_window.h under this context's policy.
  size_t window_after(size_t n_tokens) const;
  size_t kept_on_overflow() const;

  // qisa_context_probe (what already checked): evaluates `tokens` as seq's window from position 0
  // and copies the probed matrix [tokens, n_embd] into out.
  void probe(int32_t seq, std::span<const int32_t> tokens, qisa_probe what, int32_t layer, float* out,
             size_t out_count);

  // qisa_evaluate_window (at least one token, checked there): tokens as
  // seq's window from position 0, the logits of every position into logits
  // [tokens, vocab] (room: count).
  void evaluate_window(int32_t seq, std::span<const int32_t> tokens, float* logits, size_t count);
  // Throws QISA_ERR_NOT_CAUSAL for a model trained with the research code's
  // transposed attention: nothing but whole windows runs it.
  void check_causal() const;

  int32_t length(int32_t seq) const;
  void clear(int32_t seq);  // -1: all
  void truncate(int32_t seq, int32_t n);
  size_t state_size(int32_t seq) const;
  void save_state(int32_t seq, uint8_t* out);
  void load_state(int32_t seq, const uint8_t* data, size_t size);

  const Model& model() const { return model_; }
  const qisa_context_params& params() const { return params_; }
  int32_t threads() const { return threads_; }
  qisa_backend backend() const { return chosen_.kind; }
  const std::string& backend_info() const { return chosen_.info; }
  std::string backend_state() const { return backend_->state(); }
  bool supports_transposed() const { return backend_->caps().transposed_window; }

 private:
  void run_pending();  // runs the pending rows (a pass of at most max_rows)
  // After a pass with logits: fails QISA_ERR_NUMERIC on NaN or infinity.
  void check_logits_finite(std::span<const Row> rows, const float* logits) const;
  [[noreturn]] static void fail_not_finite(const Row& r, const char* what);
  void push(const Row& row);  // queues a row, running a full pass first
  void check_entry(int32_t index) const;
  // The checks of a window evaluated from position 0 (probe, evaluate_window).
  void check_window(int32_t seq, std::span<const int32_t> tokens) const;
  // Runs tokens as seq's window from 0 in passes of max_rows rows (one pass
  // for a transposed model); pass(rows, first) runs one.
  template <class Pass>
  void run_window(int32_t seq, std::span<const int32_t> tokens, Pass&& pass);

  const Model& model_;
  qisa_context_params params_;
  int32_t threads_;
  ChosenBackend chosen_;
  Backend* backend_;                          // chosen_.backend
  std::vector<std::vector<int32_t>> tokens_;  // per sequence: the tokens whose keys/values are stored
  std::vector<int32_t>& seq_tokens(int64_t s) { return tokens_[static_cast<size_t>(s)]; }
  const std::vector<int32_t>& seq_tokens(int64_t s) const { return tokens_[static_cast<size_t>(s)]; }
  std::vector<float> logits_;        // [max_batch, vocab]
  std::vector<int32_t> argmax_;      // [max_batch]
  std::vector<uint8_t> has_logits_;  // per entry of the last decode
  int32_t last_entries_ = 0;
  Output output_ = Output::Logits;            // of the last decode
  std::vector<Row> pending_;                  // rows not yet run
  std::vector<std::vector<int32_t>> window_;  // per sequence: its tokens once pending rows are run
  // What the current decode does to each sequence, and the list of those it
  // touches (so a decode costs nothing per idle sequence).
  enum Touch : uint8_t { kUntouched, kAppended, kSlid };
  std::vector<uint8_t> touch_;
  std::vector<int32_t> touched_;
  std::vector<uint8_t> has_pending_;  // sequences with rows in pending_
};

}  // namespace qisa
