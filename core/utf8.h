// UTF-8 decoding and encoding, strict: overlong forms, surrogates and code
// points above U+10FFFF are invalid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qisa {

// Decodes the code point starting at s[i] into *cp and advances i. Returns
// false (leaving i) on invalid or truncated input.
bool utf8_next(std::string_view s, size_t& i, uint32_t* cp);

std::string utf8_encode(uint32_t cp);

}  // namespace qisa
