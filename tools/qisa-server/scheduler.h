// Continuous batching: one thread owns the context. Each step takes the
// next token of every generating request and chunks of waiting prompts
// into one qisa_decode call, samples each request with its own sampler and
// hands text to its Job. Requests join when a slot frees and leave when
// they finish, time out or their client goes away.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "job.h"
#include "metrics.h"
#include "qisa.h"
#include "text_stream.h"

namespace qisa::server {

struct SchedulerConfig {
  int32_t parallel = 4;  // slots = sequence ids 0..parallel-1
  int32_t batch = 64;    // entries per decode call
  int32_t max_queue = 64;
  qisa_overflow overflow = QISA_OVERFLOW_SLIDE;
};

class Scheduler {
 public:
  // The context must have max_sequences >= parallel and max_batch >= batch;
  // the scheduler's thread is its only user from start() on.
  Scheduler(const qisa_model* model, qisa_context* ctx, SchedulerConfig config, Metrics& metrics);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admit { Queued, QueueFull, Draining };
  Admit submit(std::shared_ptr<Job> job);

  void start();
  // Refuses new jobs; returns when every admitted job has finished.
  void drain();

  struct Load {
    int32_t active = 0, queued = 0, slots = 0;
    bool draining = false;
  };
  Load load() const;

 private:
  struct Slot {
    std::shared_ptr<Job> job;
    TextStream text;         // whole characters, cut at a stop string
    size_t next_prompt = 0;  // next prompt token to evaluate
    int32_t last = -1;       // the token to evaluate next when generating
    bool generating = false;
    Job::Outcome outcome;  // counts and times so far
    Clock::time_point started, prefill_done;
    double first_token_s = -1;  // arrival to the first sampled token; -1: none yet
    uint64_t admitted = 0;      // admission order: earlier prompts first
  };

  void run();
  void admit_locked();
  void step();
  void leave_queue_locked(Clock::time_point now);
  void finish(int32_t seq, const char* reason, std::optional<ApiError> error = std::nullopt);
  void sample(int32_t seq, int32_t entry);
  void publish_load_locked();

  const qisa_model* model_;
  qisa_context* ctx_;
  SchedulerConfig cfg_;
  Metrics& metrics_;
  int32_t n_ctx_ = 0, n_vocab_ = 0, eos_ = -1;

  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  int32_t active_ = 0;  // slots holding a job (under mu_: read by load())
  bool draining_ = false, stop_ = false;

  std::vector<Slot> slots_;  // scheduler thread only
  uint64_t admissions_ = 0;
  std::vector<qisa_batch_entry> entries_;
  std::vector<int32_t> entry_seq_;  // per entry asking for logits: its slot; else -1
  std::vector<int32_t> waiting_;    // slots still evaluating their prompt, earliest admitted first
  std::thread thread_;
};

}  // namespace qisa::server
