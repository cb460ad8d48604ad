#include "text_data.h"

#include "utf8.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

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
