// f16 / bf16 / q8_0 codecs against values worked out by hand and against
// exhaustive round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "dtype.h"

namespace qisa {
namespace {

TEST(Dtype, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);                      // largest half
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                      // rounds to inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);         // tie -> even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 ulp -> 2
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);         // smallest normal
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
  EXPECT_FLOAT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_FLOAT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_FLOAT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
}

TEST(Dtype, F16EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const float f = f16_to_f32(hh);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), hh) << "half 0x" << std::hex << h;
  }
}

TEST(Dtype, Bf16Rounding) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(3.0f, -8)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), h);
  }
}

TEST(Dtype, RowBytes) {
  EXPECT_EQ(row_bytes(QISA_DTYPE_F32, 10), 40u);
  EXPECT_EQ(row_bytes(QISA_DTYPE_F16, 10), 20u);
  EXPECT_EQ(row_bytes(QISA_DTYPE_BF16, 10), 20u);
  EXPECT_EQ(row_bytes(QISA_DTYPE_Q8_0, 32), 34u);
  EXPECT_EQ(row_bytes(QISA_DTYPE_Q8_0, 33), 68u);  // padded last block
  EXPECT_EQ(row_bytes(QISA_DTYPE_Q8_0, 16), 34u);
  EXPECT_FALSE(row_bytes(QISA_DTYPE_F32, std::numeric_limits<uint64_t>::max() / 2).has_value());
}

TEST(Dtype, Q8BlockLayoutAndError) {
  std::vector<float> row(40);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(0.37f * static_cast<float>(i)) * (i < 32 ? 2.0f : 0.5f);
  std::vector<uint8_t> q(*row_bytes(QISA_DTYPE_Q8_0, row.size()));
  quantize_row(QISA_DTYPE_Q8_0, row.data(), row.size(), q.data());
  // Block 0: scale = max|x| / 127 stored as f16; the largest value maps to +-127.
  uint16_t h;
  std::memcpy(&h, q.data(), 2);
  float amax = 0.0f;
  for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(row[i]));
  EXPECT_NEAR(f16_to_f32(h), amax / 127.0f, 1e-3f * amax / 127.0f);
  // Padding values of the last block are zero.
  for (size_t i = 40 - 32; i < 32; ++i) EXPECT_EQ(q[34 + 2 + i], 0) << i;
  std::vector<float> back(row.size());
  dequantize_row(QISA_DTYPE_Q8_0, q.data(), row.size(), back.data());
  for (size_t i = 0; i < row.size(); ++i) {
    const float block_max = i < 32 ? 2.0f : 0.5f;
    EXPECT_NEAR(back[i], row[i], block_max / 254.0f * 1.01f) << i;
    EXPECT_EQ(back[i], load_element(QISA_DTYPE_Q8_0, q.data(), i));
  }
  // A zero row stays zero (scale 0, no division by zero).
  std::vector<float> zeros(32, 0.0f), zback(32, 1.0f);
  quantize_row(QISA_DTYPE_Q8_0, zeros.data(), 32, q.data());
  dequantize_row(QISA_DTYPE_Q8_0, q.data(), 32, zback.data());
  for (float v : zback) EXPECT_EQ(v, 0.0f);
}

