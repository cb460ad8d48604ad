// The CUDA engine. Same forward pass as runtime/engine.cpp (which is the
// reference these kernels are tested against, tests/gpu): products through
// cuBLAS (y = x W^T with W row-major [out, in]), everything else in the
// kernels below. Weights are uploaded once per model and value path
// (DeviceCache) as f32; per context: a stream, a cuBLAS handle, scratch for
// max_rows rows and the KV cache. Per forward call one host-to-device copy
// (the rows) and one device-to-host copy (the requested logits).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "circuit.h"
#include "cuda/cublas_loader.h"
#include "cuda/cuda_backend.h"
#include "dtype.h"
#include "error.h"

namespace qisa {

namespace {

[[noreturn]] void cuda_fail(cudaError_t e, const char* what) {
  fail(e == cudaErrorMemoryAllocation ? QISA_ERR_OUT_OF_MEMORY : QISA_ERR_BACKEND, "CUDA %s: %s (%s)", what,
       cudaGetErrorString(e), cudaGetErrorName(e));
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) cuda_fail(e, what);
}

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail(s == CUBLAS_STATUS_ALLOC_FAILED ? QISA_ERR_OUT_OF_MEMORY : QISA_ERR_BACKEND, "cuBLAS %s: status %d", what,
         static_cast<int>(s));
}

// Memory from a CUDA allocator, owned by RAII: device memory or pinned host
// memory for the per-call copies.
template <cudaError_t (*Alloc)(void**, size_t), cudaError_t (*Free)(void*)>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  explicit CudaBuffer(size_t bytes) {
    if (bytes) check(Alloc(&p_, bytes), "allocation");
  }
  ~CudaBuffer() {
    if (p_) Free(p_);
  }
  CudaBuffer(CudaBuffer&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  CudaBuffer& operator=(CudaBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  template <class T = float>
  T* get() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
};

cudaError_t device_alloc(void** p, size_t n) {
  return cudaMalloc(p, n);
}
cudaError_t pinned_alloc(void** p, size_t n) {
  return cudaMallocHost(p, n);
}
using DeviceBuffer = CudaBuffer<device_alloc, cudaFree>;
using PinnedBuffer = CudaBuffer<pinned_alloc, cudaFreeHost>;

// ---- kernels ----------------------------------------------------------------

constexpr int kThreads = 128;

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

// x[r] = tok[token] + pos[pos]; one block per row.
__global__ void embed_kernel(float* x, const Row* rows, const float* tok, const float* pos, int d) {
  const Row row = rows[blockIdx.x];
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    x[blockIdx.x * d + i] = tok[row.token * d + i] + pos[row.pos * d + i];
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

// Causal attention of one row over its sequence's positions 0..pos for one
// head: softmax of exp(-|q-k|^2) (Gaussian) or scale q.k (CSA), then the
// weighted values. One block per row; scores in dynamic shared memory.
__global__ void attention_kernel(float* att, const float* q, const float* K, const float* V, const float* KN,
                                 CacheLayout c, int layer, const Row* rows, int head, int hs, int gaussian,
                                 float scale) {
  extern __shared__ float scores[];
  __shared__ float red[32];
  const Row row = rows[blockIdx.x];
  const int n = row.pos + 1;
  const float* qr = q + static_cast<size_t>(blockIdx.x) * c.d + head * hs;
  float s = 0.0f;
  for (int i = threadIdx.x; i < hs; i += blockDim.x) s += qr[i] * qr[i];
  const float qn = block_sum(s, red);
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const size_t at = c.at(layer, row.seq, j);
    const float* kj = K + at * c.d + head * hs;
    float dot = 0.0f;
    for (int i = 0; i < hs; ++i) dot += qr[i] * kj[i];
    scores[j] = gaussian ? expf(-(qn + KN[at * c.H + head] - 2.0f * dot)) : scale * dot;
  }
  __syncthreads();
  float m = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, scores[j]);
  m = block_max(m, red);
  float t = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) t += (scores[j] = expf(scores[j] - m));
  const float total = block_sum(t, red);  // also orders the score writes before the reads below
  float* out = att + static_cast<size_t>(blockIdx.x) * c.d + head * hs;
  for (int i = threadIdx.x; i < hs; i += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n; ++j) acc += scores[j] * V[c.at(layer, row.seq, j) * c.d + head * hs + i];
    out[i] = acc / total;
  }
}

