// The backends this build has, one row each, and the choice among them. A
// context asks for a backend (qisa_backend) and an engine (qisa_engine);
// AUTO takes the usable row of highest priority and says why it skipped
// the others.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "backend.h"
#include "device_slots.h"
#include "model.h"
#include "qisa.h"

namespace qisa {

struct BackendEntry {
  const char* name;      // in messages and backend_info, e.g. "cpu"
  qisa_backend backend;  // the public value that names it
  qisa_engine engine;    // the engine value it implements
  int priority;          // AUTO: the usable row with the highest
  // True when the backend can run here; otherwise false and why.
  bool (*usable)(std::string* why);
  // Throws qisa::Error. `info` gets a line on what was made (e.g. the device).
  std::unique_ptr<Backend> (*create)(const Model& model, DeviceSlots& slots, const BackendOptions& options,
                                     std::string* info);
};

// Every backend of this build (the list is made by CMake, backend_list.inc).
std::span<const BackendEntry* const> backend_entries();

struct ChosenBackend {
  std::unique_ptr<Backend> backend;
  qisa_backend kind = QISA_BACKEND_CPU;
  std::string info;  // "cpu", "<name>: <device>", "cpu (auto: <why the better rows were not usable>)"
};

// The backend params ask for (backend, engine), made. Throws qisa::Error:
// QISA_ERR_BACKEND where the asked one is absent or unusable,
// QISA_ERR_INVALID_ARGUMENT where no backend implements that engine there.
ChosenBackend choose_backend(const Model& model, DeviceSlots& slots, const qisa_context_params& params,
                             const BackendOptions& options);

}  // namespace qisa
