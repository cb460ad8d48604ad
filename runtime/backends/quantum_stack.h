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

// Whether q's circuit can be applied from its angles: an RX-RY / CNOT ring
// / RY circuit with its 3n angles (not a dense one).
bool circuit_has_angles(const QuantumProjection& q);

// Whether the engines apply q's circuit from its angles rather than
// multiply by its stored unitary: circuit_has_angles, with the unitary
// stored in a type coarser than f32 (docs/format.md, library 0.9). Such a
// unitary is only the loader's check of the angles.
bool unitary_from_angles(const QuantumProjection& q);

// The unitary the engines use, as f32 planes [D, cols] (Re, then Im): the
// stored one dequantized, or the angles' (unitary_from_angles).
void unitary_planes(const QuantumProjection& q, int64_t cols, std::vector<float>& re, std::vector<float>& im);

// Unitary path: rows [2Dp, 2Dp + D) hold Re U_p, the next D rows Im U_p, each
// row cut to its first `cols` values (psi is zero past n_embd; Q8_0 blocks
// stay whole), rows contiguous (strided rows defeat the hardware prefetcher
// when U streams from memory). Kept in the stored type when keep_stored and
// every plane shares it and none is unitary_from_angles; f32 otherwise.
StackedMatrix stack_unitaries(const std::vector<const QuantumProjection*>& projections, int64_t cols, bool keep_stored);

// Observables path: rows (p h + k) D + a hold Re(O'_{p,k})[a, :], f32, from
// the stored observables or, where a file has none, Re(U^dag P_k U) from U.
// psi^T Re(O') psi is the value for a real psi (the imaginary part of a
// Hermitian O' is antisymmetric and drops out).
StackedMatrix stack_observables(const std::vector<const QuantumProjection*>& projections, int64_t h);

}  // namespace qisa