// dst[i] = src[index[i]], rows of d values.
__global__ void gather_kernel(float* dst, const float* src, const int* index, int d) {
  const float* s = src + static_cast<size_t>(index[blockIdx.x]) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) dst[static_cast<size_t>(blockIdx.x) * d + i] = s[i];
}

// ---- weights on the device ----------------------------------------------------

struct DeviceLinear {
  const float* w = nullptr;
  const float* b = nullptr;
  int in = 0, out = 0;
};

struct DeviceQuantum {
  int P = 0, D = 0, width = 0;
  const float* stacked = nullptr;                                 // [width, D]: [Re U; Im U] per projection, or Re O'
  const unsigned long long *x_mask = nullptr, *z_mask = nullptr;  // [P, h]
  std::vector<std::pair<int, int>> dest;                          // per projection: role (0 q, 1 k, 2 v) and head
  bool normalized = true;
};

struct DeviceLayer {
  const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  DeviceLinear proj, up, down;
  std::vector<DeviceLinear> q, k, v;  // per head; w == nullptr where quantum
  std::vector<int> gaussian;
  std::vector<float> scale;
  DeviceQuantum quantum;
};

struct DeviceModel {
  int device = 0;
  std::vector<DeviceBuffer> owned;
  const float *tok = nullptr, *pos = nullptr, *lnf_w = nullptr, *lnf_b = nullptr;
  DeviceLinear lm_head;
  std::vector<DeviceLayer> layers;
  size_t bytes = 0;

  template <class T>
  const T* upload(const T* host, size_t n) {
    owned.emplace_back(n * sizeof(T));
    check(cudaMemcpy(owned.back().get<T>(), host, n * sizeof(T), cudaMemcpyHostToDevice), "upload");
    bytes += n * sizeof(T);
    return owned.back().get<T>();
  }
  const float* upload(const TensorView* t) {
    if (!t) return nullptr;
    std::vector<float> v(t->elements);
    for (uint64_t r = 0; r < t->rows(); ++r) dequantize_row(t->dtype, t->row(r), t->cols(), v.data() + r * t->cols());
    return upload(v.data(), v.size());
  }
  DeviceLinear linear(const Linear& l) {
    if (!l.weight) return {};
    return {upload(l.weight), upload(l.bias), static_cast<int>(l.weight->shape[1]),
            static_cast<int>(l.weight->shape[0])};
  }
};

