#include "backends/weights.h"

#include <cstdint>

#include "dtype.h"

namespace qisa {

F32Weights::F32Weights(const Model& model, bool expand_matrices) {
  for (const TensorView& t : model.tensors) {
    if (!expand_matrices && t.shape.size() > 1) continue;
    // f32 data is used in place when suitably aligned (always, for files
    // this library wrote; a borrowed buffer is 64-byte aligned or copied).
    if (t.dtype == QISA_DTYPE_F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0) continue;
    std::vector<float> v(t.elements);
    for (uint64_t r = 0; r < t.rows(); ++r) dequantize_row(t.dtype, t.row(r), t.cols(), v.data() + r * t.cols());
    owned_.emplace(&t, std::move(v));
  }
}

const float* F32Weights::operator()(const TensorView* t) const {
  if (t == nullptr) return nullptr;
  auto it = owned_.find(t);
  if (it != owned_.end()) return it->second.data();
  return t->dtype == QISA_DTYPE_F32 ? t->f32() : nullptr;
}

size_t F32Weights::owned_bytes() const {
  size_t n = 0;
  for (const auto& [t, v] : owned_) n += v.size() * sizeof(float);
  return n;
}

}  // namespace qisa
