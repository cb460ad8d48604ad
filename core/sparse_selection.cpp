#include "sparse_selection.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace qisa {

void select_positions_reference(const float* pre, int64_t n, Sparsity s, uint8_t* keep) {
  if (!s.sparse() || n <= static_cast<int64_t>(s.top_k)) {
    std::fill(keep, keep + n, uint8_t{1});
    return;
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  // Highest score first; among equal scores the later position first.
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const uint32_t ka = selection_key(pre[a]), kb = selection_key(pre[b]);
    return ka != kb ? ka > kb : a > b;
  });
  std::fill(keep, keep + n, uint8_t{0});
  for (uint32_t i = 0; i < s.top_k; ++i) keep[order[i]] = 1;
  for (int64_t j = std::max<int64_t>(0, n - static_cast<int64_t>(s.window)); j < n; ++j) keep[j] = 1;
}

}  // namespace qisa
