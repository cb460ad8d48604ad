// qisa-server's command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "qisa.h"

namespace qisa::server {

struct Options {
  std::string model;
  std::string alias;  // the model's name in /v1/models and responses (default: the file's base name)
  std::string host = "127.0.0.1";
  int port = 8080;       // 0: any free port (printed)
  int32_t parallel = 4;  // sequences decoded together (context max_sequences)
  int32_t batch = 0;     // entries per qisa_decode call; 0: max(64, parallel)
  int32_t threads = 0;   // CPU threads of the context (0: automatic)
  qisa_backend backend = QISA_BACKEND_AUTO;
  qisa_engine engine = QISA_ENGINE_FAST;
  qisa_overflow overflow = QISA_OVERFLOW_SLIDE;
  std::string api_key;     // empty: no key asked
  int32_t max_queue = 64;  // requests waiting for a slot before 503
  double timeout_s = 600;  // per-request deadline, from arrival
  size_t max_body = 1 << 20;
  int32_t max_tokens = 4096;    // largest max_tokens a request may ask
  int32_t default_tokens = 16;  // max_tokens when a request names none (OpenAI's default)
  double lifetime_s = 0;        // > 0: drain and exit after this long (tests)
  std::string port_file;        // write the bound port here once listening
  bool quiet = false;
};

// Parses argv; on a bad flag returns std::nullopt with `error` set, on
// --help / --version sets `exit_now` (text printed).
std::optional<Options> parse_options(int argc, char** argv, std::string& error, bool& exit_now);

}  // namespace qisa::server
