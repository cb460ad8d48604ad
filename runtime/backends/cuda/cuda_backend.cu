// The CUDA backend: the forward pass's operations (runtime/forward.h) as
// kernels on one stream, tested against the reference backend (tests/gpu,
// tests/test_ops_parity.cpp on the emulated device): products through
// cuBLAS (y = x W^T with W row-major [out, in]) or, for few rows of f16,
// bf16 and Q8_0 weights, a kernel that reads them as stored; everything else
// in cuda_kernels.cuh. Weights are uploaded once per model and value path
// (DeviceSlots "cuda/...") in their stored types; per context: a stream, a cuBLAS handle
// with its own workspace, scratch for max_rows rows and the KV cache. Per
// forward call one host-to-device copy (the rows) and one device-to-host copy
// (the requested logits, or only their argmax), replayed from a CUDA Graph
// once a shape repeats.
#ifndef QISA_CUDA_EMULATION
#include <cuda_runtime.h>
#endif

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "backends/quantum_stack.h"
#include "cublas_loader.h"
#include "cuda_backend.h"
#include "cuda_kernels.cuh"
#include "dtype.h"
#include "error.h"
#include "forward.h"
#include "registry.h"

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
  bool f32_activations = false;  // the quantum layers' unitaries: never rounded (docs/format.md)
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
  std::vector<int> gaussian;  // per head
  std::vector<float> scale;
  std::vector<Sparsity> sparsity;
  DeviceQuantum quantum;
};

struct DeviceModel {
  int device = 0;
  std::vector<DeviceBuffer> owned;
  StoredMatrix tok, pos;
  std::vector<DeviceLinear> linears;                         // by WeightIds; w.data == nullptr where quantum
  std::vector<std::pair<const float*, const float*>> norms;  // by WeightIds
  std::vector<DeviceLayer> layers;
  size_t bytes = 0;
  size_t max_widened = 0;       // elements of the largest non-f32 matrix: scratch for many-row products
  size_t max_rounded_cols = 0;  // the widest input of a matrix whose products round the activations

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
    if (dtype_traits(dtype).rounds_activations) max_rounded_cols = std::max(max_rounded_cols, cols);
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
  for (const Linear* l : linears_by_id(m)) {
    // A tied LM head is the token embedding already uploaded.
    if (c.tied_lm_head && l == &m.lm_head)
      dm->linears.push_back({dm->tok, dm->upload_vector(l->bias)});
    else
      dm->linears.push_back(dm->linear(*l));
  }
  for (const auto& [w, b] : norms_by_id(m)) dm->norms.emplace_back(dm->upload_vector(w), dm->upload_vector(b));
  for (const Layer& L : m.layers) {
    DeviceLayer dl{};
    std::vector<const QuantumProjection*> qp;
    for (size_t h = 0; h < L.heads.size(); ++h) {
      const Head& hd = L.heads[h];
      dl.gaussian.push_back(attention_kind(hd.kind).score == Score::Gaussian);
      dl.scale.push_back(hd.scale);
      dl.sparsity.push_back(hd.sparsity);
      for (Role role : kAllRoles) {
        if (!hd.qp(role)) continue;
        qp.push_back(&*hd.qp(role));
        dl.quantum.dest.emplace_back(static_cast<int>(role), static_cast<int>(h));
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
                              static_cast<size_t>(stacked.cols)),
                   nullptr, true};
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

class CudaBackend final : public Backend, public Ops {
 public:
  CudaBackend(const Model& model, std::shared_ptr<DeviceModel> weights, const BackendOptions& o, int cc_major)
      : model_(model), w_(std::move(weights)), options_(o), max_rows_(o.max_rows), graphs_(graphs_wanted()) {
    const int64_t max_seq = o.max_sequences;
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
    for (Buf b : {Buf::X, Buf::U, Buf::Q, Buf::K, Buf::V, Buf::Att, Buf::Tmp})
      bufs_[static_cast<size_t>(b)] = DeviceBuffer(R * d * sizeof(float));
    bufs_[static_cast<size_t>(Buf::Hidden)] = DeviceBuffer(R * c.n_ff * sizeof(float));
    psi_ = DeviceBuffer(R * static_cast<size_t>(D) * sizeof(float));
    qout_ = DeviceBuffer(R * static_cast<size_t>(width) * sizeof(float));
    logits_ = DeviceBuffer(R * c.vocab_size * sizeof(float));
    argmax_ = DeviceBuffer(R * sizeof(int32_t));
    widened_ = DeviceBuffer(w_->max_widened * sizeof(float));
    rounded_ = DeviceBuffer(R * w_->max_rounded_cols * sizeof(float));
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
        float* base = buf(role == 0 ? Buf::Q : role == 1 ? Buf::K : Buf::V);
        dests.push_back(base + head * hs_);
      }
    }
    dests_ = DeviceBuffer(std::max<size_t>(1, dests.size()) * sizeof(float*));
    if (!dests.empty())
      check(cudaMemcpy(dests_.get<float*>(), dests.data(), dests.size() * sizeof(float*), cudaMemcpyHostToDevice),
            "upload");
  }

