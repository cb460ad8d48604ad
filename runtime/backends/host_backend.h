// What the backends that compute in host memory (ref, cpu) share: the
// per-row buffers, the KV store, staging, the row gather before the LM head,
// and the operations that only move or add numbers. Each derived backend
// supplies the arithmetic (embed, layernorm, linear, quantum, attention,
// lm_head).
#pragma once

#include <array>
#include <cstring>
#include <span>
#include <vector>

#include "backend.h"
#include "backends/host_kv.h"
#include "backends/ref/reference_ops.h"
#include "error.h"
#include "forward.h"
#include "model.h"

namespace qisa {

class HostBackend : public Backend, public Ops {
 public:
  HostBackend(const Model& model, const BackendOptions& o, const char* name)
      : model_(model),
        options_(o),
        name_(name),
        kv_(model.config.n_layer, o.max_sequences, model.config.n_ctx, model.config.n_embd, model.config.n_head),
        d_(model.config.n_embd),
        hs_(model.config.head_size()) {
    const auto R = static_cast<size_t>(o.max_rows);
    for (Buf b : {Buf::X, Buf::U, Buf::Q, Buf::K, Buf::V, Buf::Att, Buf::Tmp, Buf::Hidden})
      buf(b).resize(R * static_cast<size_t>(width(b)));
    cols_.resize(R * static_cast<size_t>(d_));
    slots_.reserve(R);
    if (model.config.reference_transposed) weights_.resize(model.config.n_ctx);
  }

  int64_t max_rows() const override { return options_.max_rows; }
  BackendCaps caps() const override {
    BackendCaps c;
    c.transposed_window = true;
    return c;
  }

  // Readable loops (ref::attention_transposed) for the fast backend too:
  // only evaluation of research models runs it.
  void attention_transposed(int64_t l, Buf qb, Buf outb) override {
    const auto n = static_cast<int64_t>(rows_.size());
    for (int64_t r = 0; r < n; ++r) {
      if (rows_[static_cast<size_t>(r)].pos != r || rows_[static_cast<size_t>(r)].seq != rows_[0].seq)
        fail(QISA_ERR_INTERNAL, "transposed attention needs one whole window from position 0 in one pass");
    }
    if (n == 0) return;
    const int64_t H = model_.config.n_head, seq = rows_[0].seq;
    const Layer& L = model_.layers[static_cast<size_t>(l)];
    for (int64_t h = 0; h < H; ++h) {
      const Head& hd = L.heads[static_cast<size_t>(h)];
      ref::attention_transposed(buf(outb).data() + h * hs_, buf(qb).data() + h * hs_, d_, kv_.key(l, seq, 0) + h * hs_,
                                kv_.key_norm(l, seq, 0) + h, kv_.value(l, seq, 0) + h * hs_, n, hs_, d_, d_, H,
                                hd.rule(), weights_.data());
    }
  }

  void forward(std::span<const Row> rows, float* logits, int32_t* /*argmax: not declared*/) override {
    begin(rows, logits);
    run_forward(model_, *this, static_cast<int64_t>(rows.size()));
  }

  void probe(std::span<const Row> rows, const ProbePoint& probe) override {
    begin(rows, nullptr);
    run_forward(model_, *this, static_cast<int64_t>(rows.size()), &probe);
  }

  void save_kv(int64_t seq, int64_t n, uint8_t* out) override { kv_.save(seq, n, out); }
  void load_kv(int64_t seq, int64_t n, const uint8_t* in) override { kv_.load(seq, n, in); }

  // Keys and values as they are, and |k|^2 per head (the Gaussian score's
  // |q - k|^2 = |q|^2 + |k|^2 - 2 q.k).
  void kv_write(int64_t l, Buf kb, Buf vb) override {
    write_kv_rows(l, kb, vb, 0, static_cast<int64_t>(rows_.size()), [](const float* k, int64_t n) {
      float sum = 0.0f;
      for (int64_t i = 0; i < n; ++i) sum += k[i] * k[i];
      return sum;
    });
  }

  void add(Buf outb, Buf ab, Buf bb) override { add_rows(outb, ab, bb, 0, static_cast<int64_t>(rows_.size())); }

  int64_t gather_logits(Buf outb, Buf inb) override {
    slots_.clear();
    float* out = buf(outb).data();
    const float* in = buf(inb).data();
    for (size_t r = 0; r < rows_.size(); ++r) {
      if (rows_[r].logits_slot < 0) continue;
      std::memcpy(out + static_cast<int64_t>(slots_.size()) * d_, in + static_cast<int64_t>(r) * d_,
                  d_ * sizeof(float));
      slots_.push_back(rows_[r].logits_slot);
    }
    return static_cast<int64_t>(slots_.size());
  }

