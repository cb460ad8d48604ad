// qisa-server: an OpenAI-compatible completions server over libqisa with
// continuous batching. See docs/server.md.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "http_api.h"
#include "scheduler.h"
#include "server_options.h"

namespace {

using namespace qisa::server;

struct ModelFree {
  void operator()(qisa_model* m) const { qisa_model_free(m); }
};
struct ContextFree {
  void operator()(qisa_context* c) const { qisa_context_free(c); }
};

// Waits for SIGTERM / SIGINT (blocked in every thread, so they queue here)
// or the end of --lifetime.
void wait_for_stop(double lifetime_s) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(lifetime_s);
  for (;;) {
    timespec ts{0, 200 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      std::fprintf(stderr, "qisa-server: %s: draining in-flight requests\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      return;
    }
    if (lifetime_s > 0 && std::chrono::steady_clock::now() >= end) {
      std::fprintf(stderr, "qisa-server: --lifetime reached: draining in-flight requests\n");
      return;
    }
  }
}

int serve(const Options& opt) {
  httplib::Server svr;
  ServerState state(opt);
  state.started_unix = static_cast<int64_t>(std::time(nullptr));
  // Each waiting request holds one worker (httplib answers a connection on
  // one thread): room for every slot, the whole queue and a few probes.
  const size_t workers = static_cast<size_t>(opt.parallel) + static_cast<size_t>(opt.max_queue) + 8;
  svr.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };  // httplib owns and deletes it
  svr.set_payload_max_length(opt.max_body);
  svr.set_read_timeout(30);
  svr.set_write_timeout(30);
  svr.set_keep_alive_timeout(5);
  install_routes(svr, state);
  // httplib listens with a backlog of 5 (compiled into Debian's library):
  // 64 clients connecting at once then wait for SYN retransmits (1 s, seen
  // as the p99 latency). Listening again on the bound socket raises it.
  int listen_fd = -1;
  svr.set_socket_options([&listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd = static_cast<int>(sock);
  });

  int port = opt.port;
  if (port == 0) {
    port = svr.bind_to_any_port(opt.host);
  } else if (!svr.bind_to_port(opt.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "qisa-server: cannot listen on %s:%d\n", opt.host.c_str(), opt.port);
    return 1;
  }
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  std::thread http([&] { svr.listen_after_bind(); });
  auto stop_http = [&] {
    svr.stop();
    http.join();
  };
  // stop() is a no-op until the accept loop runs: wait for it, so that a
  // failure just below (a model that does not load) can stop the server.
  for (int i = 0; i < 10000 && !svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!svr.is_running()) {
    std::fprintf(stderr, "qisa-server: the HTTP server did not start on %s:%d\n", opt.host.c_str(), port);
    svr.stop();
    http.detach();  // its thread never entered the loop stop() ends; the process exits
    return 1;
  }
  std::printf("qisa-server: listening on http://%s:%d\n", opt.host.c_str(), port);
  std::fflush(stdout);
  if (!opt.port_file.empty()) std::ofstream(opt.port_file) << port << "\n";

  // /health says "loading" until here.
  char err[512] = "";
  qisa_model* raw_model = nullptr;
  if (qisa_model_load_file(opt.model.c_str(), nullptr, &raw_model, err, sizeof err) != QISA_OK) {
    std::fprintf(stderr, "qisa-server: cannot load %s: %s\n", opt.model.c_str(), err);
    stop_http();
    return 1;
  }
  std::unique_ptr<qisa_model, ModelFree> model(raw_model);
  qisa_context_params cp;
  qisa_context_default_params(&cp);
  cp.n_threads = opt.threads;
  cp.backend = opt.backend;
  cp.engine = opt.engine;
  cp.overflow = opt.overflow;
  cp.max_sequences = opt.parallel;
  cp.max_batch = opt.batch;
  qisa_context* raw_ctx = nullptr;
  if (qisa_context_create(model.get(), &cp, &raw_ctx, err, sizeof err) != QISA_OK) {
    std::fprintf(stderr, "qisa-server: cannot create a context: %s\n", err);
    stop_http();
    return 1;
  }
  std::unique_ptr<qisa_context, ContextFree> ctx(raw_ctx);
  qisa_model_info info{};
  info.struct_size = sizeof info;
  qisa_model_get_info(model.get(), &info);

  state.model = model.get();
  state.limits.model = model.get();
  state.limits.vocab_size = info.vocab_size;
  state.limits.n_ctx = info.n_ctx;
  state.limits.overflow = opt.overflow;
  state.limits.max_tokens = opt.max_tokens;
  state.limits.default_tokens = opt.default_tokens;
  SchedulerConfig sc;
  sc.parallel = opt.parallel;
  sc.batch = opt.batch;
  sc.max_queue = opt.max_queue;
  sc.overflow = opt.overflow;
  auto scheduler = std::make_unique<Scheduler>(model.get(), ctx.get(), sc, state.metrics);
  scheduler->start();
  state.scheduler = scheduler.get();
  state.phase = Phase::Ready;
  std::fprintf(stderr, "qisa-server: %s ready (%s; window %d, %d slots, batch %d, %d threads)\n", opt.alias.c_str(),
               qisa_context_backend_info(ctx.get()), info.n_ctx, opt.parallel, opt.batch,
               qisa_context_threads(ctx.get()));

  wait_for_stop(opt.lifetime_s);
  state.phase = Phase::Draining;
  scheduler->drain();  // every admitted request ends (each has a deadline)
  stop_http();         // waits for the handlers still writing their last bytes
  scheduler.reset();
  std::fprintf(stderr, "qisa-server: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  bool exit_now = false;
  const std::optional<Options> opt = parse_options(argc, argv, error, exit_now);
  if (exit_now) return 0;
  if (!opt) {
    std::fprintf(stderr, "qisa-server: %s (see --help)\n", error.c_str());
    return 2;
  }
  // A client that goes away must not kill the server; SIGTERM / SIGINT are
  // taken by wait_for_stop only (every thread inherits this mask).
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  try {
    return serve(*opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qisa-server: %s\n", e.what());
    return 1;
  }
}
