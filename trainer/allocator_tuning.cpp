#include "allocator_tuning.h"

#include <cstddef>  // defines __GLIBC__ where the C library is glibc
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qisa::train {

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  // 32 MiB is glibc's largest mmap threshold on 64-bit; larger blocks
  // (attention scores of very long windows) are still mapped per use.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace qisa::train
