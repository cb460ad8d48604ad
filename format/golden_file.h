// Golden logits: the trainer's eval-mode logits for a fixed prompt, stored
// next to a model so runtime tests compare against the trainer without
// LibTorch. Little-endian binary:
//   "QGLD" | u32 version (1) | u32 n_tokens | u32 vocab |
//   i32 tokens[n_tokens] | f32 logits[n_tokens * vocab]   (row = position)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qisa::writer {

struct Golden {
  std::vector<int32_t> tokens;
  uint32_t vocab = 0;
  std::vector<float> logits;  // [tokens.size() * vocab]
};

// Throw std::runtime_error on I/O or format errors.
void write_golden(const Golden& g, const std::string& path);
Golden read_golden(const std::string& path);

}  // namespace qisa::writer
