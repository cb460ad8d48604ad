#include "completion_request.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <type_traits>

namespace qisa::server {
namespace {

using nlohmann::json;

ApiError bad(std::string message, std::string code = "") {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(code)};
}

std::optional<ApiError> parse_object(const std::string& body, json& j) {
  j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("the body is not valid JSON");
  if (!j.is_object()) return bad("the body must be a JSON object");
  return std::nullopt;
}

// A number field within [lo, hi]; absent or null leaves `out` as it is.
template <class T>
std::optional<ApiError> number(const json& j, const char* key, double lo, double hi, T& out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return bad(std::string("'") + key + "' must be a number");
  const double x = it->get<double>();
  if (!(x >= lo && x <= hi)) {
    char range[96];
    std::snprintf(range, sizeof range, ", expected %.9g .. %.9g", lo, hi);
    return bad(std::string("'") + key + "' is " + it->dump() + range);
  }
  if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) return bad(std::string("'") + key + "' must be an integer");
    out = static_cast<T>(it->get<int64_t>());
  } else {
    out = static_cast<T>(x);
  }
  return std::nullopt;
}

std::optional<ApiError> tokenize(const RequestLimits& lim, const std::string& text, std::vector<int32_t>& out) {
  if (text.size() > lim.max_prompt_tokens * 4) return bad("the text is too long");
  size_t n = 0;
  char err[256] = "";
  out.resize(text.size());  // a character vocabulary: at most one token per byte
  qisa_status s = qisa_tokenize(lim.model, text.data(), text.size(), out.data(), out.size(), &n, 0, err, sizeof err);
  if (s == QISA_ERR_BUFFER_TOO_SMALL && n <= lim.max_prompt_tokens) {
    out.resize(n);
    s = qisa_tokenize(lim.model, text.data(), text.size(), out.data(), out.size(), &n, 0, err, sizeof err);
  }
  if (s == QISA_ERR_UNKNOWN_CHARACTER) return bad(err, "unknown_character");
  if (s != QISA_OK) return bad(std::string("cannot tokenize the text: ") + err);
  out.resize(n);
  return std::nullopt;
}

std::optional<ApiError> token_ids(const RequestLimits& lim, const json& arr, const char* what,
                                  std::vector<int32_t>& out) {
  if (arr.size() > lim.max_prompt_tokens) return bad(std::string(what) + " has too many tokens");
  out.clear();
  for (const auto& t : arr) {
    if (!t.is_number_integer()) return bad(std::string(what) + " must be a string or an array of token ids");
    const int64_t id = t.get<int64_t>();
    if (id < 0 || id >= lim.vocab_size) {
      return bad(std::string(what) + " has token id " + std::to_string(id) + ", out of range 0.." +
                 std::to_string(lim.vocab_size - 1));
    }
    out.push_back(static_cast<int32_t>(id));
  }
  return std::nullopt;
}

std::optional<ApiError> prompt(const RequestLimits& lim, const json& j, std::vector<int32_t>& out) {
  const auto it = j.find("prompt");
  if (it == j.end() || it->is_null()) return bad("'prompt' is required");
  const json* p = &*it;
  // ["text"] is one prompt; several prompts in one request are not served.
  if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
  if (p->is_string()) {
    if (auto e = tokenize(lim, p->get_ref<const std::string&>(), out)) return e;
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    if (auto e = token_ids(lim, *p, "'prompt'", out)) return e;
  } else if (p->is_array() && p->size() > 1) {
    return bad("one prompt per request: send several requests instead of an array of prompts");
  } else {
    return bad("'prompt' must be a string or an array of token ids");
  }
  if (out.empty()) return bad("the prompt has no tokens");
  if (lim.overflow == QISA_OVERFLOW_ERROR && out.size() > static_cast<size_t>(lim.n_ctx)) {
    return bad("the prompt has " + std::to_string(out.size()) + " tokens, more than the model's window of " +
                   std::to_string(lim.n_ctx) + " (server started with --context-shift error)",
               "context_length_exceeded");
  }
  return std::nullopt;
}

