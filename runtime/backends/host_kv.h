// Keys, values and squared key norms in host memory, laid out
// [layer][sequence][position][...] like llama2.c's run state: the KV store
// of the backends that compute on the CPU (ref, cpu).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace qisa {

class HostKv {
 public:
  HostKv(int64_t n_layer, int64_t n_seq, int64_t n_ctx, int64_t n_embd, int64_t n_head)
      : n_layer_(n_layer),
        n_seq_(n_seq),
        n_ctx_(n_ctx),
        d_(n_embd),
        h_(n_head),
        k_(static_cast<size_t>(n_layer * n_seq * n_ctx * n_embd)),
        v_(k_.size()),
        knorm_(static_cast<size_t>(n_layer * n_seq * n_ctx * n_head)) {}

  // [n_embd] keys / values (all heads) of one position; [n_head] key norms.
  float* key(int64_t l, int64_t s, int64_t p) { return k_.data() + at(l, s, p) * d_; }
  float* value(int64_t l, int64_t s, int64_t p) { return v_.data() + at(l, s, p) * d_; }
  float* key_norm(int64_t l, int64_t s, int64_t p) { return knorm_.data() + at(l, s, p) * h_; }

  // Positions [0, n) of one sequence to or from a saved state's layout:
  // per layer K [n, n_embd], V [n, n_embd], |k|^2 [n, n_head].
  void save(int64_t s, int64_t n, uint8_t* out) {
    blocks(s, n, [&](float* block, size_t count) {
      std::memcpy(out, block, count * sizeof(float));
      out += count * sizeof(float);
    });
  }
  void load(int64_t s, int64_t n, const uint8_t* in) {
    blocks(s, n, [&](float* block, size_t count) {
      std::memcpy(block, in, count * sizeof(float));
      in += count * sizeof(float);
    });
  }

 private:
  int64_t at(int64_t l, int64_t s, int64_t p) const { return (l * n_seq_ + s) * n_ctx_ + p; }
  template <class F>
  void blocks(int64_t s, int64_t n, F&& f) {
    const auto len = static_cast<size_t>(n);
    for (int64_t l = 0; l < n_layer_; ++l) {
      f(key(l, s, 0), len * static_cast<size_t>(d_));
      f(value(l, s, 0), len * static_cast<size_t>(d_));
      f(key_norm(l, s, 0), len * static_cast<size_t>(h_));
    }
  }

  int64_t n_layer_, n_seq_, n_ctx_, d_, h_;
  std::vector<float> k_, v_, knorm_;
};

}  // namespace qisa
