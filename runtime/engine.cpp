#include "engine.h"

#include <algorithm>
#include <cstring>

#include <omp.h>

#include "dtype.h"
#include "error.h"
#include "fast_ops.h"
#include "reference_ops.h"

namespace qisa {

// Rows x width x window from which attention is split over threads.
constexpr int64_t kParallelAttention = int64_t{1} << 16;

Engine::Engine(const Model& model, const EngineOptions& options)
    : model_(model),
      options_(options),
      weights_(model, options.engine == QISA_ENGINE_REFERENCE),
      max_rows_(options.max_rows) {
  const ModelConfig& c = model.config;
  d_ = c.n_embd;
  hs_ = c.head_size();
  n_ff_ = c.n_ff;
  if (options.engine == QISA_ENGINE_FAST) dnnl_ = make_dnnl_context();
  layers_.resize(c.n_layer);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = model.layers[l];
    LayerPlan& plan = layers_[l];
    plan.ln1_w = weights_(L.ln1_w);
    plan.ln1_b = weights_(L.ln1_b);
    plan.ln2_w = weights_(L.ln2_w);
    plan.ln2_b = weights_(L.ln2_b);
    init_linear(plan.proj, L.proj.weight, L.proj.bias);
    init_linear(plan.up, L.up.weight, L.up.bias);
    init_linear(plan.down, L.down.weight, L.down.bias);
    plan.heads.resize(L.heads.size());
    for (size_t h = 0; h < L.heads.size(); ++h) {
      const Head& src = L.heads[h];
      HeadPlan& hp = plan.heads[h];
      hp.kind = src.kind;
      hp.scale = src.scale;
      if (src.q.weight) init_linear(hp.q, src.q.weight, src.q.bias);
      if (src.k.weight) init_linear(hp.k, src.k.weight, src.k.bias);
      if (src.v.weight) init_linear(hp.v, src.v.weight, src.v.bias);
    }
  }
  init_linear(lm_head_, model.lm_head.weight, model.lm_head.bias);
  const auto R = static_cast<size_t>(max_rows_);
  for (auto* buf : {&x_, &u_, &q_, &k_, &v_, &att_, &tmp_}) buf->resize(R * static_cast<size_t>(d_));
  hidden_.resize(R * static_cast<size_t>(n_ff_));
  scores_.resize(static_cast<size_t>(c.n_ctx) * static_cast<size_t>(std::max(1, options.threads)));
  logit_rows_.resize(R * static_cast<size_t>(d_));
  slot_scratch_.reserve(R);
  // Quantum projections, per layer in one QuantumLayer, writing straight
  // into their head's columns of q_, k_, v_.
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = model.layers[l];
    LayerPlan& plan = layers_[l];
    std::vector<const QuantumProjection*> projections;
    for (size_t h = 0; h < L.heads.size(); ++h) {
      const Head& src = L.heads[h];
      const std::pair<const std::optional<QuantumProjection>*, float*> roles[] = {
          {&src.qq, q_.data()}, {&src.qk, k_.data()}, {&src.qv, v_.data()}};
      for (const auto& [proj, base] : roles) {
        if (!*proj) continue;
        projections.push_back(&**proj);
        plan.quantum_dest.push_back(base + static_cast<int64_t>(h) * hs_);
      }
    }
    if (!projections.empty()) {
      plan.quantum = std::make_unique<QuantumLayer>(std::move(projections), d_, hs_, options.value_path, options.engine,
                                                    dnnl_.get(), max_rows_, &scratch_);
    }
  }
}

Engine::~Engine() = default;

void Engine::init_linear(LinearOp& l, const TensorView* w, const TensorView* b) {
  l.init(MatrixRef::of(*w), weights_(w), weights_(b), static_cast<int64_t>(w->shape[1]),
         static_cast<int64_t>(w->shape[0]), dnnl_.get(), &scratch_);
}

void Engine::layernorm(float* out, const float* x, const float* w, const float* b, int64_t R) {
  const ModelConfig& c = model_.config;
  if (options_.engine == QISA_ENGINE_REFERENCE)
    ref::layernorm(out, x, w, b, R, d_, c.ln_eps);
  else
    fast::layernorm(out, x, w, b, R, d_, c.ln_eps);
}

