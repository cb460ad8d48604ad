#include "http_api.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

namespace qisa::server {
namespace {

using httplib::Request;
using httplib::Response;
using nlohmann::json;

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(Response& res, const ApiError& e) {
  send_json(res, e.status, error_body(e));
}

// Metrics label per route: a fixed set, whatever paths clients send.
std::string endpoint_label(const std::string& path) {
  for (const char* known :
       {"/v1/completions", "/completions", "/v1/models", "/health", "/metrics", "/tokenize", "/detokenize"}) {
    if (path == known) return known;
  }
  return "other";
}

// Compares without an early exit, so response time does not reveal how
// much of a guessed key was right.
bool same_key(const std::string& given, const std::string& key) {
  unsigned diff = given.size() == key.size() ? 0u : 1u;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i % key.size()]);
  return diff == 0;
}

int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

json usage_json(const Job::Outcome& o) {
  return {{"prompt_tokens", o.prompt_tokens},
          {"completion_tokens", o.generated_tokens},
          {"total_tokens", o.prompt_tokens + o.generated_tokens}};
}

json timings_json(const Job::Outcome& o) {
  return {{"queue_ms", o.queue_ms},
          {"prefill_ms", o.prefill_ms},
          {"decode_ms", o.decode_ms},
          {"decode_tokens_per_second", o.decode_ms > 0 ? 1e3 * o.generated_tokens / o.decode_ms : 0.0}};
}

json choice(const std::string& text, const json& finish_reason) {
  return {{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
}

std::string sse(const json& j) {
  return "data: " + dump(j) + "\n\n";
}

void health(const ServerState& st, const Request& req, Response& res) {
  const Phase phase = st.phase.load();
  if (phase == Phase::Loading) return send_json(res, 503, {{"status", "loading"}});
  const Scheduler::Load l = st.scheduler->load();
  if (phase == Phase::Draining || l.draining) return send_json(res, 503, {{"status", "draining"}});
  const bool busy = l.active >= l.slots;
  json body = {{"status", busy ? "busy" : "ok"},
               {"slots_idle", l.slots - l.active},
               {"slots_processing", l.active},
               {"queue", l.queued}};
  // A load balancer may ask to hear 503 while every slot is taken.
  const bool fail_busy = req.has_param("fail_on_no_slot") && req.get_param_value("fail_on_no_slot") != "0";
  send_json(res, busy && fail_busy ? 503 : 200, body);
}

void models(const ServerState& st, Response& res) {
  qisa_model_info info{};
  info.struct_size = sizeof info;
  qisa_model_get_info(st.model, &info);
  json meta = {{"vocab_size", info.vocab_size}, {"n_ctx", info.n_ctx},      {"n_embd", info.n_embd},
               {"n_layer", info.n_layer},       {"n_head", info.n_head},    {"n_params", info.n_params},
               {"file_bytes", info.file_bytes}, {"libqisa", qisa_version()}};
  send_json(res, 200,
            {{"object", "list"},
             {"data", json::array({{{"id", st.options.alias},
                                    {"object", "model"},
                                    {"created", st.started_unix},
                                    {"owned_by", "libqisa"},
                                    {"meta", meta}}})}});
}

void completions(ServerState& st, const Request& req, Response& res) {
  CompletionRequest r;
  if (auto e = parse_completion(req.body, st.limits, r)) return send_error(res, *e);
  auto job = std::make_shared<Job>();
  qisa_sampler* sampler = nullptr;
  if (qisa_sampler_create(&r.sampling, &sampler) != QISA_OK) {
    return send_error(res, ApiError{400, "the sampling parameters are invalid", "invalid_request_error", ""});
  }
  job->sampler.reset(sampler);
  job->id = "cmpl-" + std::to_string(st.next_id.fetch_add(1));
  job->prompt = std::move(r.prompt);
  job->max_tokens = r.max_tokens;
  job->stops = std::move(r.stops);
  job->arrived = Clock::now();
  job->deadline =
      job->arrived + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(st.options.timeout_s));
  switch (st.scheduler->submit(job)) {
    case Scheduler::Admit::Queued: break;
    case Scheduler::Admit::QueueFull: {
      const Scheduler::Load l = st.scheduler->load();
      res.set_header("Retry-After", "1");
      return send_error(res, ApiError{503,
                                      "the server is busy: " + std::to_string(l.active) + " requests running and " +
                                          std::to_string(l.queued) + " waiting (--parallel " + std::to_string(l.slots) +
                                          ", --max-queue " + std::to_string(st.options.max_queue) + ")",
                                      "server_busy", "queue_full"});
    }
    case Scheduler::Admit::Draining:
      return send_error(res, ApiError{503, "the server is shutting down", "server_busy", "shutting_down"});
  }
  const json head = {
      {"id", job->id}, {"object", "text_completion"}, {"created", unix_now()}, {"model", st.options.alias}};

  if (!r.stream) {
    std::string text;
    std::vector<std::string> pieces;
    Job::Outcome o;
    do {
      o = job->take(pieces, std::chrono::milliseconds(1000));
      for (const auto& p : pieces) text += p;
    } while (!o.done);
    if (o.error) return send_error(res, *o.error);
    json body = head;
    body["choices"] = json::array({choice(text, o.finish_reason)});
    body["usage"] = usage_json(o);
    body["timings"] = timings_json(o);
    return send_json(res, 200, body);
  }

  // Server-sent events: one event per piece of text, then one with the
  // finish reason and usage, then [DONE]. A failed write means the client
  // went away: the job is cancelled and its slot freed.
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, head](size_t, httplib::DataSink& sink) {
        std::vector<std::string> pieces;
        const Job::Outcome o = job->take(pieces, std::chrono::milliseconds(250));
        for (const auto& p : pieces) {
          json ev = head;
          ev["choices"] = json::array({choice(p, nullptr)});
          const std::string s = sse(ev);
          if (!sink.write(s.data(), s.size())) {
            job->cancelled = true;
            return false;
          }
        }
        if (o.done) {
          std::string tail;
          if (o.error) {
            tail = sse(error_body(*o.error));
          } else {
            json ev = head;
            ev["choices"] = json::array({choice("", o.finish_reason)});
            ev["usage"] = usage_json(o);
            ev["timings"] = timings_json(o);
            tail = sse(ev);
          }
          tail += "data: [DONE]\n\n";
          if (!sink.write(tail.data(), tail.size())) return false;
          sink.done();
        }
        return true;
      },
      [job](bool success) {
        if (!success) job->cancelled = true;
      });
}

