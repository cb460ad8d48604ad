#include "backend.h"

#include <cstring>

namespace qisa {

void Backend::save_kv(const KvCache& cache, int64_t seq, int64_t n, uint8_t* out) {
  const auto d = static_cast<size_t>(cache.n_embd()), H = static_cast<size_t>(cache.n_head());
  const auto len = static_cast<size_t>(n);
  for (int64_t l = 0; l < cache.n_layer(); ++l) {
    std::memcpy(out, cache.key(l, seq, 0), len * d * sizeof(float));
    out += len * d * sizeof(float);
    std::memcpy(out, cache.value(l, seq, 0), len * d * sizeof(float));
    out += len * d * sizeof(float);
    std::memcpy(out, cache.key_norm(l, seq, 0), len * H * sizeof(float));
    out += len * H * sizeof(float);
  }
}

void Backend::load_kv(KvCache& cache, int64_t seq, int64_t n, const uint8_t* in) {
  const auto d = static_cast<size_t>(cache.n_embd()), H = static_cast<size_t>(cache.n_head());
  const auto len = static_cast<size_t>(n);
  for (int64_t l = 0; l < cache.n_layer(); ++l) {
    std::memcpy(cache.key(l, seq, 0), in, len * d * sizeof(float));
    in += len * d * sizeof(float);
    std::memcpy(cache.value(l, seq, 0), in, len * d * sizeof(float));
    in += len * d * sizeof(float);
    std::memcpy(cache.key_norm(l, seq, 0), in, len * H * sizeof(float));
    in += len * H * sizeof(float);
  }
}

}  // namespace qisa
