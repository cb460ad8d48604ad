// The research protocol's evaluation on non-overlapping test windows.
#pragma once

#include <string>

#include "gpt_model.h"
#include "text_data.h"

namespace qisa::train {

struct EvalResult {
  double cross_entropy = 0, perplexity = 0, accuracy = 0;                 // all positions
  double cross_entropy_last = 0, perplexity_last = 0, accuracy_last = 0;  // last position only
  double cer = 0, wer = 0, bleu = 0;                                      // argmax text vs target, per window
  double cross_entropy_per_char = 0;  // total CE over the characters the targets spell
  int64_t chars = 0;
  double ms_per_batch = 0;
  int64_t windows = 0, batch = 0;
};

// Evaluates on every non-overlapping n_ctx window of `tokens` (at most
// max_windows of them when > 0). Text metrics need the vocabulary.
EvalResult evaluate(Gpt& model, const std::vector<int64_t>& tokens, const TextTokenizer& vocab, int64_t batch,
                    int64_t max_windows = 0, bool text_metrics = true);

// Both columns of the table (all positions, last position) as aligned text.
std::string format_eval_table(const EvalResult& r);
std::string eval_json(const EvalResult& r);

}  // namespace qisa::train
