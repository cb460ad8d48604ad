#include "backend.h"

#include <cstring>

namespace qisa {

namespace {

// The blocks of a saved state in order, per layer: K [n, n_embd],
// V [n, n_embd], |k|^2 [n, n_head]; f(block, values) for each.
template <class Cache, class F>
void state_blocks(Cache& cache, int64_t seq, int64_t n, F&& f) {
  const auto d = static_cast<size_t>(cache.n_embd()), H = static_cast<size_t>(cache.n_head());
  const auto len = static_cast<size_t>(n);
  for (int64_t l = 0; l < cache.n_layer(); ++l) {
    f(cache.key(l, seq, 0), len * d);
    f(cache.value(l, seq, 0), len * d);
    f(cache.key_norm(l, seq, 0), len * H);
  }
}

}  // namespace

void Backend::save_kv(const KvCache& cache, int64_t seq, int64_t n, uint8_t* out) {
  state_blocks(cache, seq, n, [&](const float* block, size_t count) {
    std::memcpy(out, block, count * sizeof(float));
    out += count * sizeof(float);
  });
}

void Backend::load_kv(KvCache& cache, int64_t seq, int64_t n, const uint8_t* in) {
  state_blocks(cache, seq, n, [&](float* block, size_t count) {
    std::memcpy(block, in, count * sizeof(float));
    in += count * sizeof(float);
  });
}

}  // namespace qisa
