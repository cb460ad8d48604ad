// libFuzzer: arbitrary bytes as text to tokenize (invalid UTF-8 is refused
// with a message, whatever the flags).
// Without SKIP_UNKNOWN the tokens detokenize to exactly the input; with it,
// to the input less the characters the vocabulary lacks, so never longer.
// The size query and the filled call agree.
#include <string>

#include "fuzz_support.h"

using namespace qisa::fuzz;

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
  return 0;
}
