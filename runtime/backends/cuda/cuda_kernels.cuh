// The CUDA backend's kernels (included by cuda_backend.cu only). Each one
// implements an operation of the forward pass (runtime/forward.h) and is
// tested against the reference backend. With QISA_CUDA_EMULATION the same
// source compiles as host C++ on a shim that runs each block on CPU threads
// (tests/cuda_emulation): the kernels' arithmetic and indexing are then
// tested on machines without a GPU.
#pragma once

#ifdef QISA_CUDA_EMULATION
#include "cuda_emulation.h"
// Dynamic shared memory of the running block.
#define QISA_DYNAMIC_SHARED(T, name) T* name = ::qisa::emu::dynamic_shared<T>()
#define QISA_UNROLL
// kernel<<<grid, block, shared, stream>>>(...), recorded while the stream captures a graph
#define QISA_LAUNCH(kernel, grid, block, shared, stream, ...) \
  ::qisa::emu::launch_on(stream, grid, block, shared, kernel, __VA_ARGS__)
#else
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define QISA_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#define QISA_UNROLL _Pragma("unroll")
#define QISA_LAUNCH(kernel, grid, block, shared, stream, ...) kernel<<<grid, block, shared, stream>>>(__VA_ARGS__)
#endif

#include <cfloat>
#include <climits>
#include <cstdint>

#include "backend.h"
#include "dtype.h"
#include "qisa.h"

