// Builds without the CUDA Toolkit: the CUDA backend reports itself absent.
#include "cuda/cuda_backend.h"
#include "error.h"

namespace qisa {

bool cuda_usable(std::string* why) {
  if (why) *why = "this build of libqisa has no CUDA backend (built without the CUDA Toolkit)";
  return false;
}

std::unique_ptr<Backend> make_cuda_backend(const Model&, DeviceCache&, const EngineOptions&, int64_t, std::string*) {
  fail(QISA_ERR_BACKEND, "this build of libqisa has no CUDA backend (built without the CUDA Toolkit)");
}

}  // namespace qisa
