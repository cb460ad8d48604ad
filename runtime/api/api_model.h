// The C handle behind qisa_model*, for the library's other C API files and
// for tests that look inside a loaded model.
#pragma once

#include <memory>

#include "device_slots.h"
#include "model.h"
#include "qisa.h"

struct qisa_model {
  std::unique_ptr<qisa::Model> impl;
  // Weights uploaded to a GPU for this model's contexts (not part of the
  // model's loaded, immutable state).
  mutable qisa::DeviceSlots device;
};

namespace qisa {
const Model& model_of(const qisa_model* m);
}  // namespace qisa
