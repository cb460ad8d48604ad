// Char-level text data: vocabulary, encoding, train/test split, batches.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dataset.h"
#include "utf8.h"

namespace qisa::train {

// Sorted unique code points of a UTF-8 text; one token per code point.
class CharVocab {
 public:
  static CharVocab from_text(const std::string& text);
  explicit CharVocab(std::vector<std::string> pieces);

  size_t size() const { return pieces_.size(); }
  const std::vector<std::string>& pieces() const { return pieces_; }
  // Throws std::runtime_error naming an unknown character and its offset.
  std::vector<int64_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& ids) const;

 private:
  std::vector<std::string> pieces_;
  std::vector<uint32_t> code_points_;  // sorted, parallel to pieces_
};

// Decodes UTF-8 into code points; throws on invalid input.
std::vector<uint32_t> utf8_code_points(const std::string& text);
using qisa::utf8_encode;

// The part of the tokens used for training and for testing, and its name.
struct Split {
  std::vector<int64_t> train, test;
  std::string description;  // e.g. "research 64%/4%" or "train 90% / test 10%"
};

// "research": train on the first 64%, test on the last 4% (the research
// loader's 80% split applied twice). A number f in (0,1): first f / rest.
Split make_split(const std::vector<int64_t>& tokens, const std::string& spec);

std::string read_text_file(const std::string& path);
using dataset::sha256_hex;

}  // namespace qisa::train