// Emulated kernels get names of their own, so a program may link them
// beside libqisa's real ones (the kernel tests do).
#ifdef QISA_CUDA_EMULATION
namespace qisa::cuda::inline emulated {
#else
namespace qisa::cuda {
#endif

#ifdef QISA_CUDA_EMULATION_FIBERS
// The whole engine on the emulator: small blocks and few of them for the
// grid-stride loops keep it fast (every emulated thread costs a fiber).
constexpr int kThreads = 32;
constexpr int kElementwiseThreads = 32;
constexpr size_t kMaxElementwiseBlocks = 4;
#else
constexpr int kThreads = 128;
constexpr int kElementwiseThreads = 256;
constexpr size_t kMaxElementwiseBlocks = 4096;
#endif
constexpr int kGemvRows = 8;  // products of up to this many rows read stored weights directly
static_assert(kQ8Block == 32 && kQ8BlockBytes == 34, "load_weight's Q8_0 indexing");
static_assert(kQ4Block == 32 && kQ4BlockBytes == 18, "load_weight's Q4_0 indexing");

// A matrix [rows, cols] as the model file stores it: f32, f16, bf16, Q8_0
// blocks (an f16 scale, then 32 int8) or Q4_0 blocks (an f16 scale, then 16
// bytes of nibbles), rows row_bytes apart.
struct StoredMatrix {
  const uint8_t* data = nullptr;
  qisa_dtype dtype = QISA_DTYPE_F32;
  size_t row_bytes = 0;
  int rows = 0, cols = 0;
};

// Element i of a stored row, widened to f32 (the same values as
// dequantize_row() on the host).
template <int DT>
__device__ __forceinline__ float load_weight(const uint8_t* row, int i) {
  if constexpr (DT == QISA_DTYPE_F16) {
    return __half2float(reinterpret_cast<const __half*>(row)[i]);
  } else if constexpr (DT == QISA_DTYPE_BF16) {
    return __uint_as_float(static_cast<unsigned>(reinterpret_cast<const unsigned short*>(row)[i]) << 16);
  } else if constexpr (DT == QISA_DTYPE_Q8_0) {
    const uint8_t* block = row + (i >> 5) * 34;  // 2-byte scale + 32 values
    return __half2float(*reinterpret_cast<const __half*>(block)) *
           static_cast<float>(reinterpret_cast<const int8_t*>(block + 2)[i & 31]);
  } else if constexpr (DT == QISA_DTYPE_Q4_0) {
    const uint8_t* block = row + (i >> 5) * 18;  // 2-byte scale + 16 bytes: values j and j + 16 in byte j
    const unsigned b = block[2 + (i & 15)];
    return __half2float(*reinterpret_cast<const __half*>(block)) *
           static_cast<float>(static_cast<int>((i & 16) ? (b >> 4) : (b & 15u)) - 8);
  } else {
    return reinterpret_cast<const float*>(row)[i];
  }
}

__device__ __forceinline__ float load_any(qisa_dtype t, const uint8_t* row, int i) {
  switch (t) {
    case QISA_DTYPE_F16: return load_weight<QISA_DTYPE_F16>(row, i);
    case QISA_DTYPE_BF16: return load_weight<QISA_DTYPE_BF16>(row, i);
    case QISA_DTYPE_Q8_0: return load_weight<QISA_DTYPE_Q8_0>(row, i);
    case QISA_DTYPE_Q4_0: return load_weight<QISA_DTYPE_Q4_0>(row, i);
    default: return load_weight<QISA_DTYPE_F32>(row, i);
  }
}

// y[r, o] = x[r, :] . W[o, :] for R <= kGemvRows rows, reading W as stored:
// one warp per output, lanes over the inputs (coalesced). Activations stay
// f32, as in the CPU engine's few-row products.
template <int DT>
__global__ void gemv_kernel(float* y, int ldy, StoredMatrix w, const float* x, int ldx, int R) {
  const int o = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (o >= w.rows) return;  // per warp: the whole warp leaves together
  const uint8_t* wr = w.data + static_cast<size_t>(o) * w.row_bytes;
  float acc[kGemvRows];
  QISA_UNROLL
  for (int r = 0; r < kGemvRows; ++r) acc[r] = 0.0f;
  for (int i = lane; i < w.cols; i += 32) {
    const float wi = load_weight<DT>(wr, i);
    QISA_UNROLL
    for (int r = 0; r < kGemvRows; ++r)
      if (r < R) acc[r] += wi * x[static_cast<size_t>(r) * ldx + i];
  }
  QISA_UNROLL
  for (int r = 0; r < kGemvRows; ++r) {
    if (r >= R) break;  // R is the same for every lane
    float s = acc[r];
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    if (lane == 0) y[static_cast<size_t>(r) * ldy + o] = s;
  }
}

// dst[rows, cols] (f32, dense) = W as stored, widened: for products of many
// rows, which then run as one SGEMM.
template <int DT>
__global__ void widen_kernel(float* dst, StoredMatrix w) {
  const size_t n = static_cast<size_t>(w.rows) * w.cols;
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = e / w.cols;
    dst[e] = load_weight<DT>(w.data + r * w.row_bytes, static_cast<int>(e - r * w.cols));
  }
}

// The instances of the two kernels above for a stored type: the one
// per-type switch of the CUDA backend (a new type is one case here and
// one in load_weight).
using GemvKernel = void (*)(float*, int, StoredMatrix, const float*, int, int);
using WidenKernel = void (*)(float*, StoredMatrix);
inline GemvKernel gemv_for(qisa_dtype t) {
  switch (t) {
    case QISA_DTYPE_F16: return gemv_kernel<QISA_DTYPE_F16>;
    case QISA_DTYPE_BF16: return gemv_kernel<QISA_DTYPE_BF16>;
    case QISA_DTYPE_Q8_0: return gemv_kernel<QISA_DTYPE_Q8_0>;
    case QISA_DTYPE_Q4_0: return gemv_kernel<QISA_DTYPE_Q4_0>;
    default: return gemv_kernel<QISA_DTYPE_F32>;
  }
}
// out[r, :cols] = x[r, :cols] as products with a Q4_0 weight use it (the
// host's round_activations(), core/dtype.h): per block of 32, dx =
// max|x| / 127, x -> dx * rint(x * (127 / max|x|)). One thread per block.
__global__ void round_activations_kernel(float* out, const float* x, int ldx, int R, int cols) {
  const int blocks = (cols + 31) / 32;
  for (int t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); t < R * blocks;
       t += static_cast<int>(gridDim.x * blockDim.x)) {
    const int r = t / blocks, b0 = (t % blocks) * 32, n = cols - b0 < 32 ? cols - b0 : 32;
    const float* xr = x + static_cast<size_t>(r) * ldx + b0;
    float* o = out + static_cast<size_t>(r) * cols + b0;
    float amax = 0.0f;
    for (int i = 0; i < n; ++i) amax = fmaxf(amax, fabsf(xr[i]));
    const float dx = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < n; ++i) o[i] = dx * rintf(xr[i] * inv);
  }
}