std::shared_ptr<DeviceModel> upload_model(const Model& m, qisa_value_path path) {
  auto dm = std::make_shared<DeviceModel>();
  check(cudaGetDevice(&dm->device), "cudaGetDevice");
  const ModelConfig& c = m.config;
  dm->tok = dm->upload(m.tok_emb);
  dm->pos = dm->upload(m.pos_emb);
  dm->lnf_w = dm->upload(m.lnf_w);
  dm->lnf_b = dm->upload(m.lnf_b);
  dm->lm_head = c.tied_lm_head ? DeviceLinear{dm->tok, dm->upload(m.lm_head.bias), static_cast<int>(c.n_embd),
                                              static_cast<int>(c.vocab_size)}
                               : dm->linear(m.lm_head);
  for (const Layer& L : m.layers) {
    DeviceLayer dl{};
    dl.ln1_w = dm->upload(L.ln1_w);
    dl.ln1_b = dm->upload(L.ln1_b);
    dl.ln2_w = dm->upload(L.ln2_w);
    dl.ln2_b = dm->upload(L.ln2_b);
    dl.proj = dm->linear(L.proj);
    dl.up = dm->linear(L.up);
    dl.down = dm->linear(L.down);
    std::vector<const QuantumProjection*> qp;
    for (size_t h = 0; h < L.heads.size(); ++h) {
      const Head& hd = L.heads[h];
      dl.q.push_back(dm->linear(hd.q));
      dl.k.push_back(dm->linear(hd.k));
      dl.v.push_back(dm->linear(hd.v));
      dl.gaussian.push_back(hd.kind != QISA_ATTENTION_CSA);
      dl.scale.push_back(hd.scale);
      const std::optional<QuantumProjection>* roles[] = {&hd.qq, &hd.qk, &hd.qv};
      for (int role = 0; role < 3; ++role) {
        if (!*roles[role]) continue;
        qp.push_back(&**roles[role]);
        dl.quantum.dest.emplace_back(role, static_cast<int>(h));
      }
    }
    if (!qp.empty()) {
      DeviceQuantum& q = dl.quantum;
      q.P = static_cast<int>(qp.size());
      q.D = 1 << qp[0]->n_qubits;
      q.normalized = qp[0]->encoding == Encoding::Normalized;
      const size_t D = static_cast<size_t>(q.D), hs = c.n_embd / c.n_head;
      std::vector<float> stacked, re(D * D), im(D * D);
      std::vector<unsigned long long> xm, zm;
      for (const QuantumProjection* p : qp) {
        for (const PauliString& s : p->paulis) {
          xm.push_back(s.x_mask);
          zm.push_back(s.z_mask);
        }
        for (uint64_t r = 0; r < D; ++r) {
          dequantize_row(p->unitary_re->dtype, p->unitary_re->row(r), D, re.data() + r * D);
          dequantize_row(p->unitary_im->dtype, p->unitary_im->row(r), D, im.data() + r * D);
        }
        if (path == QISA_VALUE_PATH_OBSERVABLES) {
          std::vector<float> obs_re, obs_im;
          if (p->observables_re) {
            obs_re.resize(hs * D * D);
            for (uint64_t r = 0; r < hs * D; ++r)
              dequantize_row(p->observables_re->dtype, p->observables_re->row(r), D, obs_re.data() + r * D);
          } else {
            std::vector<cplx> u(D * D);
            for (size_t i = 0; i < u.size(); ++i) u[i] = cplx(re[i], im[i]);
            dense_observables(p->n_qubits, u, p->paulis, obs_re, obs_im);
          }
          stacked.insert(stacked.end(), obs_re.begin(), obs_re.end());
        } else {
          stacked.insert(stacked.end(), re.begin(), re.end());
          stacked.insert(stacked.end(), im.begin(), im.end());
        }
      }
      q.width = static_cast<int>(stacked.size() / D);
      q.stacked = dm->upload(stacked.data(), stacked.size());
      q.x_mask = dm->upload(xm.data(), xm.size());
      q.z_mask = dm->upload(zm.data(), zm.size());
    }
    dm->layers.push_back(std::move(dl));
  }
  return dm;
}

// ---- the engine ---------------------------------------------------------------

class CudaEngine : public Backend {
 public:
  CudaEngine(const Model& model, std::shared_ptr<DeviceModel> weights, const EngineOptions& o, int64_t max_seq)
      : model_(model), w_(std::move(weights)), options_(o), max_rows_(o.max_rows) {
    std::string why;
    blas_ = cublas(&why);
    if (!blas_) fail(QISA_ERR_BACKEND, "%s", why.c_str());
    const ModelConfig& c = model.config;
    d_ = static_cast<int>(c.n_embd);
    H_ = static_cast<int>(c.n_head);
    hs_ = d_ / H_;
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    owned_stream_.reset(stream_);
    check(blas_->create(&handle_), "cublasCreate");
    owned_handle_ = std::unique_ptr<cublasContext, HandleDeleter>(handle_, HandleDeleter{blas_});
    check(blas_->set_stream(handle_, stream_), "cublasSetStream");
    const auto R = static_cast<size_t>(max_rows_), d = static_cast<size_t>(d_);
    int D = 0, width = 0, P = 0;
    for (const auto& l : w_->layers) {
      D = std::max(D, l.quantum.D);
      width = std::max(width, l.quantum.width);
      P = std::max(P, l.quantum.P);
    }
    layout_ = {static_cast<int>(max_seq), static_cast<int>(c.n_ctx), d_, H_};
    const size_t cache = static_cast<size_t>(c.n_layer) * max_seq * c.n_ctx;
    for (auto* b : {&x_, &u_, &q_, &k_, &v_, &att_, &tmp_}) *b = DeviceBuffer(R * d * sizeof(float));
    hidden_ = DeviceBuffer(R * c.n_ff * sizeof(float));
    psi_ = DeviceBuffer(R * static_cast<size_t>(D) * sizeof(float));
    qout_ = DeviceBuffer(R * static_cast<size_t>(width) * sizeof(float));
    logits_ = DeviceBuffer(R * c.vocab_size * sizeof(float));
    K_ = DeviceBuffer(cache * d * sizeof(float));
    V_ = DeviceBuffer(cache * d * sizeof(float));
    KN_ = DeviceBuffer(cache * H_ * sizeof(float));
    rows_ = DeviceBuffer(R * (sizeof(Row) + sizeof(int)));
    host_rows_ = PinnedBuffer(R * (sizeof(Row) + sizeof(int)));
    host_logits_ = PinnedBuffer(R * c.vocab_size * sizeof(float));
    // Per layer, the destination column of every quantum projection.
    std::vector<float*> dests;
    for (const auto& l : w_->layers) {
      dest_offset_.push_back(dests.size());
      for (auto [role, head] : l.quantum.dest) {
        float* base = role == 0 ? q_.get() : role == 1 ? k_.get() : v_.get();
        dests.push_back(base + head * hs_);
      }
    }
    dests_ = DeviceBuffer(std::max<size_t>(1, dests.size()) * sizeof(float*));
    if (!dests.empty())
      check(cudaMemcpy(dests_.get<float*>(), dests.data(), dests.size() * sizeof(float*), cudaMemcpyHostToDevice),
            "upload");
  }

