// The CPU backend: the forward pass's arithmetic on oneDNN (large f32
// products), this folder's kernels (few rows, stored types, Pauli sums) and
// vectorized row operations, with rows of many sequences sharing one
// product per weight and attention split over the context's threads.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/host_backend.h"
#include "backends/ref/reference_ops.h"
#include "backends/weights.h"
#include "cpu_kernels.h"
#include "dtype.h"
#include "error.h"
#include "fast_ops.h"
#include "forward.h"
#include "linear_op.h"
#include "matmul_dnnl.h"
#include "omp_threads.h"
#include "quantum_layer.h"
#include "registry.h"
#include "row_split.h"

namespace qisa {

namespace {

// Rows x width x window from which attention is split over threads.
constexpr int64_t kParallelAttention = int64_t{1} << 16;

class CpuBackend final : public HostBackend {
 public:
  CpuBackend(const Model& model, const BackendOptions& o)
      : HostBackend(model, o, "cpu"),
        weights_(model, false),
        dnnl_(make_dnnl_context()),
        threads_(measure_thread_policy(o.threads)) {
    // Primitives are made under the context's thread count (omp_threads.h).
    const OmpThreadsScope omp(std::max(1, o.threads));
    scores_.resize(static_cast<size_t>(model.config.n_ctx) * static_cast<size_t>(std::max(1, o.threads)));
    positions_.resize(scores_.size());
    // The MLP's first product also has oneDNN primitives with the model's
    // activation fused in (no second pass over the hidden rows).
    const WeightIds ids(model.config);
    const PostOp act = model.config.activation == QISA_ACTIVATION_RELU ? PostOp::Relu : PostOp::GeluErf;
    for (const Linear* l : linears_by_id(model)) {
      const auto id = static_cast<int64_t>(linears_.size());
      linears_.emplace_back();
      if (!l->weight) continue;
      const TensorView& w = *l->weight;
      const bool up = id < ids.lm_head() && id % ids.per_layer() == ids.up(0);
      linears_.back().init(MatrixRef::of(w), weights_(l->bias), static_cast<int64_t>(w.shape[1]),
                           static_cast<int64_t>(w.shape[0]), threads_, dnnl_.get(), &scratch_, true,
                           up ? act : PostOp::None);
    }
    for (const auto& [w, b] : norms_by_id(model)) norms_.push_back({weights_(w), weights_(b)});
    // Quantum projections, per layer in one QuantumLayer, writing straight
    // into their head's columns of Q, K, V.
    for (const Layer& L : model.layers) {
      quantum_.emplace_back();
      std::vector<const QuantumProjection*> projections;
      std::vector<float*> dest;
      for (size_t h = 0; h < L.heads.size(); ++h) {
        for (Role r : kAllRoles) {
          if (!L.heads[h].qp(r)) continue;
          projections.push_back(&*L.heads[h].qp(r));
          dest.push_back(buf(role_buf(r)).data() + static_cast<int64_t>(h) * hs_);
        }
      }
      if (projections.empty()) continue;
      quantum_.back().layer = std::make_unique<QuantumLayer>(std::move(projections), d_, hs_, o.value_path, threads_,
                                                             dnnl_.get(), o.max_rows, &scratch_);
      quantum_.back().dest = std::move(dest);
    }
  }

  // ---- operations of the forward pass ----

  // Rows split over the threads, each part with its own rows of cols_ for
  // the position's embedding.
  void embed(Buf out) override {
    split_rows(static_cast<int64_t>(rows_.size()), d_, threads_, [&](int64_t r0, int64_t n) {
      float* x = buf(out).data() + r0 * d_;
      float* p = cols_.data() + r0 * d_;
      for (int64_t r = r0; r < r0 + n; ++r, x += d_) {
        const Row& row = rows_[static_cast<size_t>(r)];
        dequantize_row(model_.tok_emb->dtype, model_.tok_emb->row(static_cast<uint64_t>(row.token)), d_, x);
        dequantize_row(model_.pos_emb->dtype, model_.pos_emb->row(static_cast<uint64_t>(row.pos)), d_, p);
        for (int64_t i = 0; i < d_; ++i) x[i] += p[i];
      }
    });
  }

  void layernorm(Buf out, Buf in, int64_t norm, int64_t rows) override {
    const Norm& n = norms_[static_cast<size_t>(norm)];
    float* o = buf(out).data();
    const float* x = buf(in).data();
    split_rows(rows, d_, threads_, [&](int64_t r0, int64_t count) {
      cpu_kernels().layernorm(o + r0 * d_, x + r0 * d_, n.w, n.b, count, d_, model_.config.ln_eps);
    });
  }

  void add(Buf outb, Buf ab, Buf bb) override {
    split_rows(static_cast<int64_t>(rows_.size()), d_, threads_,
               [&](int64_t r0, int64_t count) { add_rows(outb, ab, bb, r0, count); });
  }

