// Streams bytes as whole UTF-8 characters. A byte-level BPE token can end
// inside a character; this holds such a tail back until the token that
// completes it arrives, and turns bytes that can never form a character into
// U+FFFD, so every piece a caller receives is valid UTF-8. Header-only and
// self-contained so that programs on the public API (tools/qisa-server)
// stream exactly as qisa_generate does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qisa {

class Utf8Stream {
 public:
  // Adds bytes; `emit` receives the complete characters now known (if any).
  template <class Emit>
  void add(std::string_view bytes, Emit&& emit) {
    held_.append(bytes);
    std::string out;
    size_t i = 0;
    while (i < held_.size()) {
      const size_t n = char_length(held_, i);
      if (n == kIncomplete) break;  // may still become a character
      if (n == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(held_, i, n);
        i += n;
      }
    }
    held_.erase(0, i);
    if (!out.empty()) emit(out);
  }

  // The end of the stream: a held, never-completed tail becomes U+FFFD.
  template <class Emit>
  void finish(Emit&& emit) {
    if (!held_.empty()) emit(std::string(kReplacement));
    held_.clear();
  }

  bool holding() const { return !held_.empty(); }

 private:
  static constexpr size_t kIncomplete = ~size_t{0};
  static constexpr const char* kReplacement = "\xEF\xBF\xBD";

  // Length of the valid character at s[i]; 0 if the bytes there can never
  // start one; kIncomplete if they are a valid but unfinished prefix.
  // Strict: no overlong forms, surrogates or code points above U+10FFFF.
  static size_t char_length(const std::string& s, size_t i) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) return 1;
    size_t need = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      return 0;
    }
    for (size_t k = 1; k < need; ++k) {
      if (i + k >= s.size()) return kIncomplete;
      const auto b = static_cast<uint8_t>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    }
    return need;
  }

  std::string held_;
};

}  // namespace qisa
