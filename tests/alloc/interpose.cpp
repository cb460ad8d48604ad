#include "interpose.h"

#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstring>

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace qisa::alloc {
namespace {

std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
std::atomic<long long> g_live{0}, g_peak{0};
std::atomic<long> g_fail_countdown{0};
std::atomic<bool> g_failed{false};

bool from_libgomp(void* caller) {
  Dl_info info;
  return dladdr(caller, &info) != 0 && info.dli_fname != nullptr && std::strstr(info.dli_fname, "libgomp") != nullptr;
}

// True when this allocation is to fail.
bool before_allocation(void* caller) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  const long left = g_fail_countdown.load(std::memory_order_relaxed);
  if (left <= 0) return false;
  // The allocation due to fail is passed over when libgomp makes it (the
  // next one fails instead); dladdr is slow, so only then is it asked.
  if (left == 1 && from_libgomp(caller)) return false;
  if (g_fail_countdown.fetch_sub(1) == 1) {
    g_failed = true;
    return true;
  }
  return false;
}

void* after_allocation(void* p) {
  if (p != nullptr) {
    const long long now =
        g_live.fetch_add(static_cast<long long>(malloc_usable_size(p))) + static_cast<long long>(malloc_usable_size(p));
    long long peak = g_peak.load(std::memory_order_relaxed);
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
  }
  return p;
}

void before_free(void* p) {
  if (p != nullptr) g_live.fetch_sub(static_cast<long long>(malloc_usable_size(p)));
}

}  // namespace

void set_counting(bool on) {
  g_counting = on;
}
long allocations() {
  return g_allocations.load();
}
void reset_allocations() {
  g_allocations = 0;
}
void reset_bytes() {
  g_live = 0;
  g_peak = 0;
}
long long live_bytes() {
  return g_live.load();
}
long long peak_bytes() {
  return g_peak.load();
}
void fail_nth(long n) {
  g_failed = false;
  g_fail_countdown = n;
}
bool failure_happened() {
  return g_failed.load();
}

}  // namespace qisa::alloc

using namespace qisa::alloc;

extern "C" {
void* malloc(size_t n) {
  if (before_allocation(__builtin_return_address(0))) return nullptr;
  return after_allocation(__libc_malloc(n));
}
void* calloc(size_t a, size_t b) {
  if (before_allocation(__builtin_return_address(0))) return nullptr;
  return after_allocation(__libc_calloc(a, b));
}
void* realloc(void* p, size_t n) {
  if (before_allocation(__builtin_return_address(0))) return nullptr;
  before_free(p);
  void* q = __libc_realloc(p, n);
  if (q == nullptr && p != nullptr && n != 0) after_allocation(p);  // p is still live
  return after_allocation(q);
}
void free(void* p) {
  before_free(p);
  __libc_free(p);
}
int posix_memalign(void** out, size_t align, size_t n) {
  if (before_allocation(__builtin_return_address(0))) return ENOMEM;
  *out = after_allocation(__libc_memalign(align, n));
  return *out ? 0 : ENOMEM;
}
void* aligned_alloc(size_t align, size_t n) {
  if (before_allocation(__builtin_return_address(0))) return nullptr;
  return after_allocation(__libc_memalign(align, n));
}
void* memalign(size_t align, size_t n) {
  if (before_allocation(__builtin_return_address(0))) return nullptr;
  return after_allocation(__libc_memalign(align, n));
}
}
