// The HTTP endpoints: OpenAI completions (plain and streamed), models,
// health, Prometheus metrics, tokenize / detokenize.
#pragma once

#include <atomic>
#include <cstdint>

#include "completion_request.h"
#include "metrics.h"
#include "scheduler.h"
#include "server_options.h"

namespace httplib {
class Server;
}

namespace qisa::server {

enum class Phase { Loading, Ready, Draining };

// What the handlers share. Handlers run on httplib's worker threads; the
// model and scheduler are set once, before phase becomes Ready.
struct ServerState {
  explicit ServerState(const Options& o) : options(o) {}
  const Options& options;
  std::atomic<Phase> phase{Phase::Loading};
  const qisa_model* model = nullptr;
  Scheduler* scheduler = nullptr;
  RequestLimits limits;
  Metrics metrics;
  std::atomic<uint64_t> next_id{1};
  int64_t started_unix = 0;
};

void install_routes(httplib::Server& svr, ServerState& state);

}  // namespace qisa::server
