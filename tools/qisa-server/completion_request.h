// A POST /v1/completions body, parsed and checked before anything is queued.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api_error.h"
#include "qisa.h"

namespace qisa::server {

struct CompletionRequest {
  std::vector<int32_t> prompt;  // token ids, at least one
  int32_t max_tokens = 16;
  qisa_sampler_params sampling{};
  std::vector<std::string> stops;
  bool stream = false;
};

// What a request may ask of this server.
struct RequestLimits {
  const qisa_model* model = nullptr;
  int32_t vocab_size = 0;
  int32_t n_ctx = 0;
  qisa_overflow overflow = QISA_OVERFLOW_SLIDE;
  int32_t max_tokens = 4096;
  int32_t default_tokens = 16;
  size_t max_stops = 16;
  size_t max_stop_bytes = 256;
  int32_t max_repeat_last_n = 4096;
  size_t max_prompt_tokens = 1 << 20;
};

// Parses `body` into `out`; returns the error to answer instead.
std::optional<ApiError> parse_completion(const std::string& body, const RequestLimits& limits, CompletionRequest& out);

// POST /tokenize {"content": TEXT} and /detokenize {"tokens": [ids]}.
std::optional<ApiError> parse_tokenize(const std::string& body, const RequestLimits& limits,
                                       std::vector<int32_t>& tokens);
std::optional<ApiError> parse_detokenize(const std::string& body, const RequestLimits& limits,
                                         std::vector<int32_t>& tokens);

}  // namespace qisa::server
