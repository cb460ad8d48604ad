#include "engine.h"

#include <algorithm>
#include <cstring>

#include "dtype.h"
#include "error.h"
#include "reference_ops.h"

namespace qisa {

namespace {

// Re(O'_k) = Re(U^dag P_k U) for a model stored without observables.
void observables_from_unitary(const QuantumProjection& p, const float* u_re, const float* u_im, float* out) {
  const int64_t D = int64_t{1} << p.n_qubits;
  std::vector<cplx> col(static_cast<size_t>(D)), pcol(static_cast<size_t>(D));
  for (size_t k = 0; k < p.paulis.size(); ++k) {
    for (int64_t c = 0; c < D; ++c) {
      for (int64_t r = 0; r < D; ++r) col[static_cast<size_t>(r)] = cplx(u_re[r * D + c], u_im[r * D + c]);
      apply_pauli(p.paulis[k], col, pcol);
      for (int64_t a = 0; a < D; ++a) {
        cplx acc = 0.0;
        for (int64_t i = 0; i < D; ++i) acc += cplx(u_re[i * D + a], -u_im[i * D + a]) * pcol[static_cast<size_t>(i)];
        out[(static_cast<int64_t>(k) * D + a) * D + c] = static_cast<float>(acc.real());
      }
    }
  }
}

}  // namespace

Engine::Engine(const Model& model, const EngineOptions& options)
    : model_(model), options_(options), weights_(model), max_rows_(options.max_rows) {
  const ModelConfig& c = model.config;
  d_ = c.n_embd;
  hs_ = c.head_size();
  n_ff_ = c.n_ff;
  if (options.engine == QISA_ENGINE_FAST) dnnl_ = make_dnnl_context();
  if (model.n_qubits) D_ = int64_t{1} << model.n_qubits;
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
      auto add = [&](const std::optional<QuantumProjection>& p) {
        if (!p) return -1;
        plan.projections.push_back(&*p);
        return static_cast<int>(plan.projections.size() - 1);
      };
      hp.qq = add(src.qq);
      hp.qk = add(src.qk);
      hp.qv = add(src.qv);
    }
    init_quantum(plan);
    max_proj_ = std::max<int64_t>(max_proj_, static_cast<int64_t>(plan.projections.size()));
  }
  init_linear(lm_head_, model.lm_head.weight, model.lm_head.bias);

  const auto R = static_cast<size_t>(max_rows_);
  for (auto* buf : {&x_, &u_, &q_, &k_, &v_, &att_, &tmp_}) buf->resize(R * static_cast<size_t>(d_));
  hidden_.resize(R * static_cast<size_t>(n_ff_));
  psi_.resize(R * static_cast<size_t>(D_));
  size_t qrows = 0;
  for (const auto& plan : layers_) qrows = std::max(qrows, static_cast<size_t>(plan.quantum.out));
  qout_.resize(R * qrows);
  scores_.resize(c.n_ctx);
  logit_rows_.resize(R * static_cast<size_t>(d_));
  slot_scratch_.reserve(R);
}

Engine::~Engine() = default;

void Engine::init_linear(Linear& l, const TensorView* w, const TensorView* b) {
  l.w = weights_(w);
  l.b = weights_(b);
  l.out = static_cast<int64_t>(w->shape[0]);
  l.in = static_cast<int64_t>(w->shape[1]);
  if (dnnl_) l.fast = std::make_unique<DnnlLinear>(*dnnl_, l.w, l.b, l.in, l.out);
}

