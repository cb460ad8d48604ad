// Just enough of CUDA and cuBLAS to run the CUDA engine's sources on the
// CPU, for tests on machines without a GPU (see docs/cuda.md).
//
// Kernels (runtime/backends/cuda/cuda_kernels.cuh): a launch runs the grid one block
// at a time. By default each block runs as blockDim.x std::threads with
// std::barrier for __syncthreads() and per-warp barriers for the shuffles,
// so ThreadSanitizer sees a missing barrier as a data race. With
// QISA_CUDA_EMULATION_FIBERS the threads of a block are fibers on the
// calling thread (own stacks, switched at barriers; x86-64): fast enough to run the whole
// engine (cuda_backend.cu) through the GPU test suite. Kept in both:
// block-shared memory, warp shuffles where an out-of-range lane keeps its own
// value, exited threads no longer counted by barriers.
//
// Runtime and cuBLAS: memory is host memory, streams run work at once unless
// they capture a graph (then the work is recorded, by value, and replayed by
// cudaGraphLaunch), SGEMM is a plain column-major loop. Not modelled:
// separate memory spaces, asynchrony, launch limits, timing — those need a
// real device.
#pragma once

#include <algorithm>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#if defined(QISA_CUDA_EMULATION_FIBERS) && !defined(__x86_64__)
#error "the fiber emulation switches stacks with x86-64 code"
#endif

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
inline unsigned __float_as_uint(float f) {
  return std::bit_cast<unsigned>(f);
}
inline int __popcll(unsigned long long x) {
  return std::popcount(x);
}
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}

namespace qisa::emu {

#ifdef QISA_CUDA_EMULATION_FIBERS

// Saves the callee-saved registers on the current stack, stores the stack
// pointer in *from and resumes the stack `to` (x86-64 System V). ucontext's
// swapcontext does the same plus a signal-mask system call per switch, which
// made the emulated GPU suite take 643 s instead of 39 s.
extern "C" void qisa_emu_switch(void** from, void* to);
asm(R"(
  .text
  .globl qisa_emu_switch
  .type qisa_emu_switch, @function
qisa_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size qisa_emu_switch, .-qisa_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

// The fibers of the running block and the scheduler that switches them.
struct Fibers {
  void* scheduler = nullptr;  // saved stack pointers
  std::vector<void*> sp;
  std::vector<char> done;
  unsigned current = 0;
  const std::function<void()>* body = nullptr;

  void yield() { qisa_emu_switch(&sp[current], scheduler); }
};
inline thread_local Fibers* fibers = nullptr;

// A barrier for `expected` fibers: arrivals yield until the last one comes.
class Barrier {
 public:
  explicit Barrier(unsigned expected) : expected_(expected) {}
  void arrive_and_wait() {
    const unsigned gen = gen_;
    if (++arrived_ == expected_) {
      arrived_ = 0;
      ++gen_;
      return;
    }
    while (gen_ == gen) fibers->yield();
  }
  void arrive_and_drop() {
    --expected_;
    if (arrived_ > 0 && arrived_ == expected_) {
      arrived_ = 0;
      ++gen_;
    }
  }

 private:
  unsigned expected_, arrived_ = 0, gen_ = 0;
};

// Where a new fiber starts (entered by qisa_emu_switch's ret); never returns.
inline void fiber_main() {
  Fibers& f = *fibers;
  (*f.body)();
  f.body = nullptr;  // tells the scheduler this fiber finished
  void* unused = nullptr;
  qisa_emu_switch(&unused, f.scheduler);
  std::abort();  // not resumed
}

// A fresh stack that qisa_emu_switch "returns" into fiber_main from: six
// register slots, then the entry address; 16-byte alignment as at a call.
inline void* fiber_stack(char* base, size_t size) {
  auto top = reinterpret_cast<uintptr_t>(base + size) & ~uintptr_t{15};
  auto* slots = reinterpret_cast<void**>(top - 64);
  for (int i = 0; i < 6; ++i) slots[i] = nullptr;
  slots[6] = reinterpret_cast<void*>(&fiber_main);
  slots[7] = nullptr;
  return slots;
}

#else

using Barrier = std::barrier<>;

#endif

struct Block {
  Block(unsigned threads, size_t shared_bytes)
      : sync(threads), exchange((threads + 31) / 32 * 32), shared(shared_bytes) {
    for (unsigned w = 0; w < (threads + 31) / 32; ++w)
      warp_sync.push_back(std::make_unique<Barrier>(std::min(32u, threads - 32 * w)));
  }
  Barrier sync;
  std::vector<std::unique_ptr<Barrier>> warp_sync;
  std::vector<float> exchange;  // one slot per thread, for shuffles
  std::vector<unsigned char> shared;
};

inline Block* running_block = nullptr;

template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(running_block->shared.data());
}

// Runs body() as every thread of one block.
inline void run_block(unsigned threads, size_t shared, const std::function<void()>& body) {
  Block b(threads, shared);
  running_block = &b;
  auto thread_body = [&b, &body](unsigned t) {
    threadIdx = dim3(t);
    body();
    b.sync.arrive_and_drop();  // an exited thread no longer holds others at a barrier
    b.warp_sync[t / 32]->arrive_and_drop();
  };
#ifdef QISA_CUDA_EMULATION_FIBERS
  // Stacks are kept for the next block (allocating them per block dominated the run time).
  static thread_local std::vector<std::unique_ptr<char[]>> stacks;
  constexpr size_t kStack = 32 * 1024;
  while (stacks.size() < threads) stacks.push_back(std::make_unique_for_overwrite<char[]>(kStack));
  Fibers f;
  f.sp.resize(threads);
  f.done.assign(threads, 0);
  std::vector<std::function<void()>> bodies;
  bodies.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) bodies.emplace_back([&, t] { thread_body(t); });
  fibers = &f;
  for (unsigned t = 0; t < threads; ++t) f.sp[t] = fiber_stack(stacks[t].get(), kStack);
  for (unsigned left = threads; left > 0;) {
    for (unsigned t = 0; t < threads; ++t) {
      if (f.done[t]) continue;
      f.current = t;
      threadIdx = dim3(t);
      f.body = &bodies[t];
      qisa_emu_switch(&f.scheduler, f.sp[t]);
      // Back here when fiber t waits at a barrier or has finished.
      if (f.body == nullptr) {
        f.done[t] = 1;
        --left;
      }
    }
  }
  fibers = nullptr;
#else
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(thread_body, t);
  for (auto& th : pool) th.join();
#endif
  running_block = nullptr;
}

