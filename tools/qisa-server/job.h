// One completion request on its way through the scheduler: what the HTTP
// handler asked for, and the text and outcome the scheduler hands back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api_error.h"
#include "qisa.h"

namespace qisa::server {

using Clock = std::chrono::steady_clock;

struct SamplerFree {
  void operator()(qisa_sampler* s) const { qisa_sampler_free(s); }
};
using SamplerPtr = std::unique_ptr<qisa_sampler, SamplerFree>;

class Job {
 public:
  // Set before the job is submitted; read-only afterwards.
  std::string id;
  std::vector<int32_t> prompt;
  int32_t max_tokens = 0;
  std::vector<std::string> stops;
  SamplerPtr sampler;
  Clock::time_point arrived, deadline;

  // Set by the HTTP side when its client went away; the scheduler frees the
  // slot at its next step.
  std::atomic<bool> cancelled{false};

  // What a reader gets: the pieces of text emitted since its last take (one
  // per token, or several tokens' text where a stop string held it back),
  // and once `done`, the outcome.
  struct Outcome {
    bool done = false;
    std::string finish_reason;  // "stop" | "length" when it ended normally
    std::optional<ApiError> error;
    int32_t prompt_tokens = 0, generated_tokens = 0;
    double queue_ms = 0, prefill_ms = 0, decode_ms = 0;
  };

  // Scheduler side.
  void emit(const std::string& text) {
    if (text.empty()) return;
    {
      std::lock_guard lock(mu_);
      pieces_.push_back(text);
    }
    cv_.notify_all();
  }
  void finish(Outcome o) {
    {
      std::lock_guard lock(mu_);
      o.done = true;
      outcome_ = std::move(o);
    }
    cv_.notify_all();
  }

  // Reader side: waits up to `wait` for new pieces or the end; moves the
  // new pieces into `pieces` and returns the outcome so far.
  Outcome take(std::vector<std::string>& pieces, std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [&] { return !pieces_.empty() || outcome_.done; });
    pieces.swap(pieces_);
    pieces_.clear();
    return outcome_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pieces_;
  Outcome outcome_;
};

}  // namespace qisa::server
