// Which text a model was trained on and which part of it is held out: one
// rule for the trainer (qisa-train) and the evaluation tools (qisa-train
// eval, qisa-eval), and the metadata keys a model file records it under.
// Standard library only, so every tool can link it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qisa::dataset {

// Metadata keys written by qisa-train (docs/format.md).
inline constexpr const char* kName = "dataset";           // file name
inline constexpr const char* kPath = "dataset_path";      // absolute path at training time
inline constexpr const char* kSha256 = "dataset_sha256";  // of the whole file
inline constexpr const char* kSplit = "split_spec";       // "research" or a fraction

// Token index ranges of a split of n tokens: train [0, train_end), test
// [test_begin, n). "research": train the first 64%, test the last 4% (the
// research loader's 80% split applied twice); a fraction f in (0, 1): train
// the first f, test the rest. Throws std::runtime_error on another spec.
struct Bounds {
  size_t train_end = 0, test_begin = 0;
  std::string description;
};
Bounds split(size_t n_tokens, const std::string& spec);

// SHA-256 (FIPS 180-4) as 64 hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace qisa::dataset