void tokenize(ServerState& st, const Request& req, Response& res) {
  std::vector<int32_t> tokens;
  if (auto e = parse_tokenize(req.body, st.limits, tokens)) return send_error(res, *e);
  json pieces = json::array();
  for (int32_t t : tokens) {
    const char* p = "";
    qisa_token_piece(st.model, t, &p);
    pieces.push_back(p);
  }
  send_json(res, 200, {{"tokens", tokens}, {"pieces", pieces}});
}

void detokenize(ServerState& st, const Request& req, Response& res) {
  std::vector<int32_t> tokens;
  if (auto e = parse_detokenize(req.body, st.limits, tokens)) return send_error(res, *e);
  size_t len = 0;
  qisa_detokenize(st.model, tokens.data(), tokens.size(), nullptr, 0, &len);
  std::string text(len + 1, '\0');
  if (qisa_detokenize(st.model, tokens.data(), tokens.size(), text.data(), text.size(), &len) != QISA_OK) {
    return send_error(res, ApiError{500, "cannot detokenize", "server_error", ""});
  }
  text.resize(len);
  send_json(res, 200, {{"content", text}});
}

// Wraps a handler: the model must be loaded and the server not draining.
template <class F>
httplib::Server::Handler when_ready(ServerState& st, F f) {
  return [&st, f](const Request& req, Response& res) {
    const Phase p = st.phase.load();
    if (p == Phase::Loading) return send_error(res, ApiError{503, "the model is loading", "server_busy", "loading"});
    if (p == Phase::Draining && req.method == "POST" && req.path != "/tokenize" && req.path != "/detokenize") {
      return send_error(res, ApiError{503, "the server is shutting down", "server_busy", "shutting_down"});
    }
    f(req, res);
  };
}

}  // namespace

void install_routes(httplib::Server& svr, ServerState& st) {
  svr.set_pre_routing_handler([&st](const Request& req, Response& res) {
    if (st.options.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    std::string given = req.get_header_value("Authorization");
    const std::string bearer = "Bearer ";
    if (given.compare(0, bearer.size(), bearer) == 0)
      given.erase(0, bearer.size());
    else
      given.clear();
    if (!given.empty() && same_key(given, st.options.api_key)) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, ApiError{401,
                             given.empty() ? "an API key is required: 'Authorization: Bearer KEY'"
                                           : "the API key is not valid",
                             "authentication_error", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  svr.Get("/health", [&st](const Request& req, Response& res) { health(st, req, res); });
  svr.Get("/v1/models", when_ready(st, [&st](const Request&, Response& res) { models(st, res); }));
  svr.Get("/metrics", [&st](const Request&, Response& res) {
    res.set_content(st.metrics.prometheus(), "text/plain; version=0.0.4");
  });
  const auto complete = when_ready(st, [&st](const Request& req, Response& res) { completions(st, req, res); });
  svr.Post("/v1/completions", complete);
  svr.Post("/completions", complete);
  svr.Post("/tokenize", when_ready(st, [&st](const Request& req, Response& res) { tokenize(st, req, res); }));
  svr.Post("/detokenize", when_ready(st, [&st](const Request& req, Response& res) { detokenize(st, req, res); }));

  // httplib's own refusals (unknown path, body too large, bad HTTP) get an
  // error body of the same shape as the handlers'.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = "HTTP " + std::to_string(res.status);
    if (res.status == 404) msg = "no such endpoint: " + req.method + " " + req.path;
    if (res.status == 405) msg = "method not allowed: " + req.method + " " + req.path;
    if (res.status == 413) msg = "the request body is too large (--max-body; form-encoded bodies: 8 KiB)";
    if (res.status == 400) msg = "malformed HTTP request";
    send_error(res, ApiError{res.status, msg, res.status >= 500 ? "server_error" : "invalid_request_error", ""});
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what += std::string(": ") + e.what();
    } catch (...) {
    }
    send_error(res, ApiError{500, what, "server_error", ""});
  });
  svr.set_logger([&st](const Request& req, const Response& res) {
    st.metrics.http_response(endpoint_label(req.path), res.status);
    if (!st.options.quiet) {
      std::fprintf(stderr, "qisa-server: %s %s -> %d\n", req.method.c_str(), endpoint_label(req.path).c_str(),
                   res.status);
    }
  });
}

}  // namespace qisa::server