  ~CudaEngine() override = default;

  int64_t max_rows() const override { return max_rows_; }
  qisa_backend kind() const override { return QISA_BACKEND_CUDA; }

  void forward(std::span<const Row> rows, KvCache& /*cache*/, float* logits) override {
    const ModelConfig& c = model_.config;
    const int R = static_cast<int>(rows.size());
    if (R == 0) return;
    if (R > max_rows_) fail(QISA_ERR_INTERNAL, "cuda engine: %d rows > %lld", R, static_cast<long long>(max_rows_));
    // Rows and the gather list of rows that want logits, in one copy.
    Row* hr = host_rows_.get<Row>();
    int* hg = reinterpret_cast<int*>(hr + R);
    std::vector<int32_t>& slots = slots_;
    slots.clear();
    for (int r = 0; r < R; ++r) {
      hr[r] = rows[static_cast<size_t>(r)];
      if (hr[r].logits_slot >= 0) {
        hg[slots.size()] = r;
        slots.push_back(hr[r].logits_slot);
      }
    }
    const int m = static_cast<int>(slots.size());
    const Row* drows = rows_.get<Row>();
    const int* dgather = reinterpret_cast<const int*>(drows + R);
    check(cudaMemcpyAsync(rows_.get(), hr, R * sizeof(Row) + m * sizeof(int), cudaMemcpyHostToDevice, stream_),
          "copy rows");
    const int d = d_;
    embed_kernel<<<R, kThreads, 0, stream_>>>(x_.get(), drows, w_->tok, w_->pos, d);
    const bool pre = c.ln_placement == QISA_LN_PRE;
    const int act = c.activation == QISA_ACTIVATION_RELU ? 1 : 2;
    for (size_t l = 0; l < w_->layers.size(); ++l) {
      const DeviceLayer& L = w_->layers[l];
      const float* u = x_.get();
      if (pre) {
        layernorm_kernel<<<R, kThreads, 0, stream_>>>(u_.get(), x_.get(), L.ln1_w, L.ln1_b, d, c.ln_eps);
        u = u_.get();
      }
      if (L.quantum.P > 0) quantum(L, l, u, R);
      for (int h = 0; h < H_; ++h) {
        const DeviceLinear* lin[] = {&L.q[h], &L.k[h], &L.v[h]};
        float* dst[] = {q_.get(), k_.get(), v_.get()};
        for (int i = 0; i < 3; ++i)
          if (lin[i]->w) linear(*lin[i], u, d, dst[i] + h * hs_, d, R, 0);
      }
      kv_write_kernel<<<R, kThreads, 0, stream_>>>(K_.get(), V_.get(), KN_.get(), layout_, static_cast<int>(l), drows,
                                                   k_.get(), v_.get(), hs_);
      for (int h = 0; h < H_; ++h) {
        attention_kernel<<<R, kThreads, c.n_ctx * sizeof(float), stream_>>>(
            att_.get(), q_.get(), K_.get(), V_.get(), KN_.get(), layout_, static_cast<int>(l), drows, h, hs_,
            L.gaussian[static_cast<size_t>(h)], L.scale[static_cast<size_t>(h)]);
      }
      linear(L.proj, att_.get(), d, tmp_.get(), d, R, 0);
      const size_t n = static_cast<size_t>(R) * d;
      const int blocks = static_cast<int>(std::min<size_t>((n + 255) / 256, 4096));
      if (pre) {
        add_kernel<<<blocks, 256, 0, stream_>>>(x_.get(), x_.get(), tmp_.get(), n);
        layernorm_kernel<<<R, kThreads, 0, stream_>>>(u_.get(), x_.get(), L.ln2_w, L.ln2_b, d, c.ln_eps);
        linear(L.up, u_.get(), d, hidden_.get(), L.up.out, R, act);
        linear(L.down, hidden_.get(), L.up.out, tmp_.get(), d, R, 0);
        add_kernel<<<blocks, 256, 0, stream_>>>(x_.get(), x_.get(), tmp_.get(), n);
      } else {  // post-LN: x = LN1(x + attn); x = LN2(x + mlp(x))
        add_kernel<<<blocks, 256, 0, stream_>>>(u_.get(), x_.get(), tmp_.get(), n);
        layernorm_kernel<<<R, kThreads, 0, stream_>>>(x_.get(), u_.get(), L.ln1_w, L.ln1_b, d, c.ln_eps);
        linear(L.up, x_.get(), d, hidden_.get(), L.up.out, R, act);
        linear(L.down, hidden_.get(), L.up.out, tmp_.get(), d, R, 0);
        add_kernel<<<blocks, 256, 0, stream_>>>(u_.get(), x_.get(), tmp_.get(), n);
        layernorm_kernel<<<R, kThreads, 0, stream_>>>(x_.get(), u_.get(), L.ln2_w, L.ln2_b, d, c.ln_eps);
      }
    }
    if (m > 0) {
      gather_kernel<<<m, kThreads, 0, stream_>>>(tmp_.get(), x_.get(), dgather, d);
      layernorm_kernel<<<m, kThreads, 0, stream_>>>(u_.get(), tmp_.get(), w_->lnf_w, w_->lnf_b, d, c.ln_eps);
      const int V = static_cast<int>(c.vocab_size);
      linear(w_->lm_head, u_.get(), d, logits_.get(), V, m, 0);
      check(cudaMemcpyAsync(host_logits_.get<float>(), logits_.get(), static_cast<size_t>(m) * V * sizeof(float),
                            cudaMemcpyDeviceToHost, stream_),
            "copy logits");
    }
    check(cudaGetLastError(), "kernel launch");
    check(cudaStreamSynchronize(stream_), "forward");
    const size_t V = c.vocab_size;
    for (int i = 0; i < m; ++i)
      std::memcpy(logits + static_cast<size_t>(slots[static_cast<size_t>(i)]) * V, host_logits_.get<float>() + i * V,
                  V * sizeof(float));
  }

