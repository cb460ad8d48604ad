// Element types of model tensors: f32, f16, bf16 and Q8_0 blocks.
// Q8_0 splits each row (last dimension) into blocks of 32 values stored as
// an f16 scale d followed by 32 int8 q; value = d * q. A row whose length is
// not a multiple of 32 is padded with zeros in its last block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "qisa.h"

namespace qisa {

inline constexpr size_t kQ8Block = 32;
inline constexpr size_t kQ8BlockBytes = 2 + kQ8Block;

const char* dtype_name(qisa_dtype t);
// The type a name denotes: every name dtype_name prints, and "q8" for Q8_0
// (the tools' short spelling). Empty for anything else.
std::optional<qisa_dtype> dtype_from_name(std::string_view name);
bool dtype_valid(int t);

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);

// Bytes of one row of `cols` values; nullopt on overflow.
std::optional<uint64_t> row_bytes(qisa_dtype t, uint64_t cols);

// Converts one row between f32 and the stored type.
void quantize_row(qisa_dtype t, const float* src, size_t cols, uint8_t* dst);
void dequantize_row(qisa_dtype t, const uint8_t* src, size_t cols, float* dst);

// One element of a stored row.
float load_element(qisa_dtype t, const uint8_t* row, size_t col);

}  // namespace qisa
