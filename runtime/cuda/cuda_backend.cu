// The CUDA engine. Same forward pass as runtime/engine.cpp (which is the
// reference these kernels are tested against, tests/gpu): products through
// cuBLAS (y = x W^T with W row-major [out, in]) or, for few rows of f16,
// bf16 and Q8_0 weights, a kernel that reads them as stored; everything else
// in cuda_kernels.cuh. Weights are uploaded once per model and value path
// (DeviceCache) in their stored types; per context: a stream, a cuBLAS handle
// with its own workspace, scratch for max_rows rows and the KV cache. Per
// forward call one host-to-device copy (the rows) and one device-to-host copy
// (the requested logits, or only their argmax), replayed from a CUDA Graph
// once a shape repeats.
#ifndef QISA_CUDA_EMULATION
#include <cuda_runtime.h>
#endif

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "cuda/cublas_loader.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_kernels.cuh"
#include "dtype.h"
#include "error.h"
#include "quantum_stack.h"

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

// Blocks for a grid-stride loop over n elements.
int elementwise_blocks(size_t n) {
  const size_t per_block = cuda::kElementwiseThreads;
  return static_cast<int>(std::min<size_t>((n + per_block - 1) / per_block, cuda::kMaxElementwiseBlocks));
}

// ---- weights on the device ----------------------------------------------------

using cuda::CacheLayout;
using cuda::kGemvRows;
using cuda::kThreads;
using cuda::StoredMatrix;

struct DeviceLinear {
  StoredMatrix w;
  const float* b = nullptr;
  int out() const { return w.rows; }
};

struct DeviceQuantum {
  int P = 0, D = 0;
  DeviceLinear stacked;  // [Re U; Im U] per projection (first n_embd columns), or Re O' on the observables path
  const unsigned long long *x_mask = nullptr, *z_mask = nullptr;  // [P, h]
  std::vector<std::pair<int, int>> dest;                          // per projection: role (0 q, 1 k, 2 v) and head
  bool normalized = true;
};

struct DeviceLayer {
  const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  DeviceLinear proj, up, down;
  std::vector<DeviceLinear> q, k, v;  // per head; w.data == nullptr where quantum
  std::vector<int> gaussian;
  std::vector<float> scale;
  DeviceQuantum quantum;
};

struct DeviceModel {
  int device = 0;
  std::vector<DeviceBuffer> owned;
  StoredMatrix tok, pos;
  const float *lnf_w = nullptr, *lnf_b = nullptr;
  DeviceLinear lm_head;
  std::vector<DeviceLayer> layers;
  size_t bytes = 0;
  size_t max_widened = 0;  // elements of the largest non-f32 matrix: scratch for many-row products

  template <class T>
  const T* upload(const T* host, size_t n) {
    owned.emplace_back(n * sizeof(T));
    check(cudaMemcpy(owned.back().get<T>(), host, n * sizeof(T), cudaMemcpyHostToDevice), "upload");
    bytes += n * sizeof(T);
    return owned.back().get<T>();
  }
  // Vectors (LayerNorm, biases) widened to f32: small, read by every row.
  const float* upload_vector(const TensorView* t) {
    if (!t) return nullptr;
    std::vector<float> v(t->elements);
    for (uint64_t r = 0; r < t->rows(); ++r) dequantize_row(t->dtype, t->row(r), t->cols(), v.data() + r * t->cols());
    return upload(v.data(), v.size());
  }
  StoredMatrix matrix(const uint8_t* data, qisa_dtype dtype, size_t row_bytes, size_t rows, size_t cols) {
    if (dtype != QISA_DTYPE_F32) max_widened = std::max(max_widened, rows * cols);
    return {upload(data, rows * row_bytes), dtype, row_bytes, static_cast<int>(rows), static_cast<int>(cols)};
  }
  // A matrix as the file stores it.
  StoredMatrix matrix(const TensorView& t) { return matrix(t.data, t.dtype, t.row_stride(), t.rows(), t.cols()); }
  DeviceLinear linear(const Linear& l) {
    if (!l.weight) return {};
    return {matrix(*l.weight), upload_vector(l.bias)};
  }
};

