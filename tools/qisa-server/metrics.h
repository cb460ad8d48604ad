// The server's counters and histograms, written as Prometheus text.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace qisa::server {

// Cumulative buckets over fixed upper bounds, as Prometheus histograms are.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double x);
  // Appends the _bucket/_sum/_count lines of `name`.
  void write(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative; one more for +Inf
  double sum_ = 0;
  uint64_t n_ = 0;
};

// What the scheduler and the HTTP layer report; every method locks.
class Metrics {
 public:
  Metrics();

  void http_response(const std::string& endpoint, int status);
  void request_finished(const std::string& outcome, double seconds, double queue_seconds, double first_token_seconds,
                        int32_t prompt_tokens, int32_t generated_tokens);
  // One qisa_decode call: its entries split into prompt tokens and next
  // tokens, and how long it took (split between the two by entry count).
  void decode_call(int32_t prompt_entries, int32_t next_entries, double seconds);
  void set_load(int32_t active, int32_t queued, int32_t slots);

  std::string prometheus() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> responses_;
  std::map<std::string, uint64_t> outcomes_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  uint64_t prefill_entries_ = 0, decode_entries_ = 0, decode_calls_ = 0;
  double prefill_seconds_ = 0, decode_seconds_ = 0;
  int32_t active_ = 0, queued_ = 0, slots_ = 0;
  Histogram latency_, queue_wait_, first_token_, batch_size_;
};

}  // namespace qisa::server
