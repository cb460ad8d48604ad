#include "tokenizer.h"

#include <algorithm>

#include "error.h"

namespace qisa {

void tokenize(const Tokenizer& tok, const char* text, size_t len, bool skip_unknown, std::vector<int32_t>& out) {
  for (size_t i = 0; i < len;) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || i + n > len) fail(QISA_ERR_INVALID_ARGUMENT, "text is not valid UTF-8 at byte %zu", i);
    uint32_t cp = n == 1 ? c : c & (0x7fu >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) fail(QISA_ERR_INVALID_ARGUMENT, "text is not valid UTF-8 at byte %zu", i);
      cp = (cp << 6) | (cc & 0x3f);
    }
    auto it = std::lower_bound(tok.char_index.begin(), tok.char_index.end(), std::make_pair(cp, int32_t{-1}));
    if (it != tok.char_index.end() && it->first == cp) {
      out.push_back(it->second);
    } else if (!skip_unknown) {
      const std::string ch(text + i, n);
      const bool printable = cp >= 0x20 && cp != 0x7f;
      fail(QISA_ERR_UNKNOWN_CHARACTER, "character %s%s%s(U+%04X) at byte %zu is not in the model's vocabulary",
           printable ? "'" : "", printable ? ch.c_str() : "", printable ? "' " : "", cp, i);
    }
    i += n;
  }
}

}  // namespace qisa
