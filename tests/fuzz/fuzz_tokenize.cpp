// libFuzzer: arbitrary bytes as text to tokenize (invalid UTF-8 is refused
// with a message, whatever the flags).
// Without SKIP_UNKNOWN the tokens detokenize to exactly the input; with it,
// to the input less the characters the vocabulary lacks, so never longer.
// The size query and the filled call agree.
#include <string>

#include "fuzz_support.h"
#include "utf8.h"
#include "utf8_stream.h"

using namespace qisa::fuzz;

namespace {
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    if (!qisa::utf8_next(s, i, &cp)) return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qisa_model* m = fixed_model();
  const char* text = reinterpret_cast<const char*>(data);
  for (uint32_t flags : {0u, static_cast<uint32_t>(QISA_TOKENIZE_SKIP_UNKNOWN)}) {
    size_t need = 0;
    char err[256] = "";
    qisa_status st = qisa_tokenize(m, text, size, nullptr, 0, &need, flags, err, sizeof err);
    if (st != QISA_OK && st != QISA_ERR_BUFFER_TOO_SMALL) {
      const bool unknown = flags == 0 && st == QISA_ERR_UNKNOWN_CHARACTER;
      const bool not_utf8 = st == QISA_ERR_INVALID_ARGUMENT && std::string(err).find("UTF-8") != std::string::npos;
      FUZZ_CHECK((unknown || not_utf8) && err[0] != '\0', "status %d: %s", st, err);
      continue;
    }
    FUZZ_CHECK(need <= size, "%zu tokens for %zu bytes", need, size);
    std::vector<int32_t> toks(need + 1, -7);
    size_t got = 0;
    st = qisa_tokenize(m, text, size, toks.data(), need, &got, flags, err, sizeof err);
    FUZZ_CHECK(st == QISA_OK && got == need && toks[need] == -7, "status %d, %zu of %zu", st, got, need);
    size_t len = 0;
    st = qisa_detokenize(m, toks.data(), got, nullptr, 0, &len);
    FUZZ_CHECK(st == QISA_ERR_BUFFER_TOO_SMALL || (st == QISA_OK && len == 0), "detokenize size %d", st);
    std::string back(len + 1, '\0');
    FUZZ_CHECK(qisa_detokenize(m, toks.data(), got, back.data(), back.size(), &len) == QISA_OK, "detokenize");
    back.resize(len);
    if (flags == 0) {
      FUZZ_CHECK(back == std::string(text, size), "round trip differs");
    } else {
      FUZZ_CHECK(back.size() <= size, "skipping made the text longer");
    }
  }
  // Byte-level BPE encodes any bytes, and they come back exactly; streamed
  // through the UTF-8 guard, every piece is whole characters.
  const qisa_model* b = fixed_bpe_model();
  size_t need = 0;
  const qisa_status st = qisa_tokenize(b, text, size, nullptr, 0, &need, 0, nullptr, 0);
  FUZZ_CHECK(st == (size ? QISA_ERR_BUFFER_TOO_SMALL : QISA_OK), "bpe status %d", st);
  FUZZ_CHECK(need <= size, "bpe: %zu tokens for %zu bytes", need, size);
  std::vector<int32_t> toks(need);
  size_t got = 0;
  FUZZ_CHECK(qisa_tokenize(b, text, size, toks.data(), need, &got, 0, nullptr, 0) == QISA_OK && got == need, "bpe");
  std::string back, streamed;
  qisa::Utf8Stream stream;
  auto keep = [&](const std::string& piece) {
    FUZZ_CHECK(valid_utf8(piece), "the stream emitted invalid UTF-8");
    streamed += piece;
  };
  for (int32_t t : toks) {
    const char* p = nullptr;
    size_t n = 0;
    FUZZ_CHECK(qisa_token_bytes(b, t, &p, &n) == QISA_OK, "token_bytes");
    back.append(p, n);
    stream.add(std::string_view(p, n), keep);
  }
  stream.finish(keep);
  FUZZ_CHECK(back == std::string(text, size), "bpe round trip differs");
  FUZZ_CHECK(valid_utf8(std::string(text, size)) == (streamed == back), "valid input must stream unchanged");
  return 0;
}
