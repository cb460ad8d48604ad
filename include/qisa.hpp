// qisa.hpp - a thin, header-only C++17 wrapper over qisa.h: RAII handles and
// exceptions carrying the status and message. Nothing here is needed to use
// libqisa from C++; it only saves the bookkeeping.
#ifndef QISA_HPP
#define QISA_HPP

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "qisa.h"

namespace qisa_cpp {

class Error : public std::runtime_error {
 public:
  Error(qisa_status status, const std::string& message)
      : std::runtime_error(std::string(qisa_status_string(status)) + ": " + message), status_(status) {}
  qisa_status status() const noexcept { return status_; }

 private:
  qisa_status status_;
};

class Model {
 public:
  explicit Model(const std::string& path, const qisa_model_params* params = nullptr) {
    char err[1024];
    qisa_model* m = nullptr;
    const qisa_status st = qisa_model_load_file(path.c_str(), params, &m, err, sizeof err);
    if (st != QISA_OK) throw Error(st, err);
    handle_.reset(m);
  }
  qisa_model* get() const noexcept { return handle_.get(); }

  qisa_model_info info() const {
    qisa_model_info i{};
    i.struct_size = sizeof i;
    qisa_model_get_info(get(), &i);
    return i;
  }

  std::vector<int32_t> tokenize(std::string_view text, uint32_t flags = QISA_TOKENIZE_DEFAULT) const {
    size_t n = 0;
    char err[512];
    qisa_status st = qisa_tokenize(get(), text.data(), text.size(), nullptr, 0, &n, flags, err, sizeof err);
    if (st != QISA_OK && st != QISA_ERR_BUFFER_TOO_SMALL) throw Error(st, err);
    std::vector<int32_t> ids(n);
    st = qisa_tokenize(get(), text.data(), text.size(), ids.data(), ids.size(), &n, flags, err, sizeof err);
    if (st != QISA_OK) throw Error(st, err);
    return ids;
  }

  // The token's bytes (for byte-level BPE possibly part of a UTF-8 character).
  std::string piece(int32_t token) const {
    const char* p = nullptr;
    size_t n = 0;
    const qisa_status st = qisa_token_bytes(get(), token, &p, &n);
    if (st != QISA_OK) throw Error(st, "token " + std::to_string(token));
    return std::string(p, n);
  }

 private:
  struct Free {
    void operator()(qisa_model* m) const noexcept { qisa_model_free(m); }
  };
  std::unique_ptr<qisa_model, Free> handle_;
};

// One thread at a time; the model must outlive it.
class Context {
 public:
  explicit Context(const Model& model, const qisa_context_params* params = nullptr) {
    char err[1024];
    qisa_context* c = nullptr;
    const qisa_status st = qisa_context_create(model.get(), params, &c, err, sizeof err);
    if (st != QISA_OK) throw Error(st, err);
    handle_.reset(c);
  }
  qisa_context* get() const noexcept { return handle_.get(); }

  void decode(const std::vector<qisa_batch_entry>& entries) {
    check(qisa_decode(get(), entries.data(), static_cast<int32_t>(entries.size())));
  }
  const float* logits(int32_t index) {
    const float* l = nullptr;
    check(qisa_get_logits(get(), index, &l));
    return l;
  }
  void clear(int32_t seq = -1) { check(qisa_seq_clear(get(), seq)); }
  // Logits of every position of one window from position 0 (qisa_evaluate_window).
  std::vector<float> evaluate_window(const std::vector<int32_t>& tokens, int32_t vocab_size, int32_t seq = 0) {
    std::vector<float> out(tokens.size() * static_cast<size_t>(vocab_size));
    check(qisa_evaluate_window(get(), seq, tokens.data(), static_cast<int32_t>(tokens.size()), out.data(), out.size()));
    return out;
  }

  // Generates text; on_piece(std::string_view) is called for each piece and
  // may return false to stop.
  template <class OnPiece>
  qisa_generate_result generate(const std::string& prompt, qisa_generate_params params, OnPiece&& on_piece) {
    params.on_piece = [](const char* p, size_t n, void* user) -> int {
      return (*static_cast<OnPiece*>(user))(std::string_view(p, n)) ? 0 : 1;
    };
    params.user_data = &on_piece;
    qisa_generate_result r{};
    r.struct_size = sizeof r;
    check(qisa_generate(get(), prompt.c_str(), &params, &r));
    return r;
  }

 private:
  void check(qisa_status st) {
    if (st != QISA_OK) throw Error(st, qisa_context_last_error(get()));
  }
  struct Free {
    void operator()(qisa_context* c) const noexcept { qisa_context_free(c); }
  };
  std::unique_ptr<qisa_context, Free> handle_;
};

}  // namespace qisa_cpp

#endif  // QISA_HPP
