// Text metrics of the research protocol, computed from argmax predictions:
// CER and WER (edit distance / reference length) and smoothed sentence BLEU.
#pragma once

#include <string>
#include <vector>

namespace qisa::text_metrics {

size_t edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b);
std::vector<std::string> split_chars(const std::string& s);  // one entry per UTF-8 code point (or invalid byte)
std::vector<std::string> split_words(const std::string& s);  // on whitespace

// Character error rate of one window; 0 for identical strings.
double cer(const std::string& hypothesis, const std::string& reference);
// Word error rate; returns -1 when the reference has no words.
double wer(const std::string& hypothesis, const std::string& reference);
// Sentence BLEU-4 on whitespace tokens, uniform weights, with zero n-gram
// matches smoothed to epsilon 0.1 / count (NLTK's "method1"), brevity
// penalty; 0 when either side has no words.
double sentence_bleu(const std::string& hypothesis, const std::string& reference);

}  // namespace qisa::text_metrics
