// The CUDA engine's own source (runtime/backends/cuda/cuda_backend.cu), compiled as
// C++ on the emulation shim (QISA_CUDA_EMULATION, _FIBERS): with the rest of
// the runtime it makes qisa_emulated, a libqisa whose "CUDA device" is the
// CPU, so the GPU test suite runs on machines without a GPU.
#include "backends/cuda/cuda_backend.cu"

namespace qisa {

// The emulated cuBLAS, in place of the dlopen'ed one (cublas_loader.cpp).
const Cublas* cublas(std::string* /*why*/) {
  static const Cublas api{cublasCreate_v2, cublasDestroy_v2, cublasSetStream_v2, cublasSgemm_v2, cublasSetWorkspace_v2};
  return &api;
}

}  // namespace qisa
