// The reference backend: every operation of the forward pass as the plain
// loops of reference_ops.h on f32 copies of the weights, one thread, keys
// and values in host memory. It is the oracle the other backends are tested
// against (tests/test_ops_parity.cpp) and what QISA_ENGINE_REFERENCE runs.
#include <array>
#include <cstring>
#include <vector>

#include "backends/host_backend.h"
#include "backends/quantum_stack.h"
#include "backends/weights.h"
#include "dtype.h"
#include "error.h"
#include "forward.h"
#include "reference_ops.h"
#include "registry.h"

namespace qisa {

namespace {

class RefBackend final : public HostBackend {
 public:
  RefBackend(const Model& model, const BackendOptions& o) : HostBackend(model, o, "reference"), weights_(model, true) {
    const ModelConfig& c = model.config;
    const auto R = static_cast<size_t>(o.max_rows);
    scores_.resize(c.n_ctx);
    for (const Linear* l : linears_by_id(model)) {
      Lin lin;
      if (l->weight)
        lin = {weights_(l->weight), weights_(l->bias), static_cast<int64_t>(l->weight->shape[1]),
               static_cast<int64_t>(l->weight->shape[0]), dtype_traits(l->weight->dtype).rounds_activations};
      if (lin.round) rounded_.resize(std::max(rounded_.size(), R * static_cast<size_t>(lin.in)));
      linears_.push_back(lin);
    }
    for (const auto& [w, b] : norms_by_id(model)) norms_.push_back({weights_(w), weights_(b)});
    // Per layer: its quantum projections (in head, role order) with U (all
    // D columns) or O' in f32.
    for (const Layer& L : model.layers) {
      Quantum q;
      for (size_t h = 0; h < L.heads.size(); ++h) {
        for (Role r : kAllRoles) {
          if (!L.heads[h].qp(r)) continue;
          q.projections.push_back(&*L.heads[h].qp(r));
          q.dest.emplace_back(r, static_cast<int64_t>(h));
        }
      }
      if (!q.projections.empty()) {
        q.D = int64_t{1} << q.projections[0]->n_qubits;
        q.stacked = o.value_path == QISA_VALUE_PATH_OBSERVABLES ? stack_observables(q.projections, hs_)
                                                                : stack_unitaries(q.projections, q.D, false);
        q.psi.resize(R * q.D);
        q.out.resize(R * q.stacked.rows);
      }
      quantum_.push_back(std::move(q));
    }
  }

  // x[r] = tok_emb[token] + pos_emb[pos]
  void embed(Buf out) override {
    float* x = buf(out).data();
    for (size_t r = 0; r < rows_.size(); ++r, x += d_) {
      const uint8_t* tok = model_.tok_emb->row(static_cast<uint64_t>(rows_[r].token));
      const uint8_t* pos = model_.pos_emb->row(static_cast<uint64_t>(rows_[r].pos));
      for (int64_t i = 0; i < d_; ++i) {
        const auto c = static_cast<size_t>(i);
        x[i] = load_element(model_.tok_emb->dtype, tok, c) + load_element(model_.pos_emb->dtype, pos, c);
      }
    }
  }

  void layernorm(Buf out, Buf in, int64_t norm, int64_t rows) override {
    const Norm& n = norms_[static_cast<size_t>(norm)];
    ref::layernorm(buf(out).data(), buf(in).data(), n.w, n.b, rows, d_, model_.config.ln_eps);
  }

  void linear(int64_t id, Buf in, Buf out, int64_t col, Act act, int64_t rows) override {
    const Lin& l = linears_[static_cast<size_t>(id)];
    into_columns(out, col, l.out, act, rows,
                 [&](float* y) { ref::linear(y, input(l, buf(in).data(), rows), l.w, l.b, rows, l.in, l.out); });
  }

