#include "text_metrics.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "utf8.h"

namespace qisa::text_metrics {

size_t edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> split_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    uint32_t cp = 0;
    if (!utf8_next(s, i, &cp)) i = start + 1;  // an invalid byte counts as one character
    out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

double cer(const std::string& hyp, const std::string& ref) {
  const auto r = split_chars(ref);
  if (r.empty()) return hyp.empty() ? 0.0 : 1.0;
  return static_cast<double>(edit_distance(split_chars(hyp), r)) / static_cast<double>(r.size());
}

double wer(const std::string& hyp, const std::string& ref) {
  const auto r = split_words(ref);
  if (r.empty()) return -1.0;
  return static_cast<double>(edit_distance(split_words(hyp), r)) / static_cast<double>(r.size());
}

double sentence_bleu(const std::string& hyp_text, const std::string& ref_text) {
  const auto hyp = split_words(hyp_text), ref = split_words(ref_text);
  if (hyp.empty() || ref.empty()) return 0.0;
  double log_sum = 0.0;
  for (size_t n = 1; n <= 4; ++n) {
    std::map<std::vector<std::string>, int> ref_counts;
    for (size_t i = 0; i + n <= ref.size(); ++i) ref_counts[{ref.begin() + i, ref.begin() + i + n}]++;
    int match = 0, total = 0;
    std::map<std::vector<std::string>, int> used;
    for (size_t i = 0; i + n <= hyp.size(); ++i) {
      std::vector<std::string> g(hyp.begin() + i, hyp.begin() + i + n);
      ++total;
      auto it = ref_counts.find(g);
      if (it != ref_counts.end() && used[g] < it->second) {
        ++used[g];
        ++match;
      }
    }
    if (total == 0) return 0.0;  // hypothesis shorter than n words
    const double p = match > 0 ? static_cast<double>(match) / total : 0.1 / total;
    log_sum += std::log(p) / 4.0;
  }
  const double c = static_cast<double>(hyp.size()), r = static_cast<double>(ref.size());
  const double bp = c > r ? 1.0 : std::exp(1.0 - r / c);
  return bp * std::exp(log_sum);
}

}  // namespace qisa::text_metrics
