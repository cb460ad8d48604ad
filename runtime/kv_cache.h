// Per-sequence caches: the tokens of each sequence's window and, per layer,
// the keys, values and squared key norms of every position, laid out
// [layer][sequence][position][...] like llama2.c's run state. A backend that
// keeps keys and values in its own memory (CUDA) makes one without host
// arrays: only the tokens are kept here then.
#pragma once

#include <cstdint>
#include <vector>

namespace qisa {

class KvCache {
 public:
  KvCache(int64_t n_layer, int64_t n_seq, int64_t n_ctx, int64_t n_embd, int64_t n_head, bool host_arrays = true)
      : n_layer_(n_layer),
        n_seq_(n_seq),
        n_ctx_(n_ctx),
        d_(n_embd),
        h_(n_head),
        k_(host_arrays ? static_cast<size_t>(n_layer * n_seq * n_ctx * n_embd) : 0),
        v_(k_.size()),
        knorm_(host_arrays ? static_cast<size_t>(n_layer * n_seq * n_ctx * n_head) : 0),
        tokens_(static_cast<size_t>(n_seq)) {
    for (auto& t : tokens_) t.reserve(static_cast<size_t>(n_ctx));
  }

  // [n_embd] keys / values (all heads) of one position; [n_head] key norms.
  // Only with host arrays.
  float* key(int64_t l, int64_t s, int64_t p) { return k_.data() + ((l * n_seq_ + s) * n_ctx_ + p) * d_; }
  float* value(int64_t l, int64_t s, int64_t p) { return v_.data() + ((l * n_seq_ + s) * n_ctx_ + p) * d_; }
  float* key_norm(int64_t l, int64_t s, int64_t p) { return knorm_.data() + ((l * n_seq_ + s) * n_ctx_ + p) * h_; }
  const float* key(int64_t l, int64_t s, int64_t p) const { return k_.data() + ((l * n_seq_ + s) * n_ctx_ + p) * d_; }
  const float* value(int64_t l, int64_t s, int64_t p) const { return v_.data() + ((l * n_seq_ + s) * n_ctx_ + p) * d_; }
  const float* key_norm(int64_t l, int64_t s, int64_t p) const {
    return knorm_.data() + ((l * n_seq_ + s) * n_ctx_ + p) * h_;
  }

  // The tokens whose keys/values are cached, position order.
  std::vector<int32_t>& tokens(int64_t s) { return tokens_[static_cast<size_t>(s)]; }
  const std::vector<int32_t>& tokens(int64_t s) const { return tokens_[static_cast<size_t>(s)]; }
  int64_t length(int64_t s) const { return static_cast<int64_t>(tokens_[static_cast<size_t>(s)].size()); }

  int64_t n_layer() const { return n_layer_; }
  int64_t n_seq() const { return n_seq_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_embd() const { return d_; }
  int64_t n_head() const { return h_; }

 private:
  int64_t n_layer_, n_seq_, n_ctx_, d_, h_;
  std::vector<float> k_, v_, knorm_;
  std::vector<std::vector<int32_t>> tokens_;
};

}  // namespace qisa