  ~CudaBackend() override = default;

  BackendCaps caps() const override {
    BackendCaps c;
    c.device_argmax = true;
    return c;
  }
  int64_t max_rows() const override { return max_rows_; }

  std::string state() const override {
    return graphs_ ? strf("graphs: %d captured", captured())
                   : strf("graphs: off (%s)", graph_off_why_.empty() ? "QISA_CUDA_GRAPHS=0" : graph_off_why_.c_str());
  }

  void forward(std::span<const Row> rows, float* logits, int32_t* argmax) override {
    const int m = stage_host(rows);
    run(static_cast<int>(rows.size()), m, logits == nullptr);
    const size_t V = model_.config.vocab_size;
    for (int i = 0; i < m; ++i) {
      const auto slot = static_cast<size_t>(slots_[static_cast<size_t>(i)]);
      if (logits)
        std::memcpy(logits + slot * V, host_logits_.get<float>() + i * V, V * sizeof(float));
      else
        argmax[slot] = host_argmax_.get<int32_t>()[i];
    }
  }

  // Run directly (never captured): the download waits for the stream.
  void probe(std::span<const Row> rows, const ProbePoint& p) override {
    if (rows.empty()) return;
    stage(rows);
    run_forward(model_, *this, R_, &p);
    check(cudaGetLastError(), "kernel launch");
    check(cudaStreamSynchronize(stream_), "forward");
  }

  void save_kv(int64_t seq, int64_t n, uint8_t* out) override { copy_kv(seq, n, out, true); }
  void load_kv(int64_t seq, int64_t n, const uint8_t* in) override { copy_kv(seq, n, const_cast<uint8_t*>(in), false); }

  // ---- operations of the forward pass, enqueued on the stream ----

  void embed(Buf out) override {
    QISA_LAUNCH(cuda::embed_kernel, R_, kThreads, 0, stream_, buf(out), drows(), w_->tok, w_->pos, d_);
  }

  void layernorm(Buf out, Buf in, int64_t norm, int64_t rows) override {
    const auto& [w, b] = w_->norms[static_cast<size_t>(norm)];
    QISA_LAUNCH(cuda::layernorm_kernel, static_cast<int>(rows), kThreads, 0, stream_, buf(out), buf(in), w, b, d_,
                model_.config.ln_eps);
  }

  void linear(int64_t id, Buf in, Buf out, int64_t col, Act act, int64_t rows) override {
    const DeviceLinear& l = w_->linears[static_cast<size_t>(id)];
    const int code = act == Act::Relu ? 1 : act == Act::Gelu ? 2 : 0;
    gemm(l, buf(in), width(in), buf(out) + col, width(out), static_cast<int>(rows), code);
  }

  void quantum(int64_t layer, Buf in) override {
    const DeviceLayer& L = w_->layers[static_cast<size_t>(layer)];
    if (L.quantum.P > 0) quantum(L, static_cast<size_t>(layer), buf(in), R_);
  }

