#include "text_data.h"

#include "utf8.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace qisa::train {

std::vector<uint32_t> utf8_code_points(const std::string& s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    if (!qisa::utf8_next(s, i, &cp)) throw std::runtime_error("invalid UTF-8 at byte " + std::to_string(i));
    out.push_back(cp);
  }
  return out;
}

CharVocab CharVocab::from_text(const std::string& text) {
  std::vector<uint32_t> cps = utf8_code_points(text);
  std::sort(cps.begin(), cps.end());
  cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
  std::vector<std::string> pieces;
  for (uint32_t cp : cps) pieces.push_back(utf8_encode(cp));
  return CharVocab(std::move(pieces));
}

CharVocab::CharVocab(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {
  for (const auto& p : pieces_) {
    const auto cps = utf8_code_points(p);
    if (cps.size() != 1) throw std::runtime_error("char vocabulary piece '" + p + "' is not one character");
    code_points_.push_back(cps[0]);
  }
  if (!std::is_sorted(code_points_.begin(), code_points_.end())) {
    throw std::runtime_error("char vocabulary is not sorted by code point");
  }
}

std::vector<int64_t> CharVocab::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  size_t offset = 0;
  for (uint32_t cp : utf8_code_points(text)) {
    auto it = std::lower_bound(code_points_.begin(), code_points_.end(), cp);
    if (it == code_points_.end() || *it != cp) {
      throw std::runtime_error("character '" + utf8_encode(cp) + "' at byte " + std::to_string(offset) +
                               " is not in the vocabulary");
    }
    ids.push_back(it - code_points_.begin());
    offset += utf8_encode(cp).size();
  }
  return ids;
}

std::string CharVocab::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (int64_t id : ids) s += pieces_.at(static_cast<size_t>(id));
  return s;
}

TextTokenizer TextTokenizer::chars(const std::string& text) {
  return chars(CharVocab::from_text(text).pieces());
}

TextTokenizer TextTokenizer::chars(std::vector<std::string> pieces) {
  const CharVocab v(pieces);  // checks one sorted character per piece
  TextTokenizer t;
  t.pieces_ = std::move(pieces);
  for (const auto& p : t.pieces_) t.code_points_.push_back(utf8_code_points(p)[0]);
  return t;
}

TextTokenizer TextTokenizer::learn_bpe(const std::string& train_text, uint32_t vocab_size) {
  if (vocab_size < 256) throw std::runtime_error("a byte-level BPE vocabulary has at least 256 tokens");
  const bpe::Learned l = bpe::learn(train_text, vocab_size);
  std::vector<std::string> merges;
  for (const auto& [a, b] : l.merges)
    merges.push_back(bpe::to_stored(l.pieces[static_cast<size_t>(a)]) + " " +
                     bpe::to_stored(l.pieces[static_cast<size_t>(b)]));
  return bpe(l.pieces, std::move(merges));
}

TextTokenizer TextTokenizer::bpe(std::vector<std::string> raw_pieces, std::vector<std::string> stored_merges) {
  TextTokenizer t;
  t.bpe_ = true;
  t.pieces_ = std::move(raw_pieces);
  t.merges_ = std::move(stored_merges);
  std::unordered_map<std::string, int32_t> id_of;
  for (size_t i = 0; i < t.pieces_.size(); ++i) id_of[bpe::to_stored(t.pieces_[i])] = static_cast<int32_t>(i);
  std::vector<std::pair<int32_t, int32_t>> pairs;
  std::vector<int32_t> merged;
  for (const auto& m : t.merges_) {
    const auto sp = m.find(' ');
    const auto l = id_of.find(m.substr(0, sp)), r = id_of.find(m.substr(sp + 1)),
               j = id_of.find(m.substr(0, sp) + m.substr(sp + 1));
    if (sp == std::string::npos || l == id_of.end() || r == id_of.end() || j == id_of.end())
      throw std::runtime_error("BPE merge '" + m + "' names a piece the vocabulary lacks");
    pairs.emplace_back(l->second, r->second);
    merged.push_back(j->second);
  }
  t.encoder_ = bpe::Encoder(t.pieces_, pairs, merged);
  return t;
}

std::vector<int64_t> TextTokenizer::encode(const std::string& text) const {
  if (!bpe_) {
    std::vector<int64_t> ids;
    size_t offset = 0;
    for (uint32_t cp : utf8_code_points(text)) {
      auto it = std::lower_bound(code_points_.begin(), code_points_.end(), cp);
      if (it == code_points_.end() || *it != cp)
        throw std::runtime_error("character '" + utf8_encode(cp) + "' at byte " + std::to_string(offset) +
                                 " is not in the vocabulary");
      ids.push_back(it - code_points_.begin());
      offset += utf8_encode(cp).size();
    }
    return ids;
  }
  std::vector<int32_t> ids;
  encoder_.encode(text, ids);
  return {ids.begin(), ids.end()};
}

std::string TextTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (int64_t id : ids) s += pieces_.at(static_cast<size_t>(id));
  return s;
}

writer::TokenizerDesc TextTokenizer::desc() const {
  writer::TokenizerDesc d;
  d.kind = bpe_ ? 1 : 0;
  for (const auto& p : pieces_) d.pieces.push_back(bpe_ ? bpe::to_stored(p) : p);
  d.merges = merges_;
  return d;
}

size_t count_chars(const std::string& text) {
  size_t n = 0;  // bytes that do not continue a character (qisa-eval counts the same way)
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

Split make_split(const std::vector<int64_t>& tokens, const std::string& spec) {
  const dataset::Bounds b = dataset::split(tokens.size(), spec);  // the rule qisa-eval uses too
  Split s;
  s.train.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(b.train_end));
  s.test.assign(tokens.begin() + static_cast<std::ptrdiff_t>(b.test_begin), tokens.end());
  s.description = b.description;
  return s;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace qisa::train