  // As the host backend's, |k|^2 by the kernel set's dot and the rows split
  // over the threads (a serial loop here left the second thread waiting in
  // batch forwards).
  void kv_write(int64_t l, Buf kb, Buf vb) override {
    const DotKernel dot = cpu_kernels().dot;
    split_rows(static_cast<int64_t>(rows_.size()), 2 * d_, threads_, [&](int64_t r0, int64_t n) {
      write_kv_rows(l, kb, vb, r0, n, [dot](const float* k, int64_t m) { return dot(k, k, m); });
    });
  }

  void linear(int64_t id, Buf in, Buf out, int64_t col, Act act, int64_t rows) override {
    LinearOp& l = linears_[static_cast<size_t>(id)];
    if (col == 0) {  // whole rows: the activation with the product (fused into oneDNN where it can be)
      const PostOp post = act == Act::Relu ? PostOp::Relu : act == Act::Gelu ? PostOp::GeluErf : PostOp::None;
      into_columns(out, col, l.out, Act::None, rows, [&](float* y) { l.run(buf(in).data(), y, rows, post); });
      return;
    }
    into_columns(out, col, l.out, act, rows, [&](float* y) { l.run(buf(in).data(), y, rows); });
  }

  void quantum(int64_t layer, Buf in) override {
    Quantum& q = quantum_[static_cast<size_t>(layer)];
    if (q.layer) q.layer->run(buf(in).data(), static_cast<int64_t>(rows_.size()), q.dest.data(), d_);
  }

  void attention(int64_t l, Buf qb, Buf outb) override {
    const ModelConfig& c = model_.config;
    const int64_t H = c.n_head, R = static_cast<int64_t>(rows_.size());
    const Layer& L = model_.layers[static_cast<size_t>(l)];
    const float* q = buf(qb).data();
    float* out = buf(outb).data();
    // Attention over positions 0..pos of each row's sequence; rows split
    // over the threads when there is enough of it (batches, prefills), each
    // thread with its own scores.
    auto attend = [&](int64_t r, int thread) {
      const Row& row = rows_[static_cast<size_t>(r)];
      const size_t at = static_cast<size_t>(thread) * c.n_ctx;
      for (int64_t h = 0; h < H; ++h) {
        fast::attention_row(out + r * d_ + h * hs_, q + r * d_ + h * hs_, kv_.key(l, row.seq, 0) + h * hs_,
                            kv_.key_norm(l, row.seq, 0) + h, kv_.value(l, row.seq, 0) + h * hs_, row.pos + 1, hs_, d_,
                            d_, H, L.heads[static_cast<size_t>(h)].rule(), scores_.data() + at, positions_.data() + at);
      }
    };
    const int threads = options_.threads;
    if (threads > 1 && R >= 2 * threads && threads_.split(R * d_ * c.n_ctx, kParallelAttention)) {
#pragma omp parallel for schedule(static) num_threads(threads)
      for (int64_t r = 0; r < R; ++r) attend(r, omp_get_thread_num());
    } else {
      for (int64_t r = 0; r < R; ++r) attend(r, 0);
    }
  }

  void lm_head(Buf inb, int64_t m) override {
    LinearOp& head = linears_[static_cast<size_t>(WeightIds(model_.config).lm_head())];
    const float* in = buf(inb).data();
    const int64_t V = model_.config.vocab_size;
    // Slots in order: one product straight into the caller's logits.
    if (slots_.back() - slots_.front() == m - 1 && std::is_sorted(slots_.begin(), slots_.end())) {
      head.run(in, logits_ + static_cast<int64_t>(slots_.front()) * V, m);
      return;
    }
    for (int64_t i = 0; i < m; ++i) head.run(in + i * d_, logits_ + slots_[static_cast<size_t>(i)] * V, 1);
  }

 private:
  // oneDNN's OpenMP runtime reads the calling thread's thread count.
  void before_forward() override {
    omp_set_num_threads(options_.threads);
  }

  struct Norm {
    const float *w, *b;
  };
  struct Quantum {
    std::unique_ptr<QuantumLayer> layer;  // null when no head of the layer is quantum-inspired
    std::vector<float*> dest;             // per projection: its first output column
  };

  F32Weights weights_;  // vectors as f32; matrices stay as stored
  DnnlContextPtr dnnl_;
  ThreadPolicy threads_;  // the context's threads and when a split pays (measured here)
  LinearScratch scratch_;
  std::vector<LinearOp> linears_;    // by WeightIds
  std::vector<Norm> norms_;          // by WeightIds
  std::vector<Quantum> quantum_;     // per layer
  std::vector<float> scores_;        // per thread: one window of attention scores
  std::vector<uint32_t> positions_;  // per thread: the positions a sparse head keeps
};

}  // namespace

extern const BackendEntry kCpuBackend = {
    "cpu",
    QISA_BACKEND_CPU,
    QISA_ENGINE_FAST,
    0,
    [](std::string*) { return true; },
    [](const Model& m, DeviceSlots&, const BackendOptions& o, std::string*) -> std::unique_ptr<Backend> {
      return std::make_unique<CpuBackend>(m, o);
    },
};

}  // namespace qisa
