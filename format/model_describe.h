// The writer's description of a loaded model, so a model can be rewritten
// (converted, re-quantized) without the trainer.
#pragma once

#include "model.h"
#include "model_writer.h"

namespace qisa::writer {

// Every field of `model`, with each tensor's bytes copied as stored.
ModelDesc describe(const Model& model);

// Which class a tensor name belongs to, for per-class quantization.
enum class TensorClass { Vector, Embedding, Weight, LmHead, Unitary, Observable };
TensorClass classify(const std::string& name, uint64_t rank);

}  // namespace qisa::writer
