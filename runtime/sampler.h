// Turning logits into a token: repetition penalty, temperature, top-k,
// top-p, min-p, then a draw from a seeded generator (or argmax).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "qisa.h"

namespace qisa {

// Throws QISA_ERR_INVALID_ARGUMENT naming the first bad field: the one
// check behind qisa_sampler_create and qisa_generate.
void check_sampler_params(const qisa_sampler_params& p);

// Index of the largest logit; ties go to the lowest index (greedy choice).
int32_t argmax(const float* logits, int32_t n_vocab);

class Sampler {
 public:
  // Checks p (check_sampler_params) before it allocates anything.
  explicit Sampler(const qisa_sampler_params& p);
  int32_t sample(const float* logits, int32_t n_vocab);
  // True when sample() is just argmax() of the logits given (greedy, no
  // repetition penalty): a caller may then ask a backend for the argmax only.
  bool is_argmax() const;
  void accept(int32_t token);
  void reset(uint64_t seed);

 private:
  double uniform();  // [0, 1) from the generator's bits: the same on every platform

  qisa_sampler_params p_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;  // ring of the last repeat_last_n tokens
  size_t history_next_ = 0;
  std::vector<std::pair<float, int32_t>> cand_;
  std::vector<uint8_t> penalized_;
  std::vector<float> adjusted_;  // logits after the repetition penalty
  std::vector<float> kth_;       // top-k selection scratch
};

}  // namespace qisa