inline WidenKernel widen_for(qisa_dtype t) {
  switch (t) {
    case QISA_DTYPE_F16: return widen_kernel<QISA_DTYPE_F16>;
    case QISA_DTYPE_BF16: return widen_kernel<QISA_DTYPE_BF16>;
    case QISA_DTYPE_Q8_0: return widen_kernel<QISA_DTYPE_Q8_0>;
    case QISA_DTYPE_Q4_0: return widen_kernel<QISA_DTYPE_Q4_0>;
    default: return widen_kernel<QISA_DTYPE_F32>;
  }
}

// out[r] = index of the largest of logits[r, :V] (ties: the lowest index,
// as the host sampler's greedy choice), or -1 where a logit of the row is
// NaN or infinite (the host fails the decode, as it does on the logits
// themselves); one block of kThreads per row.
__global__ void argmax_kernel(int32_t* out, const float* logits, int V) {
  __shared__ float best_v[kThreads];
  __shared__ int best_i[kThreads];
  __shared__ int bad[kThreads];
  const float* l = logits + static_cast<size_t>(blockIdx.x) * V;
  float bv = -INFINITY;
  int bi = INT_MAX, b = 0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {  // increasing i: '>' keeps the lowest of equals
    b |= !(fabsf(l[i]) <= FLT_MAX);                    // NaN compares false
    if (l[i] > bv || bi == INT_MAX) {
      bv = l[i];
      bi = i;
    }
  }
  best_v[threadIdx.x] = bv;
  best_i[threadIdx.x] = bi;
  bad[threadIdx.x] = b;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) {
      const float v = best_v[threadIdx.x + half];
      const int i = best_i[threadIdx.x + half];
      if (v > best_v[threadIdx.x] || (v == best_v[threadIdx.x] && i < best_i[threadIdx.x])) {
        best_v[threadIdx.x] = v;
        best_i[threadIdx.x] = i;
      }
      bad[threadIdx.x] |= bad[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = bad[0] ? -1 : best_i[0];
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024).
__device__ float block_sum(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float s = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) s += shared[w];
  return s;
}

__device__ float block_max(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) m = fmaxf(m, shared[w]);
  return m;
}

// x[r] = tok[token] + pos[pos] from the tables as stored; one block per row.
__global__ void embed_kernel(float* x, const Row* rows, StoredMatrix tok, StoredMatrix pos, int d) {
  const Row row = rows[blockIdx.x];
  const uint8_t* t = tok.data + static_cast<size_t>(row.token) * tok.row_bytes;
  const uint8_t* p = pos.data + static_cast<size_t>(row.pos) * pos.row_bytes;
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    x[static_cast<size_t>(blockIdx.x) * d + i] = load_any(tok.dtype, t, i) + load_any(pos.dtype, p, i);
}

// out = (x - mean) / sqrt(var + eps) * w + b, one block per row.
__global__ void layernorm_kernel(float* out, const float* x, const float* w, const float* b, int d, float eps) {
  __shared__ float red[32];
  const float* xr = x + static_cast<size_t>(blockIdx.x) * d;
  float s = 0.0f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) s += xr[i];
  const float mean = block_sum(s, red) / d;
  float v = 0.0f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) v += (xr[i] - mean) * (xr[i] - mean);
  const float inv = rsqrtf(block_sum(v, red) / d + eps);
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    out[static_cast<size_t>(blockIdx.x) * d + i] = (xr[i] - mean) * inv * w[i] + b[i];
}

// y[r, :n] += bias, then the activation (0 none, 1 ReLU, 2 GELU); y has row stride ldy.
__global__ void bias_act_kernel(float* y, int ldy, const float* bias, int n, int act) {
  float* yr = y + static_cast<size_t>(blockIdx.x) * ldy;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float v = yr[i] + (bias ? bias[i] : 0.0f);
    if (act == 1) v = v > 0.0f ? v : 0.0f;
    if (act == 2) v = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    yr[i] = v;
  }
}