// kernel<<<grid, block, shared>>>(args...)
template <class... P, class... A>
void launch(dim3 grid, dim3 block, size_t shared, void (*kernel)(P...), A... args) {
  gridDim = grid;
  blockDim = block;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        const std::function<void()> body = [&] {
          blockIdx = dim3(x, y, z);
          kernel(args...);
        };
        run_block(block.x, shared, body);
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

// ---- the runtime API the engine calls -----------------------------------------

enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorInvalidValue = 1 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
enum cudaStreamCaptureMode { cudaStreamCaptureModeThreadLocal = 1 };
constexpr unsigned cudaStreamNonBlocking = 1;

struct CUstream_st {
  bool capturing = false;
  std::vector<std::function<void()>> recorded;
};
struct CUgraph_st {
  std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> ops;
};
using cudaStream_t = CUstream_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

struct cudaDeviceProp {
  char name[256];
  int major, minor;
};

namespace qisa::emu {
// Runs op now, or records it while the stream captures a graph.
inline void on_stream(cudaStream_t s, std::function<void()> op) {
  if (s && s->capturing) {
    s->recorded.push_back(std::move(op));
  } else {
    op();
  }
}

template <class... P, class... A>
void launch_on(cudaStream_t s, dim3 grid, dim3 block, size_t shared, void (*kernel)(P...), A... args) {
  on_stream(s, [=] { launch(grid, block, shared, kernel, args...); });
}
}  // namespace qisa::emu

inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "invalid value";
}
inline const char* cudaGetErrorName(cudaError_t e) {
  return e == cudaSuccess                 ? "cudaSuccess"
         : e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation"
                                          : "cudaErrorInvalidValue";
}
inline cudaError_t cudaGetLastError() {
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) {
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::snprintf(p->name, sizeof p->name, "%s", "emulated CUDA device (CPU)");
  p->major = 9;
  p->minor = 0;
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t n) {
  return cudaMalloc(p, n);
}
inline cudaError_t cudaFreeHost(void* p) {
  return cudaFree(p);
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  if (n) std::memcpy(dst, src, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind, cudaStream_t s) {
  qisa::emu::on_stream(s, [=] {
    if (n) std::memcpy(dst, src, n);
  });
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new CUstream_st;  // owned by the engine through cudaStreamDestroy, as with CUDA
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  return s && s->capturing ? cudaErrorInvalidValue : cudaSuccess;
}
inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (s->capturing) return cudaErrorInvalidValue;
  s->capturing = true;
  s->recorded.clear();
  return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  if (!s->capturing) return cudaErrorInvalidValue;
  s->capturing = false;
  *g = new CUgraph_st{std::move(s->recorded)};
  s->recorded.clear();
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) {
  *e = new CUgraphExec_st{g->ops};
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
  qisa::emu::on_stream(s, [e] {
    for (const auto& op : e->ops) op();
  });
  return cudaSuccess;
}

// ---- cuBLAS: the handle, its stream and SGEMM ---------------------------------

enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_ALLOC_FAILED = 3, CUBLAS_STATUS_INVALID_VALUE = 7 };
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
struct cublasContext {
  cudaStream_t stream = nullptr;
};
using cublasHandle_t = cublasContext*;

inline cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t, void* w, size_t n) {
  return w && n ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
// C = alpha op(A) op(B) + beta C, column-major, as cuBLAS defines it.
inline cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                     const float* alpha, const float* A, int lda, const float* B, int ldb,
                                     const float* beta, float* C, int ldc) {
  if (lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
    return CUBLAS_STATUS_INVALID_VALUE;
  const float a = *alpha, b = *beta;  // host pointer mode: read at the call, as cuBLAS does
  qisa::emu::on_stream(h->stream, [=] {
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) {
        double s = 0.0;
        for (int p = 0; p < k; ++p) {
          const float av =
              ta == CUBLAS_OP_N ? A[i + static_cast<size_t>(p) * lda] : A[p + static_cast<size_t>(i) * lda];
          const float bv =
              tb == CUBLAS_OP_N ? B[p + static_cast<size_t>(j) * ldb] : B[j + static_cast<size_t>(p) * ldb];
          s += static_cast<double>(av) * bv;
        }
        float& c = C[i + static_cast<size_t>(j) * ldc];
        c = static_cast<float>(a * s) + (b == 0.0f ? 0.0f : b * c);
      }
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}