// Q4_0 worked out by hand: the largest-magnitude value m of a block maps to
// nibble 0 (d = m / -8), value = d * (nibble - 8), byte j holds values j
// (low nibble) and j + 16 (high nibble).
TEST(Dtype, Q4BlockLayoutByHand) {
  EXPECT_EQ(row_bytes(QISA_DTYPE_Q4_0, 32), 18u);
  EXPECT_EQ(row_bytes(QISA_DTYPE_Q4_0, 33), 36u);  // padded last block
  std::vector<float> row(32, 0.0f);
  row[0] = -4.0f;    // m: d = 0.5
  row[1] = 3.5f;     // 7 steps above zero: nibble 15
  row[2] = 4.0f;     // -m: 8 steps, clamped to nibble 15 (value 3.5)
  row[16] = 1.0f;    // nibble 10, in the high half of byte 0
  row[17] = -0.74f;  // -1.48 steps: nibble 7 (value -0.5)
  std::vector<uint8_t> q(18);
  quantize_row(QISA_DTYPE_Q4_0, row.data(), row.size(), q.data());
  uint16_t h;
  std::memcpy(&h, q.data(), 2);
  EXPECT_EQ(f16_to_f32(h), 0.5f);
  EXPECT_EQ(q[2 + 0], 0x0 | 10 << 4);  // value 0 (nibble 0), value 16 (nibble 10)
  EXPECT_EQ(q[2 + 1], 15 | 7 << 4);
  EXPECT_EQ(q[2 + 2], 15 | 8 << 4);
  EXPECT_EQ(q[2 + 3], 8 | 8 << 4);  // zeros are nibble 8
  const float want[] = {-4.0f, 3.5f, 3.5f};
  std::vector<float> back(32);
  dequantize_row(QISA_DTYPE_Q4_0, q.data(), 32, back.data());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(back[i], want[i]) << i;
  EXPECT_EQ(back[16], 1.0f);
  EXPECT_EQ(back[17], -0.5f);
  for (size_t i = 0; i < 32; ++i) EXPECT_EQ(back[i], load_element(QISA_DTYPE_Q4_0, q.data(), i)) << i;
}

// Any row: every value within one step (|m| / 8) of its source, half a
// step except next to -m; padding of a short last block stores zeros; a
// zero block stays zero.
TEST(Dtype, Q4ErrorAndPadding) {
  std::vector<float> row(45);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(0.37f * static_cast<float>(i)) * (i < 32 ? 2.0f : 0.5f);
  std::vector<uint8_t> q(*row_bytes(QISA_DTYPE_Q4_0, row.size()));
  quantize_row(QISA_DTYPE_Q4_0, row.data(), row.size(), q.data());
  std::vector<float> back(row.size());
  dequantize_row(QISA_DTYPE_Q4_0, q.data(), row.size(), back.data());
  for (size_t b0 = 0; b0 < row.size(); b0 += 32) {
    float m = 0.0f;
    for (size_t i = b0; i < std::min(row.size(), b0 + 32); ++i)
      if (std::fabs(row[i]) > std::fabs(m)) m = row[i];
    const float step = std::fabs(m) / 8.0f;
    for (size_t i = b0; i < std::min(row.size(), b0 + 32); ++i) {
      const bool near_minus_m = std::fabs(row[i] + m) < step / 2;
      EXPECT_LE(std::fabs(back[i] - row[i]), (near_minus_m ? 1.0f : 0.5f) * step * 1.01f) << i;
    }
  }
  for (size_t j = 0; j < 16; ++j) {  // block 1 holds values 32..44: index 13 on is padding
    EXPECT_EQ(q[18 + 2 + j] >> 4, 8) << j;
    if (j >= 45 - 32) {
      EXPECT_EQ(q[18 + 2 + j] & 0xf, 8) << j;
    }
  }
  std::vector<float> zeros(32, 0.0f), zback(32, 1.0f);
  quantize_row(QISA_DTYPE_Q4_0, zeros.data(), 32, q.data());
  dequantize_row(QISA_DTYPE_Q4_0, q.data(), 32, zback.data());
  for (float v : zback) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(dtype_from_name("q4"), QISA_DTYPE_Q4_0);
  EXPECT_EQ(dtype_from_name("q4_0"), QISA_DTYPE_Q4_0);
  EXPECT_FALSE(dtype_traits(QISA_DTYPE_Q4_0).holds_unitaries);
}

TEST(Dtype, F16AndBf16RowsWithinHalfUlp) {
  std::vector<float> row(100);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::cos(0.11f * static_cast<float>(i)) * 3.0f;
  for (qisa_dtype t : {QISA_DTYPE_F16, QISA_DTYPE_BF16}) {
    std::vector<uint8_t> q(*row_bytes(t, row.size()));
    quantize_row(t, row.data(), row.size(), q.data());
    std::vector<float> back(row.size());
    dequantize_row(t, q.data(), row.size(), back.data());
    const float rel = t == QISA_DTYPE_F16 ? std::ldexp(1.0f, -11) : std::ldexp(1.0f, -8);
    for (size_t i = 0; i < row.size(); ++i) EXPECT_LE(std::fabs(back[i] - row[i]), rel * std::fabs(row[i]) + 1e-7f);
  }
}

}  // namespace
}  // namespace qisa
