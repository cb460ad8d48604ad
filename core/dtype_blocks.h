// The block layout of the blocked stored types, with no other code: the
// kernels built with extra instruction sets include this instead of dtype.h
// (so no inline library code is compiled with those instructions).
#pragma once

#include <cstddef>

namespace qisa {

inline constexpr int kDtypeCount = 5;  // the values of qisa_dtype

// Q8_0: blocks of 32 values, an f16 scale then 32 int8.
inline constexpr size_t kQ8Block = 32;
inline constexpr size_t kQ8BlockBytes = 2 + kQ8Block;

// Q4_0: blocks of 32 values, an f16 scale d then 16 bytes; byte j holds
// value j in its low nibble and value j + 16 in its high one (so a block's
// two halves unpack with one mask and one shift); value = d * (nibble - 8).
inline constexpr size_t kQ4Block = 32;
inline constexpr size_t kQ4BlockBytes = 2 + kQ4Block / 2;

}  // namespace qisa
