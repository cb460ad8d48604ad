// Text to tokens: the char-level tokenizer (one token per Unicode code
// point) or byte-level BPE (core/bpe.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model.h"

namespace qisa {

// Appends the ids of `text` to `out`. Char: throws QISA_ERR_UNKNOWN_CHARACTER
// naming the character and its byte offset (unless skip_unknown), or
// QISA_ERR_INVALID_ARGUMENT for invalid UTF-8. Byte-level BPE encodes any
// bytes.
void tokenize(const Tokenizer& tok, const char* text, size_t len, bool skip_unknown, std::vector<int32_t>& out);

}  // namespace qisa
