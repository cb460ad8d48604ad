#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "error.h"

namespace qisa {

int32_t argmax(const float* logits, int32_t n_vocab) {
  int32_t best = 0;
  for (int32_t i = 1; i < n_vocab; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

// The repetition history is a ring of this many tokens at most (4 MiB).
constexpr int32_t kMaxRepeatLastN = 1 << 20;

void check_sampler_params(const qisa_sampler_params& p) {
  if (p.struct_size != sizeof(qisa_sampler_params))
    fail(QISA_ERR_INVALID_ARGUMENT, "sampling.struct_size is %zu, expected %zu (call qisa_sampler_default_params)",
         p.struct_size, sizeof(qisa_sampler_params));
  if (!std::isfinite(p.temperature)) fail(QISA_ERR_INVALID_ARGUMENT, "temperature is %g", p.temperature);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    fail(QISA_ERR_INVALID_ARGUMENT, "top_p is %g, expected (0, 1] (1: off)", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    fail(QISA_ERR_INVALID_ARGUMENT, "min_p is %g, expected [0, 1] (0: off)", p.min_p);
  if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f))
    fail(QISA_ERR_INVALID_ARGUMENT, "repeat_penalty is %g, expected a finite value > 0 (1: off)", p.repeat_penalty);
  if (p.repeat_last_n < 0 || p.repeat_last_n > kMaxRepeatLastN)
    fail(QISA_ERR_INVALID_ARGUMENT, "repeat_last_n is %d, expected 0..%d", p.repeat_last_n, kMaxRepeatLastN);
}

Sampler::Sampler(const qisa_sampler_params& p) : p_(p), rng_(p.seed) {
  check_sampler_params(p);
  history_.reserve(static_cast<size_t>(std::max(p.repeat_last_n, 0)));
}

double Sampler::uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

void Sampler::accept(int32_t token) {
  const auto n = static_cast<size_t>(std::max(p_.repeat_last_n, 0));
  if (n == 0) return;
  if (history_.size() < n) {
    history_.push_back(token);
  } else {
    history_[history_next_] = token;
    history_next_ = (history_next_ + 1) % n;
  }
}

void Sampler::reset(uint64_t seed) {
  rng_.seed(seed);
  history_.clear();
  history_next_ = 0;
}

bool Sampler::is_argmax() const {
  return p_.temperature <= 0.0f && (p_.repeat_penalty == 1.0f || p_.repeat_last_n <= 0);
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab) {
  const auto V = static_cast<size_t>(n_vocab);
  const float* l = logits;
  if (p_.repeat_penalty != 1.0f && !history_.empty()) {  // on a copy; each recent token once
    adjusted_.assign(logits, logits + V);
    penalized_.assign(V, 0);
    for (int32_t t : history_) {
      if (t < 0 || static_cast<size_t>(t) >= V || penalized_[static_cast<size_t>(t)]) continue;
      penalized_[static_cast<size_t>(t)] = 1;
      float& a = adjusted_[static_cast<size_t>(t)];
      a = a > 0.0f ? a / p_.repeat_penalty : a * p_.repeat_penalty;
    }
    l = adjusted_.data();
  }
  if (p_.temperature <= 0.0f) return argmax(l, n_vocab);

  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t n = V;
  cand_.clear();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < V) {
    // The k-th largest logit by selection over plain floats (linear time,
    // instead of a heap over all V (logit, id) pairs: qisa-generate on the
    // bundled 1,024-token model went from about 20.7k to 21.0k tokens/s), then
    // the candidates above it, and of those equal to it the lowest ids.
    n = static_cast<size_t>(p_.top_k);
    kth_.resize(V);  // a NaN (from a caller's logits) would break the ordering: ranked lowest
    for (size_t i = 0; i < V; ++i) kth_[i] = std::isnan(l[i]) ? -INFINITY : l[i];
    std::nth_element(kth_.begin(), kth_.begin() + static_cast<std::ptrdiff_t>(n - 1), kth_.end(), std::greater<>());
    const float t = kth_[n - 1];
    for (size_t i = 0; i < V; ++i)
      if (l[i] > t) cand_.push_back({l[i], static_cast<int32_t>(i)});
    for (size_t i = 0; i < V && cand_.size() < n; ++i)
      if (l[i] == t) cand_.push_back({l[i], static_cast<int32_t>(i)});
    n = cand_.size();  // fewer than k only when NaNs were among the top k
  } else {
    for (size_t i = 0; i < V; ++i) cand_.push_back({l[i], static_cast<int32_t>(i)});
  }
  std::sort(cand_.begin(), cand_.end(), by_logit);
  if (n == 0) return argmax(l, n_vocab);
  // Softmax of logit / temperature over the kept candidates (sorted, largest first).
  const float mx = cand_[0].first;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cand_[i].first = std::exp((cand_[i].first - mx) / p_.temperature);
    sum += cand_[i].first;
  }
  for (size_t i = 0; i < n; ++i) cand_[i].first = static_cast<float>(cand_[i].first / sum);
  if (p_.top_p < 1.0f) {
    double cum = 0.0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += cand_[i].first;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
  }
  if (p_.min_p > 0.0f) {
    const float floor = p_.min_p * cand_[0].first;
    size_t keep = 1;
    while (keep < n && cand_[keep].first >= floor) ++keep;
    n = keep;
  }
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) total += cand_[i].first;
  double u = uniform() * total;
  for (size_t i = 0; i < n; ++i) {
    u -= cand_[i].first;
    if (u < 0.0) return cand_[i].second;
  }
  return cand_[n - 1].second;
}

}  // namespace qisa
