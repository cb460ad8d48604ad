// The AVX2 many-row Q8_0 / Q4_0 products (cpu_batch_avx2.cpp), as the
// BatchKernel entries of the AVX2 kernel set (cpu_kernels.h). Only to be
// called after that set's CPU check.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qisa::avx2_batch {

size_t bytes(int64_t rows, int64_t in);
void pack(const float* x, int64_t ldx, int64_t rows, int64_t in, uint8_t* packed);
size_t work_bytes(int64_t in);
void product_q8(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w,
                size_t w_stride, const float* bias, int64_t out, uint8_t* work);
void product_q4(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w,
                size_t w_stride, const float* bias, int64_t out, uint8_t* work);

}  // namespace qisa::avx2_batch