std::optional<ApiError> stops(const RequestLimits& lim, const json& j, std::vector<std::string>& out) {
  const auto it = j.find("stop");
  if (it == j.end() || it->is_null()) return std::nullopt;
  auto add = [&](const json& s) -> std::optional<ApiError> {
    if (!s.is_string()) return bad("'stop' must be a string or an array of strings");
    const auto& str = s.get_ref<const std::string&>();
    if (str.empty()) return bad("'stop' has an empty string");
    if (str.size() > lim.max_stop_bytes)
      return bad("a stop string is longer than " + std::to_string(lim.max_stop_bytes) + " bytes");
    out.push_back(str);
    return std::nullopt;
  };
  if (it->is_array()) {
    if (it->size() > lim.max_stops) return bad("more than " + std::to_string(lim.max_stops) + " stop strings");
    for (const auto& s : *it) {
      if (auto e = add(s)) return e;
    }
    return std::nullopt;
  }
  return add(*it);
}

// Fields of the OpenAI API this server does not implement: refused when
// they ask for something, rather than silently ignored.
std::optional<ApiError> unsupported(const json& j) {
  auto is = [&](const char* key, auto pred) {
    const auto it = j.find(key);
    return it != j.end() && !it->is_null() && pred(*it);
  };
  if (is("n", [](const json& v) { return !(v.is_number_integer() && v.get<int64_t>() == 1); }))
    return bad("'n' other than 1 is not supported: send n requests");
  if (is("best_of", [](const json& v) { return !(v.is_number_integer() && v.get<int64_t>() == 1); }))
    return bad("'best_of' other than 1 is not supported");
  if (is("echo", [](const json& v) { return !(v.is_boolean() && !v.get<bool>()); }))
    return bad("'echo' is not supported");
  if (is("logprobs", [](const json& v) { return !(v.is_number_integer() && v.get<int64_t>() == 0); }))
    return bad("'logprobs' is not supported");
  if (is("suffix", [](const json&) { return true; })) return bad("'suffix' is not supported");
  if (is("logit_bias", [](const json& v) { return !(v.is_object() && v.empty()); }))
    return bad("'logit_bias' is not supported");
  for (const char* key : {"frequency_penalty", "presence_penalty"}) {
    if (is(key, [](const json& v) { return !(v.is_number() && v.get<double>() == 0.0); }))
      return bad(std::string("'") + key + "' is not supported; use 'repeat_penalty'");
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_completion(const std::string& body, const RequestLimits& lim, CompletionRequest& out) {
  json j;
  if (auto e = parse_object(body, j)) return e;
  if (auto e = unsupported(j)) return e;
  if (auto e = prompt(lim, j, out.prompt)) return e;
  out.max_tokens = lim.default_tokens;
  if (auto e = number(j, "max_tokens", 0, lim.max_tokens, out.max_tokens)) {
    e->message += " (this server's --max-tokens)";
    return e;
  }
  qisa_sampler_params& s = out.sampling;
  qisa_sampler_default_params(&s);
  if (auto e = number(j, "temperature", 0, 100, s.temperature)) return e;
  if (auto e = number(j, "top_p", 0, 1, s.top_p)) return e;
  if (s.top_p <= 0) return bad("'top_p' must be > 0 (1: off)");
  if (auto e = number(j, "top_k", 0, 1 << 30, s.top_k)) return e;
  if (auto e = number(j, "min_p", 0, 1, s.min_p)) return e;
  if (auto e = number(j, "repeat_penalty", 1e-6, 1e6, s.repeat_penalty)) return e;
  if (auto e = number(j, "repeat_last_n", 0, lim.max_repeat_last_n, s.repeat_last_n)) return e;
  // No seed: a random one, as OpenAI does; -1 says the same.
  int64_t seed = -1;
  if (auto e = number(j, "seed", -1, 9007199254740991.0, seed)) return e;
  s.seed = seed >= 0 ? static_cast<uint64_t>(seed) : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  if (auto e = stops(lim, j, out.stops)) return e;
  const auto st = j.find("stream");
  if (st != j.end() && !st->is_null()) {
    if (!st->is_boolean()) return bad("'stream' must be true or false");
    out.stream = st->get<bool>();
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tokenize(const std::string& body, const RequestLimits& lim,
                                       std::vector<int32_t>& tokens) {
  json j;
  if (auto e = parse_object(body, j)) return e;
  const auto it = j.find("content");
  if (it == j.end() || !it->is_string()) return bad("'content' must be a string");
  return tokenize(lim, it->get_ref<const std::string&>(), tokens);
}

std::optional<ApiError> parse_detokenize(const std::string& body, const RequestLimits& lim,
                                         std::vector<int32_t>& tokens) {
  json j;
  if (auto e = parse_object(body, j)) return e;
  const auto it = j.find("tokens");
  if (it == j.end() || !it->is_array()) return bad("'tokens' must be an array of token ids");
  return token_ids(lim, *it, "'tokens'", tokens);
}

}  // namespace qisa::server