void Engine::init_quantum(LayerPlan& plan) {
  if (plan.projections.empty()) return;
  const int64_t D = D_, P = static_cast<int64_t>(plan.projections.size());
  plan.normalized = plan.projections[0]->encoding == Encoding::Normalized;
  for (const auto* p : plan.projections) {
    if ((p->encoding == Encoding::Normalized) != plan.normalized) {
      fail(QISA_ERR_UNSUPPORTED, "a layer mixes normalized and raw amplitude encodings");
    }
  }
  std::vector<float> re(static_cast<size_t>(D * D)), im(static_cast<size_t>(D * D));
  auto load = [&](const TensorView* t, std::vector<float>& out, int64_t row0, int64_t rows) {
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(t->dtype, t->row(static_cast<uint64_t>(row0 + r)), t->cols(), out.data() + r * D);
    }
  };
  if (options_.value_path == QISA_VALUE_PATH_OBSERVABLES) {
    plan.stacked.resize(static_cast<size_t>(P * hs_ * D * D));
    for (int64_t p = 0; p < P; ++p) {
      const QuantumProjection& q = *plan.projections[static_cast<size_t>(p)];
      float* dst = plan.stacked.data() + p * hs_ * D * D;
      if (q.observables_re) {
        for (int64_t r = 0; r < hs_ * D; ++r) {
          dequantize_row(q.observables_re->dtype, q.observables_re->row(static_cast<uint64_t>(r)), D, dst + r * D);
        }
      } else {
        load(q.unitary_re, re, 0, D);
        load(q.unitary_im, im, 0, D);
        observables_from_unitary(q, re.data(), im.data(), dst);
      }
    }
  } else {
    plan.stacked.resize(static_cast<size_t>(2 * P * D * D));
    for (int64_t p = 0; p < P; ++p) {
      const QuantumProjection& q = *plan.projections[static_cast<size_t>(p)];
      load(q.unitary_re, re, 0, D);
      load(q.unitary_im, im, 0, D);
      std::copy(re.begin(), re.end(), plan.stacked.begin() + 2 * p * D * D);
      std::copy(im.begin(), im.end(), plan.stacked.begin() + (2 * p + 1) * D * D);
    }
  }
  plan.quantum.w = plan.stacked.data();
  plan.quantum.in = D;
  plan.quantum.out = static_cast<int64_t>(plan.stacked.size()) / D;
  if (dnnl_) plan.quantum.fast = std::make_unique<DnnlLinear>(*dnnl_, plan.quantum.w, nullptr, D, plan.quantum.out);
}

// Below this many multiply-adds a oneDNN call costs more than it saves
// (measured: a 16x64 decode-step GEMM takes ~4 us through oneDNN, well under
// 1 us as a plain loop), so small products stay on the plain loop.
constexpr int64_t kDnnlMinMacs = int64_t{1} << 15;

void Engine::linear(Linear& l, const float* in, float* out, int64_t rows) {
  if (l.fast && rows * l.in * l.out >= kDnnlMinMacs) {
    l.fast->run(in, out, rows);
  } else {
    ref::linear(out, in, l.w, l.b, rows, l.in, l.out);
  }
}

// q_, k_, v_ columns of every quantum projection of the layer, from u.
void Engine::quantum_outputs(LayerPlan& plan, const float* u, int64_t R) {
  const int64_t D = D_, out = plan.quantum.out;
  ref::encode_amplitudes(psi_.data(), u, R, d_, D, plan.normalized);
  linear(plan.quantum, psi_.data(), qout_.data(), R);  // phi (or O' psi) of every projection at once
  const bool unitary = options_.value_path != QISA_VALUE_PATH_OBSERVABLES;
  for (size_t h = 0; h < plan.heads.size(); ++h) {
    const HeadPlan& hp = plan.heads[h];
    const std::pair<int, float*> roles[] = {{hp.qq, q_.data()}, {hp.qk, k_.data()}, {hp.qv, v_.data()}};
    for (const auto& [p, dest] : roles) {
      if (p < 0) continue;
      const QuantumProjection& proj = *plan.projections[static_cast<size_t>(p)];
      for (int64_t r = 0; r < R; ++r) {
        float* o = dest + r * d_ + static_cast<int64_t>(h) * hs_;
        const float* row = qout_.data() + r * out;
        if (unitary) {
          ref::pauli_values(o, row + 2 * p * D, row + (2 * p + 1) * D, D, proj.paulis.data(), hs_);
        } else {
          const float* psi = psi_.data() + r * D;
          for (int64_t k = 0; k < hs_; ++k) {  // psi^T Re(O'_k) psi
            const float* y = row + (p * hs_ + k) * D;
            float acc = 0.0f;
            for (int64_t a = 0; a < D; ++a) acc += psi[a] * y[a];
            o[k] = acc;
          }
        }
      }
    }
  }
}

