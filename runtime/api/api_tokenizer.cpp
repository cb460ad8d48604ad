// C API: text <-> tokens.
#include <cstring>
#include <vector>

#include "api_guard.h"
#include "api_model.h"
#include "tokenizer.h"

extern "C" {

qisa_status qisa_tokenize(const qisa_model* model, const char* text, size_t text_len, int32_t* tokens, size_t capacity,
                          size_t* out_count, uint32_t flags, char* errmsg, size_t errmsg_size) {
  std::string msg;
  const qisa_status st = qisa::guarded(msg, [&] {
    if (model == nullptr || out_count == nullptr || (text == nullptr && text_len > 0)) {
      qisa::fail(QISA_ERR_INVALID_ARGUMENT, "model, out_count or text is NULL");
    }
    std::vector<int32_t> ids;
    qisa::tokenize(qisa::model_of(model).tokenizer, text, text_len, (flags & QISA_TOKENIZE_SKIP_UNKNOWN) != 0, ids);
    *out_count = ids.size();
    if (ids.size() > capacity || (tokens == nullptr && !ids.empty())) {
      qisa::fail(QISA_ERR_BUFFER_TOO_SMALL, "the text needs %zu tokens, the buffer holds %zu", ids.size(),
                 tokens == nullptr ? size_t{0} : capacity);
    }
    if (!ids.empty()) std::memcpy(tokens, ids.data(), ids.size() * sizeof(int32_t));
  });
  qisa::copy_message(st == QISA_OK ? std::string() : msg, errmsg, errmsg_size);
  return st;
}

qisa_status qisa_token_piece(const qisa_model* model, int32_t token, const char** out_piece) {
  if (model == nullptr || out_piece == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  const auto& pieces = qisa::model_of(model).tokenizer.pieces;
  if (token < 0 || static_cast<size_t>(token) >= pieces.size()) return QISA_ERR_OUT_OF_RANGE;
  *out_piece = pieces[static_cast<size_t>(token)].c_str();
  return QISA_OK;
}

qisa_status qisa_token_bytes(const qisa_model* model, int32_t token, const char** out_bytes, size_t* out_len) {
  if (model == nullptr || out_bytes == nullptr || out_len == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  const auto& pieces = qisa::model_of(model).tokenizer.pieces;
  if (token < 0 || static_cast<size_t>(token) >= pieces.size()) return QISA_ERR_OUT_OF_RANGE;
  *out_bytes = pieces[static_cast<size_t>(token)].data();
  *out_len = pieces[static_cast<size_t>(token)].size();
  return QISA_OK;
}

qisa_status qisa_detokenize(const qisa_model* model, const int32_t* tokens, size_t n, char* buf, size_t capacity,
                            size_t* out_len) {
  if (model == nullptr || out_len == nullptr || (tokens == nullptr && n > 0)) return QISA_ERR_INVALID_ARGUMENT;
  const auto& pieces = qisa::model_of(model).tokenizer.pieces;
  size_t len = 0;
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= pieces.size()) return QISA_ERR_OUT_OF_RANGE;
    len += pieces[static_cast<size_t>(tokens[i])].size();
  }
  *out_len = len;
  if (buf == nullptr || capacity < len + 1) return QISA_ERR_BUFFER_TOO_SMALL;
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = pieces[static_cast<size_t>(tokens[i])];
    std::memcpy(buf, p.data(), p.size());
    buf += p.size();
  }
  *buf = '\0';
  return QISA_OK;
}

}  // extern "C"
