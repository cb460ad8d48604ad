// What the AVX-512 kernel files (cpu_kernels_vnni.cpp, cpu_kernels_amx.cpp)
// share: the check that the CPU has AVX-512 F/DQ/BW/VL (and the caller's
// extras) and that the OS saves the 512-bit state, and a GCC 12 warning
// that their intrinsics trip. Internal linkage: each file gets its own copy.
#pragma once

#include <cpuid.h>

// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*(),
// which -W(maybe-)uninitialized reports inside the compiler's own header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace qisa {
namespace {

struct Cpuid7 {
  unsigned ebx = 0, ecx = 0, edx = 0;
};

// CPUID leaf 7 when the CPU has AVX-512 F/DQ/BW/VL and the OS saves the
// SSE, AVX, opmask and ZMM state (XCR0); false otherwise.
inline bool avx512_usable(Cpuid7* leaf7) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  *leaf7 = {b, c, d};
  const bool isa = (b >> 16 & 1) && (b >> 17 & 1) && (b >> 30 & 1) && (b >> 31 & 1);
  if (!isa || !__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xe6) == 0xe6;
}

}  // namespace
}  // namespace qisa
