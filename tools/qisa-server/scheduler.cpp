#include "scheduler.h"

#include <algorithm>
#include <string>

#include "overflow_window.h"

namespace qisa::server {
namespace {

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

ApiError timeout_error(const Job& job) {
  const double s = seconds(job.arrived, job.deadline);
  return ApiError{504, "the request did not finish within the server's --timeout of " + std::to_string(s) + " s",
                  "timeout_error", "timeout"};
}

}  // namespace

Scheduler::Scheduler(const qisa_model* model, qisa_context* ctx, SchedulerConfig config, Metrics& metrics)
    : model_(model), ctx_(ctx), cfg_(config), metrics_(metrics), slots_(static_cast<size_t>(config.parallel)) {
  qisa_model_info info{};
  info.struct_size = sizeof info;
  if (qisa_model_get_info(model, &info) == QISA_OK) {
    n_ctx_ = info.n_ctx;
    n_vocab_ = info.vocab_size;
    eos_ = info.eos_token;
  }
  entries_.reserve(static_cast<size_t>(cfg_.batch));
  entry_seq_.reserve(static_cast<size_t>(cfg_.batch));
  waiting_.reserve(static_cast<size_t>(cfg_.parallel));
  std::lock_guard lock(mu_);
  publish_load_locked();
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    draining_ = stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::start() {
  thread_ = std::thread([this] { run(); });
}

Scheduler::Admit Scheduler::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard lock(mu_);
    if (draining_) return Admit::Draining;
    if (active_ + static_cast<int64_t>(queue_.size()) >= int64_t{cfg_.parallel} + cfg_.max_queue) {
      return Admit::QueueFull;
    }
    queue_.push_back(std::move(job));
    publish_load_locked();
  }
  cv_.notify_one();
  return Admit::Queued;
}

void Scheduler::drain() {
  std::unique_lock lock(mu_);
  draining_ = stop_ = true;
  cv_.notify_all();
  idle_cv_.wait(lock, [&] { return active_ == 0 && queue_.empty(); });
}

Scheduler::Load Scheduler::load() const {
  std::lock_guard lock(mu_);
  return {active_, static_cast<int32_t>(queue_.size()), cfg_.parallel, draining_};
}

void Scheduler::publish_load_locked() {
  metrics_.set_load(active_, static_cast<int32_t>(queue_.size()), cfg_.parallel);
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || active_ > 0; });
      leave_queue_locked(Clock::now());
      if (active_ == 0 && queue_.empty()) {
        idle_cv_.notify_all();
        if (stop_) return;
        continue;
      }
      admit_locked();
      publish_load_locked();
    }
    step();
  }
}

// Queued jobs whose client went away or whose deadline passed leave
// without ever taking a slot.
void Scheduler::leave_queue_locked(Clock::time_point now) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    Job& j = **it;
    const bool cancelled = j.cancelled.load();
    if (!cancelled && now <= j.deadline) {
      ++it;
      continue;
    }
    Job::Outcome o;
    o.prompt_tokens = static_cast<int32_t>(j.prompt.size());
    o.queue_ms = seconds(j.arrived, now) * 1e3;
    if (!cancelled) o.error = timeout_error(j);
    metrics_.request_finished(cancelled ? "cancelled" : "timeout", seconds(j.arrived, now), seconds(j.arrived, now), -1,
                              0, 0);
    j.finish(std::move(o));
    it = queue_.erase(it);
  }
}

void Scheduler::admit_locked() {
  for (size_t seq = 0; seq < slots_.size() && !queue_.empty(); ++seq) {
    Slot& s = slots_[seq];
    if (s.job) continue;
    s = Slot{};
    s.job = std::move(queue_.front());
    queue_.pop_front();
    ++active_;
    Job& j = *s.job;
    s.text = TextStream(j.stops);
    s.admitted = admissions_++;
    s.started = Clock::now();
    s.outcome.prompt_tokens = static_cast<int32_t>(j.prompt.size());
    s.outcome.queue_ms = seconds(j.arrived, s.started) * 1e3;
    // As qisa_generate: the whole prompt feeds the repetition penalty; only
    // the window it leaves is evaluated (overflow_window.h).
    for (int32_t t : j.prompt) qisa_sampler_accept(j.sampler.get(), t);
    s.next_prompt = j.prompt.size() - window_after(static_cast<size_t>(n_ctx_), cfg_.overflow, j.prompt.size());
    qisa_seq_clear(ctx_, static_cast<int32_t>(seq));
  }
}