  void kv_write(int64_t layer, Buf k, Buf v) override {
    QISA_LAUNCH(cuda::kv_write_kernel, R_, kThreads, 0, stream_, K_.get(), V_.get(), KN_.get(), layout_,
                static_cast<int>(layer), drows(), buf(k), buf(v), hs_);
  }

  void attention(int64_t layer, Buf q, Buf out) override {
    const DeviceLayer& L = w_->layers[static_cast<size_t>(layer)];
    for (int h = 0; h < H_; ++h) {
      QISA_LAUNCH(cuda::attention_kernel, R_, kThreads, model_.config.n_ctx * sizeof(float), stream_, buf(out), buf(q),
                  K_.get(), V_.get(), KN_.get(), layout_, static_cast<int>(layer), drows(), h, hs_,
                  L.gaussian[static_cast<size_t>(h)], L.scale[static_cast<size_t>(h)],
                  static_cast<int>(L.sparsity[static_cast<size_t>(h)].top_k),
                  static_cast<int>(L.sparsity[static_cast<size_t>(h)].window));
    }
  }

  void add(Buf out, Buf a, Buf b) override {
    const size_t n = static_cast<size_t>(R_) * d_;
    QISA_LAUNCH(cuda::add_kernel, elementwise_blocks(n), cuda::kElementwiseThreads, 0, stream_, buf(out), buf(a),
                buf(b), n);
  }

  int64_t gather_logits(Buf out, Buf in) override {
    if (m_ > 0) {
      const int* dgather = reinterpret_cast<const int*>(drows() + R_);
      QISA_LAUNCH(cuda::gather_kernel, m_, kThreads, 0, stream_, buf(out), buf(in), dgather, d_);
    }
    return m_;
  }

  void lm_head(Buf in, int64_t m) override {
    const int V = static_cast<int>(model_.config.vocab_size);
    gemm(w_->linears[static_cast<size_t>(WeightIds(model_.config).lm_head())], buf(in), d_, logits_.get(), V,
         static_cast<int>(m), 0);
    if (argmax_wanted_) {
      QISA_LAUNCH(cuda::argmax_kernel, static_cast<int>(m), kThreads, 0, stream_, argmax_.get<int32_t>(), logits_.get(),
                  V);
      check(cudaMemcpyAsync(host_argmax_.get(), argmax_.get(), static_cast<size_t>(m) * sizeof(int32_t),
                            cudaMemcpyDeviceToHost, stream_),
            "copy argmax");
    } else {
      check(cudaMemcpyAsync(host_logits_.get(), logits_.get(), static_cast<size_t>(m) * V * sizeof(float),
                            cudaMemcpyDeviceToHost, stream_),
            "copy logits");
    }
  }