void Engine::forward(std::span<const Row> rows, KvCache& cache, float* logits) {
  const ModelConfig& c = model_.config;
  const auto R = static_cast<int64_t>(rows.size());
  if (R > max_rows_) fail(QISA_ERR_INTERNAL, "engine: %lld rows > %lld", static_cast<long long>(R),
                          static_cast<long long>(max_rows_));
  const int64_t d = d_, H = c.n_head;
  const bool pre = c.ln_placement == QISA_LN_PRE;
  const float* tok = weights_(model_.tok_emb);
  const float* pos = weights_(model_.pos_emb);
  for (int64_t r = 0; r < R; ++r) {  // x = tok_emb[token] + pos_emb[pos]
    const Row& row = rows[static_cast<size_t>(r)];
    for (int64_t i = 0; i < d; ++i) x_[r * d + i] = tok[row.token * d + i] + pos[row.pos * d + i];
  }
  for (size_t l = 0; l < layers_.size(); ++l) {
    LayerPlan& plan = layers_[l];
    const float* u = x_.data();
    if (pre) {
      ref::layernorm(u_.data(), x_.data(), plan.ln1_w, plan.ln1_b, R, d, c.ln_eps);
      u = u_.data();
    }
    if (!plan.projections.empty()) quantum_outputs(plan, u, R);
    for (int64_t h = 0; h < H; ++h) {  // linear q/k/v into their head's columns
      HeadPlan& hp = plan.heads[static_cast<size_t>(h)];
      const std::pair<Linear*, float*> lin[] = {{&hp.q, q_.data()}, {&hp.k, k_.data()}, {&hp.v, v_.data()}};
      for (const auto& [li, dest] : lin) {
        if (!li->w) continue;
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
    for (int64_t r = 0; r < R; ++r) {  // attention over positions 0..pos of the row's sequence
      const Row& row = rows[static_cast<size_t>(r)];
      for (int64_t h = 0; h < H; ++h) {
        const HeadPlan& hp = plan.heads[static_cast<size_t>(h)];
        ref::attention_row(att_.data() + r * d + h * hs_, q_.data() + r * d + h * hs_,
                           cache.key(li, row.seq, 0) + h * hs_, cache.key_norm(li, row.seq, 0) + h,
                           cache.value(li, row.seq, 0) + h * hs_, row.pos + 1, hs_, d, d, H,
                           hp.kind != QISA_ATTENTION_CSA, hp.scale, scores_.data());
      }
    }
    linear(plan.proj, att_.data(), tmp_.data(), R);
    auto activation = [&](float* v, int64_t n) {
      if (c.activation == QISA_ACTIVATION_RELU) ref::relu(v, n);
      else ref::gelu(v, n);
    };
    if (pre) {
      for (int64_t i = 0; i < R * d; ++i) x_[i] += tmp_[i];
      ref::layernorm(u_.data(), x_.data(), plan.ln2_w, plan.ln2_b, R, d, c.ln_eps);
      linear(plan.up, u_.data(), hidden_.data(), R);
      activation(hidden_.data(), R * n_ff_);
      linear(plan.down, hidden_.data(), tmp_.data(), R);
      for (int64_t i = 0; i < R * d; ++i) x_[i] += tmp_[i];
    } else {  // post-LN (GPT-1): x = LN1(x + attn(x)); x = LN2(x + mlp(x))
      for (int64_t i = 0; i < R * d; ++i) u_[i] = x_[i] + tmp_[i];
      ref::layernorm(x_.data(), u_.data(), plan.ln1_w, plan.ln1_b, R, d, c.ln_eps);
      linear(plan.up, x_.data(), hidden_.data(), R);
      activation(hidden_.data(), R * n_ff_);
      linear(plan.down, hidden_.data(), tmp_.data(), R);
      for (int64_t i = 0; i < R * d; ++i) u_[i] = x_[i] + tmp_[i];
      ref::layernorm(x_.data(), u_.data(), plan.ln2_w, plan.ln2_b, R, d, c.ln_eps);
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
  ref::layernorm(logit_rows_.data(), tmp_.data(), weights_(model_.lnf_w), weights_(model_.lnf_b), m, d, c.ln_eps);
  const int64_t V = c.vocab_size;
  const bool contiguous = slots.back() - slots.front() == m - 1 &&
                          std::is_sorted(slots.begin(), slots.end());
  if (contiguous) {
    linear(lm_head_, logit_rows_.data(), logits + static_cast<int64_t>(slots.front()) * V, m);
    return;
  }
  for (int64_t i = 0; i < m; ++i) linear(lm_head_, logit_rows_.data() + i * d, logits + slots[i] * V, 1);
}

}  // namespace qisa
