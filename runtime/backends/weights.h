// f32 views of a model's tensors for the CPU engine: f32 tensors are used in
// place (mapped file or buffer); other dtypes are dequantized once into
// storage owned here — every tensor for the reference engine, only vectors
// (LayerNorm, biases) for the fast one, which computes on matrices as stored.
#pragma once

#include <unordered_map>
#include <vector>

#include "model.h"

namespace qisa {

class F32Weights {
 public:
  F32Weights(const Model& model, bool expand_matrices);
  // nullptr for nullptr and for a matrix that was not expanded.
  const float* operator()(const TensorView* t) const;
  // Bytes held in dequantized copies.
  size_t owned_bytes() const;

 private:
  std::unordered_map<const TensorView*, std::vector<float>> owned_;
};

}  // namespace qisa