void Scheduler::step() {
  const auto now = Clock::now();
  for (size_t seq = 0; seq < slots_.size(); ++seq) {
    Slot& s = slots_[seq];
    if (!s.job) continue;
    if (s.job->cancelled.load()) {
      finish(static_cast<int32_t>(seq), "cancelled");
    } else if (now > s.job->deadline) {
      finish(static_cast<int32_t>(seq), nullptr, timeout_error(*s.job));
    } else if (s.job->max_tokens == 0) {
      finish(static_cast<int32_t>(seq), "length");  // as qisa_generate: nothing sampled
    }
  }

  // The next token of every generating request first: one entry each.
  entries_.clear();
  entry_seq_.clear();
  int32_t n_next = 0, n_prompt = 0;
  for (size_t seq = 0; seq < slots_.size(); ++seq) {
    Slot& s = slots_[seq];
    if (!s.job || !s.generating) continue;
    if (cfg_.overflow == QISA_OVERFLOW_ERROR) {
      int32_t len = 0;
      qisa_seq_length(ctx_, static_cast<int32_t>(seq), &len);
      if (len >= n_ctx_) {  // the window is full and may not slide
        s.text.finish([&](const std::string& t) { s.job->emit(t); });
        finish(static_cast<int32_t>(seq), "length");
        continue;
      }
    }
    entries_.push_back({static_cast<int32_t>(seq), s.last, 1});
    entry_seq_.push_back(static_cast<int32_t>(seq));
    ++n_next;
  }
  // Then prompt chunks with the room left, earliest admitted first.
  waiting_.clear();
  for (size_t seq = 0; seq < slots_.size(); ++seq) {
    if (slots_[seq].job && !slots_[seq].generating) waiting_.push_back(static_cast<int32_t>(seq));
  }
  std::sort(waiting_.begin(), waiting_.end(), [&](int32_t a, int32_t b) {
    return slots_[static_cast<size_t>(a)].admitted < slots_[static_cast<size_t>(b)].admitted;
  });
  for (int32_t seq : waiting_) {
    Slot& s = slots_[static_cast<size_t>(seq)];
    const auto& prompt = s.job->prompt;
    const size_t room = static_cast<size_t>(cfg_.batch) - entries_.size();
    const size_t take = std::min(room, prompt.size() - s.next_prompt);
    for (size_t k = 0; k < take; ++k) {
      const size_t i = s.next_prompt + k;
      const bool last = i + 1 == prompt.size();
      entries_.push_back({seq, prompt[i], last ? 1 : 0});
      entry_seq_.push_back(last ? seq : -1);
    }
    s.next_prompt += take;
    n_prompt += static_cast<int32_t>(take);
  }
  if (entries_.empty()) return;

  const auto t0 = Clock::now();
  const qisa_status st = qisa_decode(ctx_, entries_.data(), static_cast<int32_t>(entries_.size()));
  const auto t1 = Clock::now();
  if (st != QISA_OK) {
    // Every request of the failed call ends; the others go on.
    const ApiError e{500, std::string("decoding failed: ") + qisa_context_last_error(ctx_), "server_error", ""};
    for (const auto& entry : entries_) {
      if (slots_[static_cast<size_t>(entry.seq_id)].job) finish(entry.seq_id, nullptr, e);
    }
    return;
  }
  metrics_.decode_call(n_prompt, n_next, seconds(t0, t1));
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entry_seq_[i] >= 0) sample(entry_seq_[i], static_cast<int32_t>(i));
  }
}

// The loop body of qisa_generate for one request: sample, accept, stop at
// EOS, a stop string or max_tokens.
void Scheduler::sample(int32_t seq, int32_t entry) {
  Slot& s = slots_[static_cast<size_t>(seq)];
  Job& j = *s.job;
  const auto now = Clock::now();
  if (!s.generating) {
    s.generating = true;
    s.prefill_done = now;
  }
  const float* logits = nullptr;
  int32_t tok = -1;
  if (qisa_get_logits(ctx_, entry, &logits) != QISA_OK ||
      qisa_sampler_sample(j.sampler.get(), logits, n_vocab_, &tok) != QISA_OK) {
    finish(seq, nullptr, ApiError{500, "sampling failed", "server_error", ""});
    return;
  }
  qisa_sampler_accept(j.sampler.get(), tok);
  if (s.first_token_s < 0) s.first_token_s = seconds(j.arrived, now);
  ++s.outcome.generated_tokens;
  auto emit = [&](const std::string& t) { j.emit(t); };
  if (tok == eos_) {
    s.text.finish(emit);
    finish(seq, "stop");
    return;
  }
  const char* bytes = "";
  size_t n_bytes = 0;
  qisa_token_bytes(model_, tok, &bytes, &n_bytes);
  if (s.text.add(std::string_view(bytes, n_bytes), emit)) {
    finish(seq, "stop");
    return;
  }
  if (s.outcome.generated_tokens >= j.max_tokens) {
    finish(seq, s.text.finish(emit) ? "stop" : "length");
    return;
  }
  s.last = tok;
}

void Scheduler::finish(int32_t seq, const char* reason, std::optional<ApiError> error) {
  Slot& s = slots_[static_cast<size_t>(seq)];
  std::shared_ptr<Job> job = std::move(s.job);
  qisa_seq_clear(ctx_, seq);
  const auto now = Clock::now();
  Job::Outcome o = s.outcome;
  if (reason) o.finish_reason = reason;
  o.error = std::move(error);
  const auto prefill_end = s.generating ? s.prefill_done : now;
  o.prefill_ms = seconds(s.started, prefill_end) * 1e3;
  o.decode_ms = seconds(prefill_end, now) * 1e3;
  std::string outcome = reason ? reason : "error";
  if (o.error && o.error->status == 504) outcome = "timeout";
  metrics_.request_finished(outcome, seconds(job->arrived, now), o.queue_ms / 1e3, s.first_token_s, o.prompt_tokens,
                            o.generated_tokens);
  job->finish(std::move(o));
  s = Slot{};
  std::lock_guard lock(mu_);
  --active_;
  publish_load_locked();
}

}  // namespace qisa::server
