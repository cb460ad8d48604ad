// cuBLAS loaded at run time (dlopen), so libqisa itself needs no CUDA
// library to load on machines without a GPU: only the functions the CUDA
// engine calls.
#pragma once

#ifdef QISA_CUDA_EMULATION
#include "cuda_emulation.h"
#else
#include <cublas_v2.h>
#endif

#include <string>

namespace qisa {

struct Cublas {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
};

// The loaded library, or nullptr with the reason in *why. Loaded once per
// process and never unloaded.
const Cublas* cublas(std::string* why);

}  // namespace qisa
