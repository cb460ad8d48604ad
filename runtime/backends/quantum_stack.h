// The one matrix all quantum projections of a layer are multiplied by at
// once, built on the host for the CPU engine (quantum_layer.cpp) and for
// upload by the CUDA engine.
#pragma once

#include <cstdint>
#include <vector>

#include "model.h"
#include "qisa.h"

namespace qisa {

// Row-major [rows, cols]; rows row_bytes apart in `bytes`.
struct StackedMatrix {
  qisa_dtype dtype = QISA_DTYPE_F32;
  size_t row_bytes = 0;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> bytes;

  const float* f32() const { return dtype == QISA_DTYPE_F32 ? reinterpret_cast<const float*>(bytes.data()) : nullptr; }
};

// Unitary path: rows [2Dp, 2Dp + D) hold Re U_p, the next D rows Im U_p, each
// row cut to its first `cols` values (psi is zero past n_embd; Q8_0 blocks
// stay whole), rows contiguous (strided rows defeat the hardware prefetcher
// when U streams from memory). Kept in the stored type when keep_stored and
// every plane shares it; f32 otherwise.
StackedMatrix stack_unitaries(const std::vector<const QuantumProjection*>& projections, int64_t cols, bool keep_stored);

// Observables path: rows (p h + k) D + a hold Re(O'_{p,k})[a, :], f32, from
// the stored observables or, where a file has none, Re(U^dag P_k U) from U.
// psi^T Re(O') psi is the value for a real psi (the imaginary part of a
// Hermitian O' is antisymmetric and drops out).
StackedMatrix stack_observables(const std::vector<const QuantumProjection*>& projections, int64_t h);

}  // namespace qisa
