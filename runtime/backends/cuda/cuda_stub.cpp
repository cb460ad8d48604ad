// Builds without the CUDA Toolkit: the CUDA backend's row says it is absent.
#include "cuda_backend.h"
#include "error.h"
#include "registry.h"

namespace qisa {

namespace {
constexpr const char* kNotBuilt = "this build of libqisa has no CUDA backend (built without the CUDA Toolkit)";
}  // namespace

bool cuda_usable(std::string* why) {
  if (why) *why = kNotBuilt;
  return false;
}

extern const BackendEntry kCudaBackend = {
    "cuda",
    QISA_BACKEND_CUDA,
    QISA_ENGINE_FAST,
    10,
    cuda_usable,
    [](const Model&, DeviceSlots&, const BackendOptions&, std::string*) -> std::unique_ptr<Backend> {
      fail(QISA_ERR_BACKEND, "%s", kNotBuilt);
    },
};

}  // namespace qisa