 private:
  // Rows and the gather list of rows that want logits into the pinned
  // buffer the forward pass copies from; returns how many want logits.
  int stage_host(std::span<const Row> rows) {
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

  // One forward pass of R staged rows (m of them want logits) on the
  // stream: the rows' copy, then the forward pass's operations.
  void enqueue(int R, int m, bool argmax) {
    check(cudaMemcpyAsync(rows_.get(), host_rows_.get(), R * sizeof(Row) + m * sizeof(int), cudaMemcpyHostToDevice,
                          stream_),
          "copy rows");
    R_ = R;
    m_ = m;
    argmax_wanted_ = argmax;
    run_forward(model_, *this, R);
  }

  void stage(std::span<const Row> rows) override {
    const int m = stage_host(rows);
    R_ = static_cast<int>(rows.size());
    m_ = m;
    argmax_wanted_ = false;
    check(cudaMemcpyAsync(rows_.get(), host_rows_.get(), R_ * sizeof(Row) + m * sizeof(int), cudaMemcpyHostToDevice,
                          stream_),
          "copy rows");
    check(cudaStreamSynchronize(stream_), "copy rows");
  }
  void upload(Buf b, const float* host, int64_t rows) override {
    check(cudaMemcpyAsync(buf(b), host, static_cast<size_t>(rows) * width(b) * sizeof(float), cudaMemcpyHostToDevice,
                          stream_),
          "upload");
    check(cudaStreamSynchronize(stream_), "upload");
  }
  void download(Buf b, float* host, int64_t rows) override {
    check(cudaMemcpyAsync(host, buf(b), static_cast<size_t>(rows) * width(b) * sizeof(float), cudaMemcpyDeviceToHost,
                          stream_),
          "download");
    check(cudaStreamSynchronize(stream_), "download");
  }

  const Row* drows() const { return rows_.get<Row>(); }
  float* buf(Buf b) const { return bufs_[static_cast<size_t>(b)].get(); }
  int width(Buf b) const { return b == Buf::Hidden ? static_cast<int>(model_.config.n_ff) : d_; }

  // y[R, out] (row stride ldy) = x[R, in] W^T (+ bias, activation). f32
  // weights: SGEMM. Others: few rows read W as stored (gemv_kernel), many
  // rows widen W into scratch once and run one SGEMM.
  void gemm(const DeviceLinear& l, const float* x, int ldx, float* y, int ldy, int R, int act) {
    const StoredMatrix& w = l.w;
    const float* wf = reinterpret_cast<const float*>(w.data);
    if (dtype_traits(w.dtype).rounds_activations && !l.f32_activations) {  // the rows as the type's products use them
      const size_t n = static_cast<size_t>(R) * static_cast<size_t>((w.cols + 31) / 32);
      QISA_LAUNCH(cuda::round_activations_kernel, elementwise_blocks(n), cuda::kElementwiseThreads, 0, stream_,
                  rounded_.get(), x, ldx, R, w.cols);
      x = rounded_.get();
      ldx = w.cols;
    }
    if (w.dtype != QISA_DTYPE_F32 && R <= kGemvRows) {
      const int blocks = (w.rows + kThreads / 32 - 1) / (kThreads / 32);
      QISA_LAUNCH(cuda::gemv_for(w.dtype), blocks, kThreads, 0, stream_, y, ldy, w, x, ldx, R);
      wf = nullptr;
    } else if (w.dtype != QISA_DTYPE_F32) {
      const size_t n = static_cast<size_t>(w.rows) * w.cols;
      QISA_LAUNCH(cuda::widen_for(w.dtype), elementwise_blocks(n), cuda::kElementwiseThreads, 0, stream_,
                  widened_.get(), w);
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
    gemm(q.stacked, psi_.get(), q.D, qout_.get(), q.stacked.out(), R, 0);
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
  BackendOptions options_;
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
  std::array<DeviceBuffer, kBufs> bufs_;
  DeviceBuffer psi_, qout_, logits_, argmax_, widened_, rounded_, K_, V_, KN_, rows_, dests_;
  PinnedBuffer host_rows_, host_logits_, host_argmax_;
  std::vector<size_t> dest_offset_;
  std::vector<int32_t> slots_;
  int R_ = 0, m_ = 0;  // of the pass being enqueued
  bool argmax_wanted_ = false;
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

namespace {

std::unique_ptr<Backend> make_cuda_backend(const Model& model, DeviceSlots& slots, const BackendOptions& options,
                                           std::string* info) {
  check(cudaSetDevice(0), "cudaSetDevice");
  const bool observables = options.value_path == QISA_VALUE_PATH_OBSERVABLES;
  std::shared_ptr<DeviceModel> weights = slots.get<DeviceModel>(
      observables ? "cuda/observables" : "cuda/unitary", [&] { return upload_model(model, options.value_path); });
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, weights->device), "cudaGetDeviceProperties");
  *info = strf("cuda: %s (device %d, weights %zu bytes)", prop.name, weights->device, weights->bytes);
  return std::make_unique<CudaBackend>(model, std::move(weights), options, prop.major);
}

}  // namespace

extern const BackendEntry kCudaBackend = {
    "cuda", QISA_BACKEND_CUDA, QISA_ENGINE_FAST, 10, cuda_usable, make_cuda_backend,
};

}  // namespace qisa
