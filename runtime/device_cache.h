// Per-model slots for weights uploaded to a device, shared by every context
// of that model on the device and freed with the last of them. Lives in the
// model handle: loading stays immutable, uploading happens on first use.
#pragma once

#include <memory>
#include <mutex>

namespace qisa {

struct DeviceCache {
  std::mutex mutex;
  std::weak_ptr<void> cuda[2];  // by value path: 0 unitary, 1 observables
};

}  // namespace qisa