void Engine::forward(std::span<const Row> rows, KvCache& cache, float* logits) {
  const ModelConfig& c = model_.config;
  const auto R = static_cast<int64_t>(rows.size());
  if (R > max_rows_)
    fail(QISA_ERR_INTERNAL, "engine: %lld rows > %lld", static_cast<long long>(R), static_cast<long long>(max_rows_));
  const int64_t d = d_, H = c.n_head;
  const bool pre = c.ln_placement == QISA_LN_PRE;
  for (int64_t r = 0; r < R; ++r) {  // x = tok_emb[token] + pos_emb[pos], rows as stored
    const Row& row = rows[static_cast<size_t>(r)];
    float* x = x_.data() + r * d;
    float* p = tmp_.data();
    dequantize_row(model_.tok_emb->dtype, model_.tok_emb->row(static_cast<uint64_t>(row.token)), d, x);
    dequantize_row(model_.pos_emb->dtype, model_.pos_emb->row(static_cast<uint64_t>(row.pos)), d, p);
    for (int64_t i = 0; i < d; ++i) x[i] += p[i];
  }
  for (size_t l = 0; l < layers_.size(); ++l) {
    LayerPlan& plan = layers_[l];
    const float* u = x_.data();
    if (pre) {
      layernorm(u_.data(), x_.data(), plan.ln1_w, plan.ln1_b, R);
      u = u_.data();
    }
    if (plan.quantum) plan.quantum->run(u, R, plan.quantum_dest.data(), d);
    for (int64_t h = 0; h < H; ++h) {  // linear q/k/v into their head's columns
      HeadPlan& hp = plan.heads[static_cast<size_t>(h)];
      const std::pair<LinearOp*, float*> lin[] = {{&hp.q, q_.data()}, {&hp.k, k_.data()}, {&hp.v, v_.data()}};
      for (const auto& [li, dest] : lin) {
        if (!li->w.data) continue;
        linear(*li, u, tmp_.data(), R);
        for (int64_t r = 0; r < R; ++r) std::memcpy(dest + r * d + h * hs_, tmp_.data() + r * hs_, hs_ * sizeof(float));
      }
    }
    const auto li = static_cast<int64_t>(l);
    for (int64_t r = 0; r < R; ++r) {  // cache keys, values, |k|^2 per head
      const Row& row = rows[static_cast<size_t>(r)];
      std::memcpy(cache.key(li, row.seq, row.pos), k_.data() + r * d, d * sizeof(float));
      std::memcpy(cache.value(li, row.seq, row.pos), v_.data() + r * d, d * sizeof(float));
      float* kn = cache.key_norm(li, row.seq, row.pos);
      for (int64_t h = 0; h < H; ++h) {
        float s = 0.0f;
        for (int64_t i = 0; i < hs_; ++i) s += k_[r * d + h * hs_ + i] * k_[r * d + h * hs_ + i];
        kn[h] = s;
      }
    }
    // Attention over positions 0..pos of each row's sequence; rows split
    // over the context's threads when there is enough of it (batches,
    // prefills), each thread with its own scores.
    auto attend = [&](int64_t r, float* scores) {
      const Row& row = rows[static_cast<size_t>(r)];
      for (int64_t h = 0; h < H; ++h) {
        const HeadPlan& hp = plan.heads[static_cast<size_t>(h)];
        (options_.engine == QISA_ENGINE_REFERENCE ? ref::attention_row : fast::attention_row)(
            att_.data() + r * d + h * hs_, q_.data() + r * d + h * hs_, cache.key(li, row.seq, 0) + h * hs_,
            cache.key_norm(li, row.seq, 0) + h, cache.value(li, row.seq, 0) + h * hs_, row.pos + 1, hs_, d, d, H,
            hp.kind != QISA_ATTENTION_CSA, hp.scale, scores);
      }
    };
    const int threads = std::min(options_.threads, omp_get_max_threads());
    if (options_.engine == QISA_ENGINE_FAST && threads > 1 && R >= 2 * threads &&
        R * d * c.n_ctx >= kParallelAttention) {
#pragma omp parallel for schedule(static) num_threads(threads)
      for (int64_t r = 0; r < R; ++r) attend(r, scores_.data() + static_cast<size_t>(omp_get_thread_num()) * c.n_ctx);
    } else {
      for (int64_t r = 0; r < R; ++r) attend(r, scores_.data());
    }
    linear(plan.proj, att_.data(), tmp_.data(), R);
    auto activation = [&](float* v, int64_t n) {
      if (c.activation == QISA_ACTIVATION_RELU)
        ref::relu(v, n);
      else
        ref::gelu(v, n);
    };
    if (pre) {
      for (int64_t i = 0; i < R * d; ++i) x_[i] += tmp_[i];
      layernorm(u_.data(), x_.data(), plan.ln2_w, plan.ln2_b, R);
      linear(plan.up, u_.data(), hidden_.data(), R);
      activation(hidden_.data(), R * n_ff_);
      linear(plan.down, hidden_.data(), tmp_.data(), R);
      for (int64_t i = 0; i < R * d; ++i) x_[i] += tmp_[i];
    } else {  // post-LN (GPT-1): x = LN1(x + attn(x)); x = LN2(x + mlp(x))
      for (int64_t i = 0; i < R * d; ++i) u_[i] = x_[i] + tmp_[i];
      layernorm(x_.data(), u_.data(), plan.ln1_w, plan.ln1_b, R);
      linear(plan.up, x_.data(), hidden_.data(), R);
      activation(hidden_.data(), R * n_ff_);
      linear(plan.down, hidden_.data(), tmp_.data(), R);
      for (int64_t i = 0; i < R * d; ++i) u_[i] = x_[i] + tmp_[i];
      layernorm(x_.data(), u_.data(), plan.ln2_w, plan.ln2_b, R);
    }
  }
  // LM head for the rows that want logits, gathered so they share one GEMM.
  int64_t m = 0;
  std::vector<int32_t>& slots = slot_scratch_;
  slots.clear();
  for (int64_t r = 0; r < R; ++r) {
    const Row& row = rows[static_cast<size_t>(r)];
    if (row.logits_slot < 0) continue;
    std::memcpy(tmp_.data() + m * d, x_.data() + r * d, d * sizeof(float));
    slots.push_back(row.logits_slot);
    ++m;
  }
  if (m == 0) return;
  layernorm(logit_rows_.data(), tmp_.data(), weights_(model_.lnf_w), weights_(model_.lnf_b), m);
  const int64_t V = c.vocab_size;
  const bool contiguous = slots.back() - slots.front() == m - 1 && std::is_sorted(slots.begin(), slots.end());
  if (contiguous) {
    linear(lm_head_, logit_rows_.data(), logits + static_cast<int64_t>(slots.front()) * V, m);
    return;
  }
  for (int64_t i = 0; i < m; ++i) linear(lm_head_, logit_rows_.data() + i * d, logits + slots[i] * V, 1);
}

}  // namespace qisa
