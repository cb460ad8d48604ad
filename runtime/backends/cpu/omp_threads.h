// Sets the calling thread's OpenMP thread count for a scope; the caller's
// count is restored. oneDNN fixes a primitive's thread count when it
// creates it, from this setting: a context of one thread whose primitives
// were made under the default (every core) runs each product on every core,
// and the idle OpenMP workers spin between products (measured: a second
// core busy 43% of a 1-thread n_embd-128 batch decode). So primitives are
// made under the count they are meant to use.
#pragma once

#include <omp.h>

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

}  // namespace qisa
