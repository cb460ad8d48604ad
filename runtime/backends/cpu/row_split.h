// Work split over the context's threads where it pays. split_rows: f(r0, n)
// handles rows [r0, r0 + n). One call (no OpenMP region) below
// kRowSplitMinValues values in all or with one thread; the rows' results do
// not depend on the split.
#pragma once

#include <omp.h>

#include <cstdint>

#include "omp_threads.h"

namespace qisa {

// Measured: a LayerNorm over 16 rows of 128 (2K values) is faster alone
// than a parallel region costs; over 1024 rows of 128 the split pays.
inline constexpr int64_t kRowSplitMinValues = int64_t{1} << 15;

template <class F>
void split_rows(int64_t rows, int64_t values_per_row, ThreadPolicy policy, F&& f) {
  const int threads = policy.count;
  if (rows < 2 * threads || !policy.split(rows * values_per_row, kRowSplitMinValues)) {
    f(int64_t{0}, rows);
    return;
  }
  const int64_t chunk = (rows + threads - 1) / threads;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const int64_t r0 = t * chunk, n = rows - r0 < chunk ? rows - r0 : chunk;
    if (n > 0) f(r0, n);
  }
}

// f(i, thread) for i < n: spread over min(threads, n) threads when `work`
// reaches the site's threshold (ThreadPolicy::split), else in order on the
// calling thread (thread 0). `thread` indexes per-thread scratch.
template <class F>
void split_items(int64_t n, int64_t work, int64_t threshold, ThreadPolicy policy, F&& f) {
  const int threads = static_cast<int>(n < policy.count ? n : policy.count);
  if (threads > 1 && policy.split(work, threshold)) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) f(i, omp_get_thread_num());
  } else {
    for (int64_t i = 0; i < n; ++i) f(i, 0);
  }
}

}  // namespace qisa
