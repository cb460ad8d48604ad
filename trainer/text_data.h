// Text data: tokenizers (characters or byte-level BPE), train/test split.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bpe.h"
#include "dataset.h"
#include "model_writer.h"
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

// How text becomes token ids: one token per character (CharVocab), or
// byte-level BPE whose merges are learned on the training text (core/bpe.h;
// any bytes encode).
class TextTokenizer {
 public:
  static TextTokenizer chars(const std::string& text);
  static TextTokenizer chars(std::vector<std::string> pieces);
  // Learns on `train_text` (the training part only: the test part must not
  // shape the vocabulary). vocab_size >= 256.
  static TextTokenizer learn_bpe(const std::string& train_text, uint32_t vocab_size);
  // From stored form: raw pieces and "left right" merges as the file keeps them.
  static TextTokenizer bpe(std::vector<std::string> raw_pieces, std::vector<std::string> stored_merges);

  bool is_bpe() const { return bpe_; }
  const char* kind_name() const { return bpe_ ? "bpe" : "char"; }
  size_t size() const { return pieces_.size(); }
  const std::vector<std::string>& pieces() const { return pieces_; }  // raw bytes
  const std::vector<std::string>& merges() const { return merges_; }  // stored, by rank
  // Char: throws naming an unknown character. BPE: never throws.
  std::vector<int64_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  // The .qisa tokenizer table.
  writer::TokenizerDesc desc() const;

 private:
  bool bpe_ = false;
  std::vector<std::string> pieces_, merges_;
  std::vector<uint32_t> code_points_;  // char: sorted, parallel to pieces_
  bpe::Encoder encoder_;
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

// Characters of UTF-8 text: the bytes that do not continue a character.
size_t count_chars(const std::string& text);

std::string read_text_file(const std::string& path);
using dataset::sha256_hex;

}  // namespace qisa::train
