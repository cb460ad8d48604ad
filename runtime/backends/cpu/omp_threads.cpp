#include "omp_threads.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>

namespace qisa {

ThreadPolicy measure_thread_policy(int count) {
  if (count <= 1) return ThreadPolicy(1);
  constexpr int kWarmup = 5, kTimed = 15;
  constexpr int64_t kMaxScale = 64;
  std::array<double, kTimed> ns{};
  int sink = 0;
  for (int i = 0; i < kWarmup + kTimed; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(count) reduction(+ : sink)
    sink += omp_get_thread_num();
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= kWarmup) ns[static_cast<size_t>(i - kWarmup)] = std::chrono::duration<double, std::nano>(t1 - t0).count();
  }
  std::nth_element(ns.begin(), ns.begin() + kTimed / 2, ns.end());
  const double median = ns[kTimed / 2] + (sink < 0 ? 1.0 : 0.0);  // sink keeps the regions
  const auto scale = static_cast<int64_t>(std::lround(median / ThreadPolicy::kReferenceForkJoinNs));
  return ThreadPolicy(count, std::min(kMaxScale, scale));
}

}  // namespace qisa
