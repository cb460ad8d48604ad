// Byte-level BPE (GPT-2's scheme): text is cut into chunks by a fixed rule,
// each chunk starts as its bytes (one token per byte value, so any input
// encodes) and adjacent tokens are merged by rank until no ranked pair is
// left. The trainer learns the merges; the runtime and the trainer encode
// with this one implementation. docs/format.md, "Byte-level BPE", is the
// contract (the chunk rule, the stored form of pieces and merges).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qisa::bpe {

// GPT-2's map from a byte to a printable code point (stored pieces use it,
// so that every piece is valid UTF-8 without spaces), and back.
uint32_t byte_to_code_point(uint8_t b);
// The UTF-8 of a raw byte string under that map; and its inverse, false if
// `s` holds a character that is no mapped byte.
std::string to_stored(std::string_view raw);
bool from_stored(std::string_view s, std::string* raw);

// Cuts `text` into the chunks merges never cross: maximal runs of one class
// (letters: ASCII letters and every byte >= 0x80; digits; newlines; other
// whitespace; everything else), a single space joining the letter, digit or
// other run after it, and no chunk longer than kMaxChunk bytes (longer runs
// are cut every kMaxChunk bytes). Calls f(offset, length) in order.
inline constexpr size_t kMaxChunk = 64;
template <typename F>
void for_each_chunk(std::string_view text, F&& f);

class Encoder {
 public:
  Encoder() = default;
  // `pieces`: raw bytes per id; `merges`: (left id, right id) by rank, each
  // producing `merged[r]`. Every single byte must be a piece (byte_id).
  Encoder(const std::vector<std::string>& pieces, const std::vector<std::pair<int32_t, int32_t>>& merges,
          const std::vector<int32_t>& merged);

  // Appends the ids of `text` (any bytes) to `out`.
  void encode(std::string_view text, std::vector<int32_t>& out) const;
  int32_t byte_id(uint8_t b) const { return byte_id_[b]; }

 private:
  void encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const;
  struct Merge {
    uint32_t rank;
    int32_t id;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  int32_t byte_id_[256] = {};
  std::unordered_map<uint64_t, Merge> merges_;
};

struct Learned {
  std::vector<std::string> pieces;  // raw bytes; ids 0..255 are the bytes
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> merged;
};

// Learns up to vocab_size - 256 merges on `text` (most frequent adjacent
// pair first, ties to the smaller ids; stops when no pair occurs twice).
Learned learn(std::string_view text, uint32_t vocab_size);

// ---- implementation of the template ----

namespace detail {
enum Class : uint8_t { Letter, Digit, Newline, Space, Other };
inline Class class_of(uint8_t b) {
  if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b >= 0x80) return Letter;
  if (b >= '0' && b <= '9') return Digit;
  if (b == '\n') return Newline;
  if (b == ' ' || b == '\t' || b == '\r' || b == '\v' || b == '\f') return Space;
  return Other;
}
}  // namespace detail

template <typename F>
void for_each_chunk(std::string_view text, F&& f) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    size_t start = i;
    auto c = detail::class_of(static_cast<uint8_t>(text[i]));
    // " word": a space joins a letter, digit or other run right after it.
    if (text[i] == ' ' && i + 1 < n) {
      const auto next = detail::class_of(static_cast<uint8_t>(text[i + 1]));
      if (next == detail::Letter || next == detail::Digit || next == detail::Other) {
        c = next;
        ++i;
      }
    }
    ++i;
    while (i < n && detail::class_of(static_cast<uint8_t>(text[i])) == c) {
      // A run of spaces leaves its last space to the word after it.
      if (c == detail::Space && text[i] == ' ' && i + 1 < n &&
          detail::class_of(static_cast<uint8_t>(text[i + 1])) != detail::Space &&
          detail::class_of(static_cast<uint8_t>(text[i + 1])) != detail::Newline)
        break;
      ++i;
    }
    for (size_t at = start; at < i; at += kMaxChunk) f(at, std::min(kMaxChunk, i - at));
  }
}

}  // namespace qisa::bpe
