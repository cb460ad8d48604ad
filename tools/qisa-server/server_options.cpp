#include "server_options.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <type_traits>
#include <utility>

namespace qisa::server {
namespace {

void usage() {
  std::printf(
      "usage: qisa-server -m MODEL [options]\n"
      "Serves a QISA model over HTTP with the OpenAI completions API and continuous batching.\n\n"
      "  -m, --model FILE        .qisa model file (required)\n"
      "  -a, --alias NAME        model name in responses (default: the file's base name)\n"
      "      --host H            address to listen on (127.0.0.1)\n"
      "      --port N            port; 0 = any free port, printed (8080)\n"
      "      --port-file FILE    write the bound port to FILE once listening\n"
      "  -np, --parallel N       sequences decoded together (4)\n"
      "  -b, --batch N           tokens per decode call: next tokens + prompt chunks (max(64, parallel))\n"
      "  -t, --threads N         CPU threads (0 = automatic)\n"
      "      --backend B         cpu | cuda | auto (auto)\n"
      "      --engine E          fast | reference (fast)\n"
      "      --context-shift M   past the model's window: slide (exact, default) | shift-half | error\n"
      "      --api-key KEY       require 'Authorization: Bearer KEY' (all but /health)\n"
      "      --max-queue N       requests waiting for a slot before 503 (64)\n"
      "      --timeout S         per-request deadline in seconds, queueing included (600)\n"
      "      --max-body BYTES    largest request body (1048576)\n"
      "      --max-tokens N      largest max_tokens a request may ask (4096)\n"
      "      --default-tokens N  max_tokens of a request that names none (16)\n"
      "      --lifetime S        drain and exit after S seconds (0 = run until SIGTERM/SIGINT)\n"
      "      --quiet             no request log on stderr\n"
      "  -h, --help              this text\n"
      "      --version           versions of libqisa and the format\n");
}

bool parse_long(const char* v, long lo, long hi, long& out) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || errno != 0 || x < lo || x > hi) return false;
  out = x;
  return true;
}

bool parse_double(const char* v, double lo, double hi, double& out) {
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(x >= lo && x <= hi)) return false;
  out = x;
  return true;
}

std::string base_name(const std::string& path) {
  std::string b = path.substr(path.find_last_of('/') + 1);
  const size_t dot = b.rfind(".qisa");
  if (dot != std::string::npos && dot > 0 && dot + 5 == b.size()) b.resize(dot);
  return b;
}

}  // namespace

std::optional<Options> parse_options(int argc, char** argv, std::string& error, bool& exit_now) {
  Options o;
  exit_now = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* v = nullptr;
    auto value = [&]() -> bool {
      if (i + 1 >= argc) {
        error = std::string(a) + " needs a value";
        return false;
      }
      v = argv[++i];
      return true;
    };
    auto integer = [&](long lo, long hi, auto& out) -> bool {
      long x = 0;
      if (!value()) return false;
      if (!parse_long(v, lo, hi, x)) {
        error = std::string(a) + " needs an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" +
                v + "'";
        return false;
      }
      out = static_cast<std::remove_reference_t<decltype(out)>>(x);
      return true;
    };
    auto real = [&](double lo, double hi, double& out) -> bool {
      if (!value()) return false;
      if (!parse_double(v, lo, hi, out)) {
        error = std::string(a) + " needs a number in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" +
                v + "'";
        return false;
      }
      return true;
    };
    auto choice = [&](std::initializer_list<std::pair<const char*, int>> table, int& out) -> bool {
      if (!value()) return false;
      std::string names;
      for (const auto& [name, x] : table) {
        if (std::strcmp(name, v) == 0) {
          out = x;
          return true;
        }
        names += names.empty() ? name : std::string(" | ") + name;
      }
      error = std::string(a) + " is one of " + names + ", got '" + v + "'";
      return false;
    };
    bool ok = true;
    int e = 0;
    if (a == "-h" || a == "--help") {
      usage();
      exit_now = true;
      return std::nullopt;
    } else if (a == "--version") {
      std::printf("qisa-server (libqisa %s, model format %d.%d)\n", qisa_version(), QISA_FORMAT_VERSION_MAJOR,
                  QISA_FORMAT_VERSION_MINOR);
      exit_now = true;
      return std::nullopt;
    } else if (a == "-m" || a == "--model") {
      ok = value() && (o.model = v, true);
    } else if (a == "-a" || a == "--alias") {
      ok = value() && (o.alias = v, true);
    } else if (a == "--host") {
      ok = value() && (o.host = v, true);
    } else if (a == "--port") {
      ok = integer(0, 65535, o.port);
    } else if (a == "--port-file") {
      ok = value() && (o.port_file = v, true);
    } else if (a == "-np" || a == "--parallel") {
      ok = integer(1, 1024, o.parallel);
    } else if (a == "-b" || a == "--batch") {
      ok = integer(1, 65536, o.batch);
    } else if (a == "-t" || a == "--threads") {
      ok = integer(0, 1024, o.threads);
    } else if (a == "--backend") {
      ok = choice({{"auto", QISA_BACKEND_AUTO}, {"cpu", QISA_BACKEND_CPU}, {"cuda", QISA_BACKEND_CUDA}}, e);
      o.backend = static_cast<qisa_backend>(e);
    } else if (a == "--engine") {
      ok = choice({{"fast", QISA_ENGINE_FAST}, {"reference", QISA_ENGINE_REFERENCE}}, e);
      o.engine = static_cast<qisa_engine>(e);
    } else if (a == "--context-shift") {
      ok = choice(
          {{"slide", QISA_OVERFLOW_SLIDE}, {"shift-half", QISA_OVERFLOW_SHIFT_HALF}, {"error", QISA_OVERFLOW_ERROR}},
          e);
      o.overflow = static_cast<qisa_overflow>(e);
    } else if (a == "--api-key") {
      ok = value() && (o.api_key = v, true);
      if (ok && o.api_key.empty()) {
        error = "--api-key is empty";
        ok = false;
      }
    } else if (a == "--max-queue") {
      ok = integer(0, 100000, o.max_queue);
    } else if (a == "--timeout") {
      ok = real(0.001, 1e6, o.timeout_s);
    } else if (a == "--max-body") {
      ok = integer(1, 1L << 30, o.max_body);
    } else if (a == "--max-tokens") {
      ok = integer(1, 1 << 24, o.max_tokens);
    } else if (a == "--default-tokens") {
      ok = integer(0, 1 << 24, o.default_tokens);
    } else if (a == "--lifetime") {
      ok = real(0, 1e7, o.lifetime_s);
    } else if (a == "--quiet") {
      o.quiet = true;
    } else {
      error = "unknown option '" + std::string(a) + "'";
      ok = false;
    }
    if (!ok) return std::nullopt;
  }
  if (o.model.empty()) {
    error = "no model: -m FILE";
    return std::nullopt;
  }
  if (o.default_tokens > o.max_tokens) {
    error = "--default-tokens is larger than --max-tokens";
    return std::nullopt;
  }
  if (o.batch == 0) o.batch = o.parallel > 64 ? o.parallel : 64;
  if (o.batch < o.parallel) {
    error = "--batch must be at least --parallel (each step decodes one token of every active request)";
    return std::nullopt;
  }
  if (o.alias.empty()) o.alias = base_name(o.model);
  return o;
}

}  // namespace qisa::server
