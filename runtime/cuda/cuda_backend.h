// The CUDA engine behind the same Backend interface as the CPU engine: the
// whole forward pass on device 0 (cuBLAS for the products, kernels for the
// rest), KV cache in device memory, one stream per context. Built when the
// CUDA Toolkit is found (QISA_CUDA); otherwise these report "not built".
#pragma once

#include <memory>
#include <string>

#include "backend.h"
#include "device_cache.h"
#include "model.h"

namespace qisa {

// True when a CUDA device can be used; otherwise false and why (no
// driver, no device, built without CUDA, cuBLAS missing).
bool cuda_usable(std::string* why);

// Throws qisa::Error (QISA_ERR_BACKEND, QISA_ERR_OUT_OF_MEMORY) on failure.
// `info` gets a line naming the device.
std::unique_ptr<Backend> make_cuda_backend(const Model& model, DeviceCache& cache, const EngineOptions& options,
                                           int64_t max_sequences, std::string* info);

}  // namespace qisa