// out = a + b, elementwise over n values.
__global__ void add_kernel(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

// psi = pad(u) / |u| (normalized) or pad(u), one block per row.
__global__ void encode_kernel(float* psi, const float* u, int d, int D, int normalized) {
  __shared__ float red[32];
  const float* ur = u + static_cast<size_t>(blockIdx.x) * d;
  float s = 0.0f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) s += ur[i] * ur[i];
  const float norm = block_sum(s, red);
  const float inv = normalized ? 1.0f / fmaxf(sqrtf(norm), 1e-12f) : 1.0f;
  for (int i = threadIdx.x; i < D; i += blockDim.x)
    psi[static_cast<size_t>(blockIdx.x) * D + i] = i < d ? ur[i] * inv : 0.0f;
}

// One warp per Pauli string: value = Re(i^ny sum_j sign_z(j) conj(phi[j^x]) phi[j]),
// phi = out[r, 2pD .. 2pD+D) + i out[r, 2pD+D .. 2pD+2D). Grid (rows, projections).
__global__ void pauli_kernel(float* const* dest, int stride, const float* out, int width, int D, int h,
                             const unsigned long long* x_mask, const unsigned long long* z_mask) {
  const int r = blockIdx.x, p = blockIdx.y;
  const float* re = out + static_cast<size_t>(r) * width + 2 * p * D;
  const float* im = re + D;
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  for (int k = threadIdx.x >> 5; k < h; k += warps) {
    const unsigned long long x = x_mask[p * h + k], z = z_mask[p * h + k];
    float sr = 0.0f, si = 0.0f;
    for (int j = lane; j < D; j += 32) {
      const int g = static_cast<int>(static_cast<unsigned long long>(j) ^ x);
      const float sign = (__popcll(static_cast<unsigned long long>(j) & z) & 1) ? -1.0f : 1.0f;
      sr += sign * (re[g] * re[j] + im[g] * im[j]);
      si += sign * (re[g] * im[j] - im[g] * re[j]);
    }
    for (int o = 16; o > 0; o >>= 1) {
      sr += __shfl_down_sync(0xffffffffu, sr, o);
      si += __shfl_down_sync(0xffffffffu, si, o);
    }
    if (lane == 0) {
      const int ny = __popcll(x & z) & 3;
      dest[p][static_cast<size_t>(r) * stride + k] = ny == 0 ? sr : ny == 1 ? -si : ny == 2 ? -sr : si;
    }
  }
}

// Observables path: value_k = psi . (Re O'_{p,k} psi) with the products
// already in out[r, (p h + k) D + a]. One warp per value.
__global__ void observables_kernel(float* const* dest, int stride, const float* out, int width, const float* psi, int D,
                                   int h) {
  const int r = blockIdx.x, p = blockIdx.y;
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const float* pr = psi + static_cast<size_t>(r) * D;
  for (int k = threadIdx.x >> 5; k < h; k += warps) {
    const float* y = out + static_cast<size_t>(r) * width + static_cast<size_t>(p * h + k) * D;
    float s = 0.0f;
    for (int a = lane; a < D; a += 32) s += pr[a] * y[a];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (lane == 0) dest[p][static_cast<size_t>(r) * stride + k] = s;
  }
}

struct CacheLayout {
  int n_seq, n_ctx, d, H;
  __device__ size_t at(int l, int s, int p) const { return ((static_cast<size_t>(l) * n_seq + s) * n_ctx + p); }
};

// Keys, values and per-head |k|^2 of every row into the cache; one block per row.
__global__ void kv_write_kernel(float* K, float* V, float* KN, CacheLayout c, int layer, const Row* rows,
                                const float* k, const float* v, int hs) {
  __shared__ float red[32];
  const Row row = rows[blockIdx.x];
  const size_t base = c.at(layer, row.seq, row.pos);
  const float* kr = k + static_cast<size_t>(blockIdx.x) * c.d;
  const float* vr = v + static_cast<size_t>(blockIdx.x) * c.d;
  for (int i = threadIdx.x; i < c.d; i += blockDim.x) {
    K[base * c.d + i] = kr[i];
    V[base * c.d + i] = vr[i];
  }
  for (int h = 0; h < c.H; ++h) {
    float s = 0.0f;
    for (int i = threadIdx.x; i < hs; i += blockDim.x) s += kr[h * hs + i] * kr[h * hs + i];
    s = block_sum(s, red);
    if (threadIdx.x == 0) KN[base * c.H + h] = s;
  }
}

