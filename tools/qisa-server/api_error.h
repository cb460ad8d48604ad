// An error answered to a client: HTTP status and an OpenAI-style body.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace qisa::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;  // e.g. "context_length_exceeded"; empty: none
};

inline nlohmann::json error_body(const ApiError& e) {
  nlohmann::json err = {{"message", e.message}, {"type", e.type}, {"code", nullptr}};
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

// Strings from clients and models are not always valid UTF-8: replace bad
// bytes instead of throwing.
inline std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace qisa::server
