#include "tokenizer.h"

#include <algorithm>

#include "error.h"
#include "utf8.h"

namespace qisa {

void tokenize(const Tokenizer& tok, const char* text, size_t len, bool skip_unknown, std::vector<int32_t>& out) {
  const std::string_view sv(text, len);
  if (tok.kind == TokenizerKind::ByteBPE) {  // any bytes encode: nothing is unknown
    tok.bpe.encode(sv, out);
    return;
  }
  for (size_t i = 0; i < len;) {
    const size_t start = i;
    uint32_t cp = 0;
    if (!utf8_next(sv, i, &cp)) fail(QISA_ERR_INVALID_ARGUMENT, "text is not valid UTF-8 at byte %zu", start);
    const size_t n = i - start;
    auto it = std::lower_bound(tok.char_index.begin(), tok.char_index.end(), std::make_pair(cp, int32_t{-1}));
    if (it != tok.char_index.end() && it->first == cp) {
      out.push_back(it->second);
    } else if (!skip_unknown) {
      const std::string ch(text + start, n);
      const bool printable = cp >= 0x20 && cp != 0x7f;
      fail(QISA_ERR_UNKNOWN_CHARACTER, "character %s%s%s(U+%04X) at byte %zu is not in the model's vocabulary",
           printable ? "'" : "", printable ? ch.c_str() : "", printable ? "' " : "", cp, start);
    }
  }
}

}  // namespace qisa
