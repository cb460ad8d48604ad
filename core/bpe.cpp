#include "bpe.h"

#include <array>
#include <map>
#include <stdexcept>

#include "utf8.h"

namespace qisa::bpe {

namespace {

// GPT-2: printable Latin-1 bytes map to themselves, the others (controls,
// space, 0x7f-0xa0, 0xad) to U+0100 upwards in byte order.
struct Tables {
  std::array<uint32_t, 256> to{};
  std::map<uint32_t, uint8_t> from;
  Tables() {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      to[b] = printable ? b : next++;
      from[to[b]] = static_cast<uint8_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;  // immutable after construction
  return t;
}

}  // namespace

uint32_t byte_to_code_point(uint8_t b) {
  return tables().to[b];
}

std::string to_stored(std::string_view raw) {
  std::string out;
  for (char c : raw) out += utf8_encode(byte_to_code_point(static_cast<uint8_t>(c)));
  return out;
}

bool from_stored(std::string_view s, std::string* raw) {
  raw->clear();
  const auto& from = tables().from;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    if (!utf8_next(s, i, &cp)) return false;
    const auto it = from.find(cp);
    if (it == from.end()) return false;
    raw->push_back(static_cast<char>(it->second));
  }
  return true;
}

Encoder::Encoder(const std::vector<std::string>& pieces, const std::vector<std::pair<int32_t, int32_t>>& merges,
                 const std::vector<int32_t>& merged) {
  std::fill(std::begin(byte_id_), std::end(byte_id_), -1);
  for (size_t i = 0; i < pieces.size(); ++i)
    if (pieces[i].size() == 1) byte_id_[static_cast<uint8_t>(pieces[i][0])] = static_cast<int32_t>(i);
  for (int b = 0; b < 256; ++b)
    if (byte_id_[b] < 0) throw std::invalid_argument("byte " + std::to_string(b) + " has no token");
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r)  // the first rank of a pair wins
    merges_.emplace(key(merges[r].first, merges[r].second), Merge{static_cast<uint32_t>(r), merged[r]});
}

void Encoder::encode(std::string_view text, std::vector<int32_t>& out) const {
  for_each_chunk(text, [&](size_t at, size_t len) { encode_chunk(text.substr(at, len), out); });
}

void Encoder::encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const {
  int32_t sym[kMaxChunk];
  size_t n = chunk.size();
  for (size_t i = 0; i < n; ++i) sym[i] = byte_id_[static_cast<uint8_t>(chunk[i])];
  // Merge the lowest-ranked adjacent pair, leftmost first, until none is
  // ranked: O(n^2) lookups on at most kMaxChunk symbols.
  while (n > 1) {
    uint32_t best_rank = UINT32_MAX;
    size_t best_at = 0;
    int32_t best_id = -1;
    for (size_t i = 0; i + 1 < n; ++i) {
      const auto it = merges_.find(key(sym[i], sym[i + 1]));
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        best_at = i;
        best_id = it->second.id;
      }
    }
    if (best_id < 0) break;
    sym[best_at] = best_id;
    for (size_t i = best_at + 1; i + 1 < n; ++i) sym[i] = sym[i + 1];
    --n;
  }
  out.insert(out.end(), sym, sym + n);
}

Learned learn(std::string_view text, uint32_t vocab_size) {
  Learned l;
  for (int b = 0; b < 256; ++b) l.pieces.emplace_back(1, static_cast<char>(b));
  std::unordered_map<std::string_view, uint64_t> counts;
  for_each_chunk(text, [&](size_t at, size_t len) { ++counts[text.substr(at, len)]; });
  // Unique chunks in a fixed order (the map's order is not).
  std::vector<std::pair<std::string_view, uint64_t>> uniq(counts.begin(), counts.end());
  std::sort(uniq.begin(), uniq.end());
  std::vector<std::vector<int32_t>> words;
  std::vector<uint64_t> weight;
  for (const auto& [w, c] : uniq) {
    std::vector<int32_t> s;
    for (char ch : w) s.push_back(static_cast<uint8_t>(ch));
    words.push_back(std::move(s));
    weight.push_back(c);
  }
  std::unordered_map<std::string, int32_t> id_of;
  for (int32_t i = 0; i < 256; ++i) id_of[l.pieces[static_cast<size_t>(i)]] = i;
  auto key = [](int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  };
  std::unordered_map<uint64_t, uint64_t> pairs;
  while (l.pieces.size() < vocab_size) {
    pairs.clear();
    for (size_t w = 0; w < words.size(); ++w)
      for (size_t j = 0; j + 1 < words[w].size(); ++j) pairs[key(words[w][j], words[w][j + 1])] += weight[w];
    uint64_t best = 0, best_count = 0;
    for (const auto& [k, c] : pairs)
      if (c > best_count || (c == best_count && k < best)) {
        best = k;
        best_count = c;
      }
    if (best_count < 2) break;
    const auto a = static_cast<int32_t>(best >> 32), b = static_cast<int32_t>(best & 0xffffffffu);
    const std::string s = l.pieces[static_cast<size_t>(a)] + l.pieces[static_cast<size_t>(b)];
    int32_t id;
    if (const auto it = id_of.find(s); it != id_of.end()) {
      id = it->second;
    } else {
      id = static_cast<int32_t>(l.pieces.size());
      l.pieces.push_back(s);
      id_of.emplace(s, id);
    }
    l.merges.emplace_back(a, b);
    l.merged.push_back(id);
    for (auto& w : words) {  // leftmost first, as the encoder does
      size_t out = 0;
      for (size_t j = 0; j < w.size(); ++j) {
        if (j + 1 < w.size() && w[j] == a && w[j + 1] == b) {
          w[out++] = id;
          ++j;
        } else {
          w[out++] = w[j];
        }
      }
      w.resize(out);
    }
  }
  return l;
}

}  // namespace qisa::bpe
