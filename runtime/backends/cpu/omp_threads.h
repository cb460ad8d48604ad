// OpenMP thread counts: the scope that sets the calling thread's count,
// and a context's policy for when work is split over its threads.
//   oneDNN's OpenMP runtime reads the calling thread's count when it creates
// a primitive and again when it runs one: a context of one thread whose
// primitives were made under the default (every core) ran each product on
// every core, the idle workers spinning between products (a second core
// busy 43% of a 1-thread n_embd-128 batch decode), and a one-thread twin
// run from a 2-thread context started a team of 2. So primitives are made
// and run under the count they are meant to use (matmul_dnnl.cpp).
#pragma once

#include <omp.h>

#include <cstdint>

namespace qisa {

class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreadsScope() { omp_set_num_threads(saved_); }
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
};

// A context's threads and how much work a split needs on this machine. The
// thresholds at the split sites (linear_op.cpp, quantum_layer.cpp,
// row_split.h, cpu_backend.cpp) were measured where starting and joining a
// parallel region cost about kReferenceForkJoinNs; `scale` multiplies them
// by this machine's cost over that (measured: 3.4 us on a 2-vCPU AMD EPYC
// VM, where the unscaled thresholds made 2 threads 0.6x one on an n_embd-128
// decode step).
struct ThreadPolicy {
  static constexpr double kReferenceForkJoinNs = 1000.0;
  int count = 1;
  int64_t scale = 1;
  ThreadPolicy(int n = 1, int64_t s = 1) : count(n > 1 ? n : 1), scale(s > 1 ? s : 1) {}  // NOLINT: from a count
  // Whether `work` (in the site's unit) reaches the site's threshold.
  bool split(int64_t work, int64_t threshold) const { return count > 1 && work >= threshold * scale; }
};

// The policy for `count` threads, timing empty parallel regions of that
// many threads (the median of 15, after warm-up; at most 64x the reference).
ThreadPolicy measure_thread_policy(int count);

}  // namespace qisa
