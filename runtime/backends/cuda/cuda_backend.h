// The CUDA backend (registry row kCudaBackend): the whole forward pass on
// device 0 (cuBLAS for the products, kernels for the rest), keys and values
// in device memory, one stream per context. Built when the CUDA Toolkit is
// found (QISA_CUDA); otherwise cuda_stub.cpp's row reports "not built".
#pragma once

#include <string>

namespace qisa {

// True when a CUDA device can be used; otherwise false and why (no
// driver, no device, built without CUDA, cuBLAS missing).
bool cuda_usable(std::string* why);

}  // namespace qisa