  void stage(std::span<const Row> rows) override { rows_ = rows; }
  void upload(Buf b, const float* host, int64_t rows) override {
    std::memcpy(buf(b).data(), host, static_cast<size_t>(rows * width(b)) * sizeof(float));
  }
  void download(Buf b, float* host, int64_t rows) override {
    std::memcpy(host, buf(b).data(), static_cast<size_t>(rows * width(b)) * sizeof(float));
  }

 protected:
  // Called on the calling thread before each forward pass.
  virtual void before_forward() {}

  // The rows and logits of the pass about to run.
  void begin(std::span<const Row> rows, float* logits) {
    if (static_cast<int64_t>(rows.size()) > options_.max_rows)
      fail(QISA_ERR_INTERNAL, "%s backend: %zu rows > %lld", name_, rows.size(),
           static_cast<long long>(options_.max_rows));
    before_forward();
    rows_ = rows;
    logits_ = logits;
  }

  // kv_write for rows [r0, r0 + n), |k|^2 of each head's hs_ keys by
  // squared(k, hs_) (a backend may split the rows: each row has its own
  // sequence and position).
  template <class SquaredNorm>
  void write_kv_rows(int64_t l, Buf kb, Buf vb, int64_t r0, int64_t n, SquaredNorm&& squared) {
    const int64_t H = model_.config.n_head;
    const float* k = buf(kb).data() + r0 * d_;
    const float* v = buf(vb).data() + r0 * d_;
    for (int64_t r = r0; r < r0 + n; ++r, k += d_, v += d_) {
      const Row& row = rows_[static_cast<size_t>(r)];
      std::memcpy(kv_.key(l, row.seq, row.pos), k, static_cast<size_t>(d_) * sizeof(float));
      std::memcpy(kv_.value(l, row.seq, row.pos), v, static_cast<size_t>(d_) * sizeof(float));
      float* kn = kv_.key_norm(l, row.seq, row.pos);
      for (int64_t h = 0; h < H; ++h) kn[h] = squared(k + h * hs_, hs_);
    }
  }

  int64_t width(Buf b) const { return b == Buf::Hidden ? model_.config.n_ff : d_; }

  // out = a + b for rows [r0, r0 + n) (add() is all rows; a backend may split them).
  void add_rows(Buf outb, Buf ab, Buf bb, int64_t r0, int64_t n) {
    float* out = buf(outb).data();
    const float *a = buf(ab).data(), *b = buf(bb).data();
    for (int64_t i = r0 * d_; i < (r0 + n) * d_; ++i) out[i] = a[i] + b[i];
  }

  // A linear map's result into `out`: product(dst) writes [rows, n_out]
  // contiguously, straight into out when it fills whole rows, else into a
  // scratch copied to columns [col, col + n_out); then the activation.
  template <class Product>
  void into_columns(Buf out, int64_t col, int64_t n_out, Act act, int64_t rows, Product&& product) {
    const int64_t w = width(out);
    float* y = buf(out).data();
    if (col == 0 && n_out == w) {
      product(y);
    } else {  // a head's columns (at most n_embd wide)
      product(cols_.data());
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(y + r * w + col, cols_.data() + r * n_out, static_cast<size_t>(n_out) * sizeof(float));
    }
    if (act == Act::Relu) ref::relu(y, rows * w);
    if (act == Act::Gelu) ref::gelu(y, rows * w);
  }
  std::vector<float>& buf(Buf b) { return bufs_[static_cast<size_t>(b)]; }
  static Buf role_buf(Role r) { return r == Role::Q ? Buf::Q : r == Role::K ? Buf::K : Buf::V; }

  const Model& model_;
  BackendOptions options_;
  const char* name_;
  HostKv kv_;
  int64_t d_, hs_;
  std::array<std::vector<float>, kBufs> bufs_;
  std::vector<float> cols_;     // one linear map's output before it goes into a head's columns
  std::vector<int32_t> slots_;  // of the gathered rows
  std::span<const Row> rows_;   // of the running pass
  std::vector<float> weights_;  // one row's attention weights (transposed models: n_ctx, sized at creation)
  float* logits_ = nullptr;     // of the running pass
};

}  // namespace qisa
