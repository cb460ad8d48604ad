// Just enough of CUDA to run runtime/cuda/cuda_kernels.cuh on the CPU, for
// tests on machines without a GPU: a launch runs the grid one block at a
// time, each block as blockDim.x std::threads, with std::barrier for
// __syncthreads() and per-warp barriers for the shuffles. Semantics kept:
// block-shared memory, warp shuffles with out-of-range lanes keeping their
// own value, threads that exit early no longer counted by barriers. Not
// modelled: memory spaces, timing, occupancy, launch limits — those need a
// real device (tests/gpu).
#pragma once

#include <algorithm>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "dtype.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// One block runs at a time, so a function-local static is that block's shared memory.
#define __shared__ static

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;  // of the running launch

struct __half {
  uint16_t bits;
};
inline float __half2float(__half h) {
  return qisa::f16_to_f32(h.bits);
}
inline float __uint_as_float(unsigned u) {
  return std::bit_cast<float>(u);
}
inline int __popcll(unsigned long long x) {
  return std::popcount(x);
}
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}

namespace qisa::emu {

struct Block {
  explicit Block(unsigned threads, size_t shared_bytes)
      : sync(threads), exchange((threads + 31) / 32 * 32), shared(shared_bytes) {
    for (unsigned w = 0; w < (threads + 31) / 32; ++w)
      warp_sync.push_back(std::make_unique<std::barrier<>>(std::min(32u, threads - 32 * w)));
  }
  std::barrier<> sync;
  std::vector<std::unique_ptr<std::barrier<>>> warp_sync;
  std::vector<float> exchange;  // one slot per lane, for shuffles
  std::vector<unsigned char> shared;
};

inline Block* running_block = nullptr;

template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(running_block->shared.data());
}

// kernel<<<grid, block, shared>>>(args...)
template <class... P, class... A>
void launch(dim3 grid, dim3 block, size_t shared, void (*kernel)(P...), A... args) {
  gridDim = grid;
  blockDim = block;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        Block b(block.x, shared);
        running_block = &b;
        std::vector<std::thread> threads;
        threads.reserve(block.x);
        for (unsigned t = 0; t < block.x; ++t) {
          threads.emplace_back([&b, t, x, y, z, kernel, args...] {
            threadIdx = dim3(t);
            blockIdx = dim3(x, y, z);
            kernel(args...);
            b.sync.arrive_and_drop();  // an exited thread no longer holds others at a barrier
            b.warp_sync[t / 32]->arrive_and_drop();
          });
        }
        for (auto& th : threads) th.join();
        running_block = nullptr;
      }
    }
  }
}

}  // namespace qisa::emu

inline void __syncthreads() {
  qisa::emu::running_block->sync.arrive_and_wait();
}

inline float __shfl_down_sync(unsigned /*mask*/, float v, int offset) {
  qisa::emu::Block& b = *qisa::emu::running_block;
  const unsigned t = threadIdx.x, lane = t % 32, warp = t / 32;
  b.exchange[t] = v;
  b.warp_sync[warp]->arrive_and_wait();
  const float r = lane + static_cast<unsigned>(offset) < 32 ? b.exchange[t + static_cast<unsigned>(offset)] : v;
  b.warp_sync[warp]->arrive_and_wait();  // every lane has read before the next shuffle writes
  return r;
}