  void kv_to_host(KvCache& cache, int64_t seq, int64_t n) override { copy_kv(cache, seq, n, true); }
  void kv_from_host(KvCache& cache, int64_t seq, int64_t n) override { copy_kv(cache, seq, n, false); }

 private:
  // y[R, out] (row stride ldy) = x[R, in] W^T (+ bias, activation).
  void linear(const DeviceLinear& l, const float* x, int ldx, float* y, int ldy, int R, int act) {
    const float one = 1.0f, zero = 0.0f;
    check(blas_->sgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, l.out, R, l.in, &one, l.w, l.in, x, ldx, &zero, y, ldy),
          "sgemm");
    if (l.b || act) bias_act_kernel<<<R, kThreads, 0, stream_>>>(y, ldy, l.b, l.out, act);
  }

  void quantum(const DeviceLayer& L, size_t layer, const float* u, int R) {
    const DeviceQuantum& q = L.quantum;
    encode_kernel<<<R, kThreads, 0, stream_>>>(psi_.get(), u, d_, q.D, q.normalized);
    linear(DeviceLinear{q.stacked, nullptr, q.D, q.width}, psi_.get(), q.D, qout_.get(), q.width, R, 0);
    float* const* dest = dests_.get<float*>() + dest_offset_[layer];
    const dim3 grid(static_cast<unsigned>(R), static_cast<unsigned>(q.P));
    if (options_.value_path == QISA_VALUE_PATH_OBSERVABLES)
      observables_kernel<<<grid, kThreads, 0, stream_>>>(dest, d_, qout_.get(), q.width, psi_.get(), q.D, hs_);
    else
      pauli_kernel<<<grid, kThreads, 0, stream_>>>(dest, d_, qout_.get(), q.width, q.D, hs_, q.x_mask, q.z_mask);
  }

  void copy_kv(KvCache& cache, int64_t seq, int64_t n, bool to_host) {
    if (n <= 0) return;
    const auto d = static_cast<size_t>(d_), H = static_cast<size_t>(H_);
    for (int64_t l = 0; l < cache.n_layer(); ++l) {
      const size_t at = (static_cast<size_t>(l) * layout_.n_seq + static_cast<size_t>(seq)) * layout_.n_ctx;
      const auto kind = to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
      auto copy = [&](float* host, float* dev, size_t count) {
        check(to_host ? cudaMemcpyAsync(host, dev, count * sizeof(float), kind, stream_)
                      : cudaMemcpyAsync(dev, host, count * sizeof(float), kind, stream_),
              "copy cache");
      };
      copy(cache.key(l, seq, 0), K_.get() + at * d, static_cast<size_t>(n) * d);
      copy(cache.value(l, seq, 0), V_.get() + at * d, static_cast<size_t>(n) * d);
      copy(cache.key_norm(l, seq, 0), KN_.get() + at * H, static_cast<size_t>(n) * H);
    }
    check(cudaStreamSynchronize(stream_), "copy cache");
  }

  const Model& model_;
  std::shared_ptr<DeviceModel> w_;
  EngineOptions options_;
  int64_t max_rows_;
  int d_ = 0, H_ = 0, hs_ = 0;
  struct StreamDeleter {
    void operator()(CUstream_st* s) const { cudaStreamDestroy(s); }
  };
  struct HandleDeleter {
    const Cublas* blas;
    void operator()(cublasContext* h) const { blas->destroy(h); }
  };
  const Cublas* blas_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  // Released in reverse order: the handle before the stream it runs on.
  std::unique_ptr<CUstream_st, StreamDeleter> owned_stream_;
  std::unique_ptr<cublasContext, HandleDeleter> owned_handle_{nullptr, HandleDeleter{nullptr}};
  CacheLayout layout_{};
  DeviceBuffer x_, u_, q_, k_, v_, att_, tmp_, hidden_, psi_, qout_, logits_, K_, V_, KN_, rows_, dests_;
  PinnedBuffer host_rows_, host_logits_;
  std::vector<size_t> dest_offset_;
  std::vector<int32_t> slots_;
};

}  // namespace