std::shared_ptr<DeviceModel> upload_model(const Model& m, qisa_value_path path) {
  auto dm = std::make_shared<DeviceModel>();
  check(cudaGetDevice(&dm->device), "cudaGetDevice");
  const ModelConfig& c = m.config;
  dm->tok = dm->matrix(*m.tok_emb);
  dm->pos = dm->matrix(*m.pos_emb);
  dm->lnf_w = dm->upload_vector(m.lnf_w);
  dm->lnf_b = dm->upload_vector(m.lnf_b);
  dm->lm_head = c.tied_lm_head ? DeviceLinear{dm->tok, dm->upload_vector(m.lm_head.bias)} : dm->linear(m.lm_head);
  for (const Layer& L : m.layers) {
    DeviceLayer dl{};
    dl.ln1_w = dm->upload_vector(L.ln1_w);
    dl.ln1_b = dm->upload_vector(L.ln1_b);
    dl.ln2_w = dm->upload_vector(L.ln2_w);
    dl.ln2_b = dm->upload_vector(L.ln2_b);
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
      // [Re U; Im U] of every projection cut to n_embd columns, in the stored
      // type when they share one; or Re O' (f32) on the observables path.
      const StackedMatrix stacked = path == QISA_VALUE_PATH_OBSERVABLES ? stack_observables(qp, c.n_embd / c.n_head)
                                                                        : stack_unitaries(qp, c.n_embd, true);
      q.stacked = {dm->matrix(stacked.bytes.data(), stacked.dtype, stacked.row_bytes, static_cast<size_t>(stacked.rows),
                              static_cast<size_t>(stacked.cols))};
      std::vector<unsigned long long> xm, zm;
      for (const QuantumProjection* p : qp) {
        for (const PauliString& s : p->paulis) {
          xm.push_back(s.x_mask);
          zm.push_back(s.z_mask);
        }
      }
      q.x_mask = dm->upload(xm.data(), xm.size());
      q.z_mask = dm->upload(zm.data(), zm.size());
    }
    dm->layers.push_back(std::move(dl));
  }
  return dm;
}

// ---- the engine ---------------------------------------------------------------

// cuBLAS's recommended workspace: 32 MiB on Hopper and later, 4 MiB before.
// Set explicitly so that captured graphs use this buffer, not one cuBLAS
// would allocate per capture.
size_t cublas_workspace_bytes(int major) {
  return (major >= 9 ? 32u : 4u) << 20;
}

// CUDA Graphs are used unless QISA_CUDA_GRAPHS=0 (for comparisons and
// debugging).
bool graphs_wanted() {
  const char* v = std::getenv("QISA_CUDA_GRAPHS");
  return !(v && std::strcmp(v, "0") == 0);
}