// selection_key() of core/sparse_selection.h: ordered as the score, NaN
// lowest, -0 == +0.
__device__ unsigned selection_key(float p) {
  if (p != p) return 0u;
  const unsigned b = __float_as_uint(p == 0.0f ? 0.0f : p);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Causal attention of one row over its sequence's positions 0..pos for one
// head: softmax of exp(-|q-k|^2) (Gaussian) or scale q.k (CSA), then the
// weighted values; with top_k > 0 (QSAT) over the positions
// select_positions_reference keeps. One block per row; scores in dynamic
// shared memory.
__global__ void attention_kernel(float* att, const float* q, const float* K, const float* V, const float* KN,
                                 CacheLayout c, int layer, const Row* rows, int head, int hs, int gaussian, float scale,
                                 int top_k, int window) {
  QISA_DYNAMIC_SHARED(float, scores);
  __shared__ float red[32];
  __shared__ int first_tie;
  const Row row = rows[blockIdx.x];
  const int n = row.pos + 1;
  const float* qr = q + static_cast<size_t>(blockIdx.x) * c.d + head * hs;
  float s = 0.0f;
  for (int i = threadIdx.x; i < hs; i += blockDim.x) s += qr[i] * qr[i];
  const float qn = block_sum(s, red);
  for (int j = threadIdx.x; j < n; j += blockDim.x) {  // selection scores: -|q-k|^2 or scale q.k
    const size_t at = c.at(layer, row.seq, j);
    const float* kj = K + at * c.d + head * hs;
    float dot = 0.0f;
    for (int i = 0; i < hs; ++i) dot += qr[i] * kj[i];
    scores[j] = gaussian ? -(qn + KN[at * c.H + head] - 2.0f * dot) : scale * dot;
  }
  __syncthreads();
  const bool sparse = top_k > 0 && n > top_k;
  unsigned t = 0;  // sparse: the top_k-th largest key
  if (sparse) {
    // Bit by bit from the top, the largest t with at least top_k keys >= t
    // (counts in floats are exact below 2^24 positions).
    for (int bit = 31; bit >= 0; --bit) {
      const unsigned candidate = t | (1u << bit);
      float count = 0.0f;
      for (int j = threadIdx.x; j < n; j += blockDim.x) count += selection_key(scores[j]) >= candidate ? 1.0f : 0.0f;
      if (block_sum(count, red) >= static_cast<float>(top_k)) t = candidate;
    }
    float count = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) count += selection_key(scores[j]) > t ? 1.0f : 0.0f;
    const int above = static_cast<int>(block_sum(count, red));
    if (threadIdx.x == 0) {  // of the keys equal to t, the latest top_k - above (rarely more than one)
      int ties = top_k - above, first = n;
      for (int j = n - 1; j >= 0 && ties > 0; --j) {
        if (selection_key(scores[j]) == t) {
          first = j;
          --ties;
        }
      }
      first_tie = first;
    }
    __syncthreads();
  }
  // Scores of the kept positions (the others -inf, skipped below).
  float m = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const unsigned key = selection_key(scores[j]);
    const bool kept = !sparse || key > t || (key == t && j >= first_tie) || j >= n - window;
    scores[j] = !kept ? -INFINITY : gaussian ? expf(scores[j]) : scores[j];
    if (kept) m = fmaxf(m, scores[j]);
  }
  m = block_max(m, red);
  float total_part = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    if (scores[j] == -INFINITY && sparse) continue;
    total_part += (scores[j] = expf(scores[j] - m));
  }
  const float total = block_sum(total_part, red);  // also orders the score writes before the reads below
  float* out = att + static_cast<size_t>(blockIdx.x) * c.d + head * hs;
  for (int i = threadIdx.x; i < hs; i += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n; ++j) {
      if (sparse && scores[j] == -INFINITY) continue;  // not kept: its value is never read
      acc += scores[j] * V[c.at(layer, row.seq, j) * c.d + head * hs + i];
    }
    out[i] = acc / total;
  }
}

// dst[i] = src[index[i]], rows of d values.
__global__ void gather_kernel(float* dst, const float* src, const int* index, int d) {
  const float* s = src + static_cast<size_t>(index[blockIdx.x]) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) dst[static_cast<size_t>(blockIdx.x) * d + i] = s[i];
}

}  // namespace qisa::cuda