bool cuda_usable(std::string* why) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    if (why)
      *why = e != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(e) : "no CUDA device";
    return false;
  }
  return cublas(why) != nullptr;
}

std::unique_ptr<Backend> make_cuda_backend(const Model& model, DeviceCache& cache, const EngineOptions& options,
                                           int64_t max_sequences, std::string* info) {
  std::string why;
  if (!cuda_usable(&why)) fail(QISA_ERR_BACKEND, "%s", why.c_str());
  if (options.engine == QISA_ENGINE_REFERENCE)
    fail(QISA_ERR_INVALID_ARGUMENT, "the reference engine runs on the CPU; use backend cpu (or auto) with it");
  check(cudaSetDevice(0), "cudaSetDevice");
  std::shared_ptr<DeviceModel> weights;
  {
    const int slot = options.value_path == QISA_VALUE_PATH_OBSERVABLES ? 1 : 0;
    std::lock_guard<std::mutex> lock(cache.mutex);
    weights = std::static_pointer_cast<DeviceModel>(cache.cuda[slot].lock());
    if (!weights) {
      weights = upload_model(model, options.value_path);
      cache.cuda[slot] = weights;
    }
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, weights->device), "cudaGetDeviceProperties");
  if (info) *info = strf("cuda: %s (device %d, weights %zu bytes)", prop.name, weights->device, weights->bytes);
  return std::make_unique<CudaEngine>(model, std::move(weights), options, max_sequences);
}

}  // namespace qisa