class CudaEngine : public Backend {
 public:
  CudaEngine(const Model& model, std::shared_ptr<DeviceModel> weights, const EngineOptions& o, int64_t max_seq,
             int cc_major)
      : model_(model), w_(std::move(weights)), options_(o), max_rows_(o.max_rows), graphs_(graphs_wanted()) {
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
    check(blas_->set_stream(handle_, stream_), "cublasSetStream");  // resets the workspace: set it after
    const size_t ws = cublas_workspace_bytes(cc_major);
    workspace_ = DeviceBuffer(ws);
    check(blas_->set_workspace(handle_, workspace_.get(), ws), "cublasSetWorkspace");
    const auto R = static_cast<size_t>(max_rows_), d = static_cast<size_t>(d_);
    int D = 0, width = 0;
    for (const auto& l : w_->layers) {
      D = std::max(D, l.quantum.D);
      width = std::max(width, l.quantum.stacked.out());
    }
    layout_ = {static_cast<int>(max_seq), static_cast<int>(c.n_ctx), d_, H_};
    const size_t cache = static_cast<size_t>(c.n_layer) * max_seq * c.n_ctx;
    for (auto* b : {&x_, &u_, &q_, &k_, &v_, &att_, &tmp_}) *b = DeviceBuffer(R * d * sizeof(float));
    hidden_ = DeviceBuffer(R * c.n_ff * sizeof(float));
    psi_ = DeviceBuffer(R * static_cast<size_t>(D) * sizeof(float));
    qout_ = DeviceBuffer(R * static_cast<size_t>(width) * sizeof(float));
    logits_ = DeviceBuffer(R * c.vocab_size * sizeof(float));
    argmax_ = DeviceBuffer(R * sizeof(int32_t));
    widened_ = DeviceBuffer(w_->max_widened * sizeof(float));
    K_ = DeviceBuffer(cache * d * sizeof(float));
    V_ = DeviceBuffer(cache * d * sizeof(float));
    KN_ = DeviceBuffer(cache * H_ * sizeof(float));
    rows_ = DeviceBuffer(R * (sizeof(Row) + sizeof(int)));
    host_rows_ = PinnedBuffer(R * (sizeof(Row) + sizeof(int)));
    host_logits_ = PinnedBuffer(R * c.vocab_size * sizeof(float));
    host_argmax_ = PinnedBuffer(R * sizeof(int32_t));
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
  bool uses_host_cache() const override { return false; }

  std::string state() const override {
    return graphs_ ? strf("graphs: %d captured", captured())
                   : strf("graphs: off (%s)", graph_off_why_.empty() ? "QISA_CUDA_GRAPHS=0" : graph_off_why_.c_str());
  }

  void forward(std::span<const Row> rows, KvCache& /*cache*/, float* logits) override {
    const int m = stage(rows);
    run(static_cast<int>(rows.size()), m, false);
    const size_t V = model_.config.vocab_size;
    for (int i = 0; i < m; ++i)
      std::memcpy(logits + static_cast<size_t>(slots_[static_cast<size_t>(i)]) * V, host_logits_.get<float>() + i * V,
                  V * sizeof(float));
  }

  bool forward_argmax(std::span<const Row> rows, KvCache& /*cache*/, int32_t* argmax) override {
    const int m = stage(rows);
    run(static_cast<int>(rows.size()), m, true);
    for (int i = 0; i < m; ++i) argmax[slots_[static_cast<size_t>(i)]] = host_argmax_.get<int32_t>()[i];
    return true;
  }

  void save_kv(const KvCache& /*cache*/, int64_t seq, int64_t n, uint8_t* out) override { copy_kv(seq, n, out, true); }
  void load_kv(KvCache& /*cache*/, int64_t seq, int64_t n, const uint8_t* in) override {
    copy_kv(seq, n, const_cast<uint8_t*>(in), false);
  }

 private:
  // Rows and the gather list of rows that want logits into the pinned
  // buffer the forward pass copies from; returns how many want logits.
  int stage(std::span<const Row> rows) {
    const int R = static_cast<int>(rows.size());
    if (R > max_rows_) fail(QISA_ERR_INTERNAL, "cuda engine: %d rows > %lld", R, static_cast<long long>(max_rows_));
    Row* hr = host_rows_.get<Row>();
    int* hg = reinterpret_cast<int*>(hr + R);
    slots_.clear();
    for (int r = 0; r < R; ++r) {
      hr[r] = rows[static_cast<size_t>(r)];
      if (hr[r].logits_slot >= 0) {
        hg[slots_.size()] = r;
        slots_.push_back(hr[r].logits_slot);
      }
    }
    return static_cast<int>(slots_.size());
  }

  // The forward pass of R staged rows (m of them want logits) on the
  // stream, then waits for it.
  void run(int R, int m, bool argmax) {
    if (R == 0) return;
    if (cudaGraphExec_t g = graph(R, m, argmax)) {
      check(cudaGraphLaunch(g, stream_), "cudaGraphLaunch");
    } else {
      enqueue(R, m, argmax);
    }
    check(cudaGetLastError(), "kernel launch");
    check(cudaStreamSynchronize(stream_), "forward");
  }

  // The instantiated graph for this shape, captured the second time the
  // shape is seen (one-off shapes such as a long prompt's prefill run
  // directly), or nullptr: run directly. Every kernel reads positions and
  // sequence ids from the staged rows, so one graph serves every step of
  // that shape. A capture that fails turns graphs off for this context.
  cudaGraphExec_t graph(int R, int m, bool argmax) {
    constexpr int kMaxGraphs = 32;
    if (!graphs_) return nullptr;
    Graph& g = graphs_by_shape_[std::make_tuple(R, m, argmax)];
    if (g.exec) return g.exec.get();
    if (++g.seen < 2 || captured() >= kMaxGraphs) return nullptr;
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaGraph_t captured = nullptr;
    try {
      enqueue(R, m, argmax);
    } catch (const Error& e) {
      cudaStreamEndCapture(stream_, &captured);
      if (captured) cudaGraphDestroy(captured);
      return graphs_off(e.what());
    }
    cudaError_t e = cudaStreamEndCapture(stream_, &captured);
    if (e != cudaSuccess) return graphs_off(cudaGetErrorString(e));
    cudaGraphExec_t exec = nullptr;
    e = cudaGraphInstantiate(&exec, captured, 0);
    cudaGraphDestroy(captured);
    if (e != cudaSuccess) return graphs_off(cudaGetErrorString(e));
    g.exec.reset(exec);
    return exec;
  }

  int captured() const {
    return static_cast<int>(std::count_if(graphs_by_shape_.begin(), graphs_by_shape_.end(),
                                          [](const auto& kv) { return kv.second.exec != nullptr; }));
  }

  cudaGraphExec_t graphs_off(const std::string& why) {
    (void)cudaGetLastError();  // clear the capture's error; the pass then runs directly
    graphs_ = false;
    graph_off_why_ = "capture failed: " + why;
    return nullptr;
  }

  void enqueue(int R, int m, bool argmax) {
    const ModelConfig& c = model_.config;
    const Row* drows = rows_.get<Row>();
    const int* dgather = reinterpret_cast<const int*>(drows + R);
    check(cudaMemcpyAsync(rows_.get(), host_rows_.get(), R * sizeof(Row) + m * sizeof(int), cudaMemcpyHostToDevice,
                          stream_),
          "copy rows");
    const int d = d_;
    QISA_LAUNCH(cuda::embed_kernel, R, kThreads, 0, stream_, x_.get(), drows, w_->tok, w_->pos, d);
    const bool pre = c.ln_placement == QISA_LN_PRE;
    const int act = c.activation == QISA_ACTIVATION_RELU ? 1 : 2;
    for (size_t l = 0; l < w_->layers.size(); ++l) {
      const DeviceLayer& L = w_->layers[l];
      const float* u = x_.get();
      if (pre) {
        QISA_LAUNCH(cuda::layernorm_kernel, R, kThreads, 0, stream_, u_.get(), x_.get(), L.ln1_w, L.ln1_b, d, c.ln_eps);
        u = u_.get();
      }
      if (L.quantum.P > 0) quantum(L, l, u, R);
      for (int h = 0; h < H_; ++h) {
        const DeviceLinear* lin[] = {&L.q[h], &L.k[h], &L.v[h]};
        float* dst[] = {q_.get(), k_.get(), v_.get()};
        for (int i = 0; i < 3; ++i)
          if (lin[i]->w.data) linear(*lin[i], u, d, dst[i] + h * hs_, d, R, 0);
      }
      QISA_LAUNCH(cuda::kv_write_kernel, R, kThreads, 0, stream_, K_.get(), V_.get(), KN_.get(), layout_,
                  static_cast<int>(l), drows, k_.get(), v_.get(), hs_);
      for (int h = 0; h < H_; ++h) {
        QISA_LAUNCH(cuda::attention_kernel, R, kThreads, c.n_ctx * sizeof(float), stream_, att_.get(), q_.get(),
                    K_.get(), V_.get(), KN_.get(), layout_, static_cast<int>(l), drows, h, hs_,
                    L.gaussian[static_cast<size_t>(h)], L.scale[static_cast<size_t>(h)]);
      }
      linear(L.proj, att_.get(), d, tmp_.get(), d, R, 0);
      const size_t n = static_cast<size_t>(R) * d;
      const int blocks = elementwise_blocks(n);
      if (pre) {
        QISA_LAUNCH(cuda::add_kernel, blocks, cuda::kElementwiseThreads, 0, stream_, x_.get(), x_.get(), tmp_.get(), n);
        QISA_LAUNCH(cuda::layernorm_kernel, R, kThreads, 0, stream_, u_.get(), x_.get(), L.ln2_w, L.ln2_b, d, c.ln_eps);
        linear(L.up, u_.get(), d, hidden_.get(), L.up.out(), R, act);
        linear(L.down, hidden_.get(), L.up.out(), tmp_.get(), d, R, 0);
        QISA_LAUNCH(cuda::add_kernel, blocks, cuda::kElementwiseThreads, 0, stream_, x_.get(), x_.get(), tmp_.get(), n);
      } else {  // post-LN: x = LN1(x + attn); x = LN2(x + mlp(x))
        QISA_LAUNCH(cuda::add_kernel, blocks, cuda::kElementwiseThreads, 0, stream_, u_.get(), x_.get(), tmp_.get(), n);
        QISA_LAUNCH(cuda::layernorm_kernel, R, kThreads, 0, stream_, x_.get(), u_.get(), L.ln1_w, L.ln1_b, d, c.ln_eps);
        linear(L.up, x_.get(), d, hidden_.get(), L.up.out(), R, act);
        linear(L.down, hidden_.get(), L.up.out(), tmp_.get(), d, R, 0);
        QISA_LAUNCH(cuda::add_kernel, blocks, cuda::kElementwiseThreads, 0, stream_, u_.get(), x_.get(), tmp_.get(), n);
        QISA_LAUNCH(cuda::layernorm_kernel, R, kThreads, 0, stream_, x_.get(), u_.get(), L.ln2_w, L.ln2_b, d, c.ln_eps);
      }
    }
    if (m == 0) return;
    QISA_LAUNCH(cuda::gather_kernel, m, kThreads, 0, stream_, tmp_.get(), x_.get(), dgather, d);
    QISA_LAUNCH(cuda::layernorm_kernel, m, kThreads, 0, stream_, u_.get(), tmp_.get(), w_->lnf_w, w_->lnf_b, d,
                c.ln_eps);
    const int V = static_cast<int>(c.vocab_size);
    linear(w_->lm_head, u_.get(), d, logits_.get(), V, m, 0);
    if (argmax) {
      QISA_LAUNCH(cuda::argmax_kernel, m, kThreads, 0, stream_, argmax_.get<int32_t>(), logits_.get(), V);
      check(cudaMemcpyAsync(host_argmax_.get(), argmax_.get(), static_cast<size_t>(m) * sizeof(int32_t),
                            cudaMemcpyDeviceToHost, stream_),
            "copy argmax");
    } else {
      check(cudaMemcpyAsync(host_logits_.get(), logits_.get(), static_cast<size_t>(m) * V * sizeof(float),
                            cudaMemcpyDeviceToHost, stream_),
            "copy logits");
    }
  }

  // y[R, out] (row stride ldy) = x[R, in] W^T (+ bias, activation). f32
  // weights: SGEMM. Others: few rows read W as stored (gemv_kernel), many
  // rows widen W into scratch once and run one SGEMM.
  void linear(const DeviceLinear& l, const float* x, int ldx, float* y, int ldy, int R, int act) {
    const StoredMatrix& w = l.w;
    const float* wf = reinterpret_cast<const float*>(w.data);
    if (w.dtype != QISA_DTYPE_F32 && R <= kGemvRows) {
      const int blocks = (w.rows + kThreads / 32 - 1) / (kThreads / 32);
      switch (w.dtype) {
        case QISA_DTYPE_F16:
          QISA_LAUNCH(cuda::gemv_kernel<QISA_DTYPE_F16>, blocks, kThreads, 0, stream_, y, ldy, w, x, ldx, R);
          break;
        case QISA_DTYPE_BF16:
          QISA_LAUNCH(cuda::gemv_kernel<QISA_DTYPE_BF16>, blocks, kThreads, 0, stream_, y, ldy, w, x, ldx, R);
          break;
        default:
          QISA_LAUNCH(cuda::gemv_kernel<QISA_DTYPE_Q8_0>, blocks, kThreads, 0, stream_, y, ldy, w, x, ldx, R);
          break;
      }
      wf = nullptr;
    } else if (w.dtype != QISA_DTYPE_F32) {
      const size_t n = static_cast<size_t>(w.rows) * w.cols;
      const int blocks = elementwise_blocks(n);
      switch (w.dtype) {
        case QISA_DTYPE_F16:
          QISA_LAUNCH(cuda::widen_kernel<QISA_DTYPE_F16>, blocks, cuda::kElementwiseThreads, 0, stream_, widened_.get(),
                      w);
          break;
        case QISA_DTYPE_BF16:
          QISA_LAUNCH(cuda::widen_kernel<QISA_DTYPE_BF16>, blocks, cuda::kElementwiseThreads, 0, stream_,
                      widened_.get(), w);
          break;
        default:
          QISA_LAUNCH(cuda::widen_kernel<QISA_DTYPE_Q8_0>, blocks, cuda::kElementwiseThreads, 0, stream_,
                      widened_.get(), w);
          break;
      }
      wf = widened_.get();
    }
    if (wf) {
      const float one = 1.0f, zero = 0.0f;
      check(blas_->sgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, w.rows, R, w.cols, &one, wf, w.cols, x, ldx, &zero, y, ldy),
            "sgemm");
    }
    if (l.b || act) QISA_LAUNCH(cuda::bias_act_kernel, R, kThreads, 0, stream_, y, ldy, l.b, w.rows, act);
  }