  // Per projection: psi = encode(u), phi = U psi, values = <phi|P_k|phi>
  // (or psi^T Re(O'_k) psi on the observables path).
  void quantum(int64_t layer, Buf in) override {
    Quantum& q = quantum_[static_cast<size_t>(layer)];
    if (q.projections.empty()) return;
    const auto R = static_cast<int64_t>(rows_.size());
    const int64_t D = q.D;
    ref::encode_amplitudes(q.psi.data(), buf(in).data(), R, d_, D, q.projections[0]->encoding == Encoding::Normalized);
    ref::linear(q.out.data(), q.psi.data(), q.stacked.f32(), nullptr, R, q.stacked.cols, q.stacked.rows);
    for (size_t p = 0; p < q.projections.size(); ++p) {
      const auto [role, head] = q.dest[p];
      float* dest = buf(role_buf(role)).data() + head * hs_;
      const auto pi = static_cast<int64_t>(p);
      for (int64_t r = 0; r < R; ++r) {
        const float* row = q.out.data() + r * q.stacked.rows;
        float* o = dest + r * d_;
        if (options_.value_path == QISA_VALUE_PATH_OBSERVABLES) {
          const float* psi = q.psi.data() + r * D;
          for (int64_t k = 0; k < hs_; ++k) {
            const float* y = row + (pi * hs_ + k) * D;
            float acc = 0.0f;
            for (int64_t a = 0; a < D; ++a) acc += psi[a] * y[a];
            o[k] = acc;
          }
        } else {
          ref::pauli_values(o, row + 2 * pi * D, row + (2 * pi + 1) * D, D, q.projections[p]->paulis.data(), hs_);
        }
      }
    }
  }

  void attention(int64_t l, Buf qb, Buf outb) override {
    const int64_t H = model_.config.n_head;
    const Layer& L = model_.layers[static_cast<size_t>(l)];
    for (size_t r = 0; r < rows_.size(); ++r) {
      const Row& row = rows_[r];
      const int64_t at = static_cast<int64_t>(r) * d_;
      for (int64_t h = 0; h < H; ++h) {
        const Head& hd = L.heads[static_cast<size_t>(h)];
        ref::attention_row(buf(outb).data() + at + h * hs_, buf(qb).data() + at + h * hs_,
                           kv_.key(l, row.seq, 0) + h * hs_, kv_.key_norm(l, row.seq, 0) + h,
                           kv_.value(l, row.seq, 0) + h * hs_, row.pos + 1, hs_, d_, d_, H, hd.rule(), scores_.data());
      }
    }
  }

  void lm_head(Buf inb, int64_t m) override {
    const Lin& l = linears_[static_cast<size_t>(WeightIds(model_.config).lm_head())];
    for (int64_t i = 0; i < m; ++i)
      ref::linear(logits_ + static_cast<int64_t>(slots_[static_cast<size_t>(i)]) * l.out,
                  input(l, buf(inb).data() + i * d_, 1), l.w, l.b, 1, l.in, l.out);
  }

 private:
  struct Lin {
    const float *w = nullptr, *b = nullptr;
    int64_t in = 0, out = 0;
    bool round = false;  // the stored type's products round the activations (core/dtype.h)
  };
  // The rows a linear multiplies: x itself, or x rounded into rounded_.
  const float* input(const Lin& l, const float* x, int64_t rows) {
    if (!l.round) return x;
    for (int64_t r = 0; r < rows; ++r)
      round_activations(x + r * l.in, static_cast<size_t>(l.in), rounded_.data() + r * l.in);
    return rounded_.data();
  }
  struct Norm {
    const float *w, *b;
  };
  struct Quantum {
    std::vector<const QuantumProjection*> projections;
    std::vector<std::pair<Role, int64_t>> dest;  // per projection: role and head
    int64_t D = 0;
    StackedMatrix stacked;
    std::vector<float> psi, out;
  };

  F32Weights weights_;        // every tensor as f32
  std::vector<Lin> linears_;  // by WeightIds
  std::vector<float> rounded_;
  std::vector<Norm> norms_;  // by WeightIds
  std::vector<Quantum> quantum_;
  std::vector<float> scores_;
};

}  // namespace

extern const BackendEntry kRefBackend = {
    "cpu",
    QISA_BACKEND_CPU,
    QISA_ENGINE_REFERENCE,
    0,
    [](std::string*) { return true; },
    [](const Model& m, DeviceSlots&, const BackendOptions& o, std::string* info) -> std::unique_ptr<Backend> {
      *info = "cpu (reference engine)";
      return std::make_unique<RefBackend>(m, o);
    },
};

}  // namespace qisa
