// The AVX2 rows-in-lanes Pauli sums, circuits and small dense unitaries
// (cpu_rows_avx2.cpp), as the pauli_rows, circuit_pauli_rows and
// unitary_pauli_rows entries of the AVX2 kernel set
// (cpu_kernels.h). Only to be called after that set's CPU check.
#pragma once

#include <cstdint>

#include "cpu_kernels.h"

namespace qisa::avx2_rows {

void pauli_rows(const PauliPlan& plan, const float* phi, int64_t ld, int64_t rows, float* out, int64_t stride,
                float* scratch);
void circuit_pauli_rows(const CircuitPlan& c, const PauliPlan& plan, const float* x, int64_t ld, int64_t d,
                        int64_t rows, bool normalized, float* out, int64_t stride, float* scratch);
void unitary_pauli_rows(const PauliPlan& plan, const float* u_cols, const float* x, int64_t ld, int64_t d, int64_t rows,
                        bool normalized, float* out, int64_t stride, float* scratch);

}  // namespace qisa::avx2_rows