  void quantum(const DeviceLayer& L, size_t layer, const float* u, int R) {
    const DeviceQuantum& q = L.quantum;
    QISA_LAUNCH(cuda::encode_kernel, R, kThreads, 0, stream_, psi_.get(), u, d_, q.D, q.normalized);
    linear(q.stacked, psi_.get(), q.D, qout_.get(), q.stacked.out(), R, 0);
    float* const* dest = dests_.get<float*>() + dest_offset_[layer];
    const dim3 grid(static_cast<unsigned>(R), static_cast<unsigned>(q.P));
    const int width = q.stacked.out();
    if (options_.value_path == QISA_VALUE_PATH_OBSERVABLES)
      QISA_LAUNCH(cuda::observables_kernel, grid, kThreads, 0, stream_, dest, d_, qout_.get(), width, psi_.get(), q.D,
                  hs_);
    else
      QISA_LAUNCH(cuda::pauli_kernel, grid, kThreads, 0, stream_, dest, d_, qout_.get(), width, q.D, hs_, q.x_mask,
                  q.z_mask);
  }

  // Keys, values and norms of positions [0, n) of one sequence between the
  // device cache and a saved state's layout (per layer K, V, |k|^2).
  void copy_kv(int64_t seq, int64_t n, uint8_t* host, bool to_host) {
    if (n <= 0) return;
    const auto d = static_cast<size_t>(d_), H = static_cast<size_t>(H_), len = static_cast<size_t>(n);
    auto copy = [&](float* dev, size_t bytes) {
      check(to_host ? cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, stream_)
                    : cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream_),
            "copy cache");
      host += bytes;
    };
    for (int64_t l = 0; l < model_.config.n_layer; ++l) {
      const size_t at = (static_cast<size_t>(l) * layout_.n_seq + static_cast<size_t>(seq)) * layout_.n_ctx;
      copy(K_.get() + at * d, len * d * sizeof(float));
      copy(V_.get() + at * d, len * d * sizeof(float));
      copy(KN_.get() + at * H, len * H * sizeof(float));
    }
    check(cudaStreamSynchronize(stream_), "copy cache");
  }

  struct StreamDeleter {
    void operator()(CUstream_st* s) const { cudaStreamDestroy(s); }
  };
  struct HandleDeleter {
    const Cublas* blas;
    void operator()(cublasContext* h) const { blas->destroy(h); }
  };
  struct GraphExecDeleter {
    void operator()(CUgraphExec_st* g) const { cudaGraphExecDestroy(g); }
  };
  struct Graph {
    int seen = 0;
    std::unique_ptr<CUgraphExec_st, GraphExecDeleter> exec;
  };

  const Model& model_;
  std::shared_ptr<DeviceModel> w_;
  EngineOptions options_;
  int64_t max_rows_;
  int d_ = 0, H_ = 0, hs_ = 0;
  const Cublas* blas_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  // Released in reverse order: graphs and the handle before the stream they
  // run on, the handle before its workspace.
  std::unique_ptr<CUstream_st, StreamDeleter> owned_stream_;
  DeviceBuffer workspace_;
  std::unique_ptr<cublasContext, HandleDeleter> owned_handle_{nullptr, HandleDeleter{nullptr}};
  CacheLayout layout_{};
  DeviceBuffer x_, u_, q_, k_, v_, att_, tmp_, hidden_, psi_, qout_, logits_, argmax_, widened_, K_, V_, KN_, rows_,
      dests_;
  PinnedBuffer host_rows_, host_logits_, host_argmax_;
  std::vector<size_t> dest_offset_;
  std::vector<int32_t> slots_;
  bool graphs_;
  std::string graph_off_why_;
  std::map<std::tuple<int, int, bool>, Graph> graphs_by_shape_;
};

}  // namespace

namespace {

// Without any NVIDIA driver the CUDA runtime says its "driver version is
// insufficient", which reads as "upgrade your driver": say what is so.
bool driver_installed() {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib != nullptr) dlclose(lib);
  return lib != nullptr;
}

}  // namespace

bool cuda_usable(std::string* why) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    if (why) {
      if (e == cudaSuccess)
        *why = "no CUDA device";
      else if (!driver_installed())
        *why = "no CUDA driver found (libcuda.so.1 is not installed)";
      else
        *why = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    }
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
  return std::make_unique<CudaEngine>(model, std::move(weights), options, max_sequences, prop.major);
}

}  // namespace qisa
