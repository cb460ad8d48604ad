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
  for (int i = 0; i < kWarmup + kTimed; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    // An empty body that touches no memory: nothing for ThreadSanitizer to
    // read as a race (it cannot see libgomp's barriers), and GOMP_parallel
    // is an opaque call that the compiler keeps.
#pragma omp parallel num_threads(count)
    __asm__ volatile("");
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= kWarmup) ns[static_cast<size_t>(i - kWarmup)] = std::chrono::duration<double, std::nano>(t1 - t0).count();
  }
  std::nth_element(ns.begin(), ns.begin() + kTimed / 2, ns.end());
  const double median = ns[kTimed / 2];
  const auto scale = static_cast<int64_t>(std::lround(median / ThreadPolicy::kReferenceForkJoinNs));
  return ThreadPolicy(count, std::min(kMaxScale, scale));
}

}  // namespace qisa
