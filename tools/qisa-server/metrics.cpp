#include "metrics.h"

#include <cinttypes>
#include <cstdio>
#include <utility>

namespace qisa::server {
namespace {

std::string number(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", x);
  return b;
}

void scalar(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         number(value) + "\n";
}

const std::vector<double> kSeconds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double x) {
  size_t i = 0;
  while (i < bounds_.size() && x > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += x;
  ++n_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cum += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cum) + "\n";
  }
  out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(n_) + "\n";
}

Metrics::Metrics()
    : latency_(kSeconds),
      queue_wait_(kSeconds),
      first_token_(kSeconds),
      batch_size_({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}) {}

void Metrics::http_response(const std::string& endpoint, int status) {
  std::lock_guard lock(mu_);
  ++responses_[{endpoint, status}];
}

void Metrics::request_finished(const std::string& outcome, double seconds, double queue_seconds,
                               double first_token_seconds, int32_t prompt_tokens, int32_t generated_tokens) {
  std::lock_guard lock(mu_);
  ++outcomes_[outcome];
  latency_.observe(seconds);
  queue_wait_.observe(queue_seconds);
  if (first_token_seconds >= 0) first_token_.observe(first_token_seconds);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generated_tokens_ += static_cast<uint64_t>(generated_tokens);
}

void Metrics::decode_call(int32_t prompt_entries, int32_t next_entries, double seconds) {
  std::lock_guard lock(mu_);
  const double n = prompt_entries + next_entries;
  if (n <= 0) return;
  ++decode_calls_;
  prefill_entries_ += static_cast<uint64_t>(prompt_entries);
  decode_entries_ += static_cast<uint64_t>(next_entries);
  prefill_seconds_ += seconds * prompt_entries / n;
  decode_seconds_ += seconds * next_entries / n;
  batch_size_.observe(n);
}

void Metrics::set_load(int32_t active, int32_t queued, int32_t slots) {
  std::lock_guard lock(mu_);
  active_ = active;
  queued_ = queued;
  slots_ = slots;
}

std::string Metrics::prometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  out += "# HELP qisa_http_responses_total HTTP responses by endpoint and status.\n";
  out += "# TYPE qisa_http_responses_total counter\n";
  for (const auto& [key, n] : responses_) {
    out += "qisa_http_responses_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  }
  out += "# HELP qisa_requests_total Completion requests by how they ended.\n";
  out += "# TYPE qisa_requests_total counter\n";
  for (const auto& [outcome, n] : outcomes_) {
    out += "qisa_requests_total{outcome=\"" + outcome + "\"} " + std::to_string(n) + "\n";
  }
  scalar(out, "qisa_prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
         static_cast<double>(prompt_tokens_));
  scalar(out, "qisa_generated_tokens_total", "counter", "Tokens generated for finished requests.",
         static_cast<double>(generated_tokens_));
  scalar(out, "qisa_decode_calls_total", "counter", "qisa_decode calls (scheduler steps).",
         static_cast<double>(decode_calls_));
  scalar(out, "qisa_prefill_tokens_total", "counter", "Prompt tokens evaluated.",
         static_cast<double>(prefill_entries_));
  scalar(out, "qisa_decode_tokens_total", "counter", "Next tokens evaluated.", static_cast<double>(decode_entries_));
  scalar(out, "qisa_prefill_seconds_total", "counter", "Decode-call time attributed to prompt tokens.",
         prefill_seconds_);
  scalar(out, "qisa_decode_seconds_total", "counter", "Decode-call time attributed to next tokens.", decode_seconds_);
  scalar(out, "qisa_prefill_tokens_per_second", "gauge", "Prompt tokens per second of decode-call time, since start.",
         prefill_seconds_ > 0 ? static_cast<double>(prefill_entries_) / prefill_seconds_ : 0);
  scalar(out, "qisa_decode_tokens_per_second", "gauge", "Next tokens per second of decode-call time, since start.",
         decode_seconds_ > 0 ? static_cast<double>(decode_entries_) / decode_seconds_ : 0);
  scalar(out, "qisa_active_sequences", "gauge", "Requests holding a sequence slot.", active_);
  scalar(out, "qisa_queue_depth", "gauge", "Requests waiting for a slot.", queued_);
  scalar(out, "qisa_slots", "gauge", "Sequence slots (--parallel).", slots_);
  latency_.write(out, "qisa_request_duration_seconds", "Arrival to last token of completion requests.");
  queue_wait_.write(out, "qisa_queue_wait_seconds", "Arrival to getting a sequence slot.");
  first_token_.write(out, "qisa_time_to_first_token_seconds", "Arrival to the first generated token.");
  batch_size_.write(out, "qisa_batch_entries", "Entries per qisa_decode call.");
  return out;
}

}  // namespace qisa::server
