#include "dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace qisa {

const char* dtype_name(qisa_dtype t) {
  switch (t) {
    case QISA_DTYPE_F32: return "f32";
    case QISA_DTYPE_F16: return "f16";
    case QISA_DTYPE_BF16: return "bf16";
    case QISA_DTYPE_Q8_0: return "q8_0";
  }
  return "unknown";
}

std::optional<qisa_dtype> dtype_from_name(std::string_view name) {
  for (int t = QISA_DTYPE_F32; t <= QISA_DTYPE_Q8_0; ++t) {
    if (name == dtype_name(static_cast<qisa_dtype>(t))) return static_cast<qisa_dtype>(t);
  }
  if (name == "q8") return QISA_DTYPE_Q8_0;
  return std::nullopt;
}

bool dtype_valid(int t) {
  return t >= QISA_DTYPE_F32 && t <= QISA_DTYPE_Q8_0;
}

static uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16 with round-to-nearest-even, subnormals, inf and NaN.
uint16_t f32_to_f16(float f) {
  const uint32_t x = bits_of(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
  }
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (absx < 0x38800000u) {               // below the smallest normal half: subnormal or zero
    if (absx < 0x33000000u) return sign;  // below half the smallest subnormal
    const uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(absx >> 23);  // 14..24
    const uint32_t sub = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    uint32_t r = sub + ((rem > half || (rem == half && (sub & 1))) ? 1 : 0);
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = absx - 0x38000000u;  // rebias exponent 127 -> 15
  const uint32_t rem = r & 0x1fffu;
  r >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) ++r;
  return static_cast<uint16_t>(sign | r);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return float_of(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return float_of(sign);
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    return float_of(sign | static_cast<uint32_t>(112 - e) << 23 | (mant & 0x3ffu) << 13);
  }
  return float_of(sign | (exp + 112) << 23 | mant << 13);
}

uint16_t f32_to_bf16(float f) {
  const uint32_t x = bits_of(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

float bf16_to_f32(uint16_t h) {
  return float_of(static_cast<uint32_t>(h) << 16);
}

std::optional<uint64_t> row_bytes(qisa_dtype t, uint64_t cols) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  switch (t) {
    case QISA_DTYPE_F32:
      if (cols > kMax / 4) return std::nullopt;
      return cols * 4;
    case QISA_DTYPE_F16:
    case QISA_DTYPE_BF16:
      if (cols > kMax / 2) return std::nullopt;
      return cols * 2;
    case QISA_DTYPE_Q8_0: {
      const uint64_t blocks = cols / kQ8Block + (cols % kQ8Block != 0);
      if (blocks > kMax / kQ8BlockBytes) return std::nullopt;
      return blocks * kQ8BlockBytes;
    }
  }
  return std::nullopt;
}

static void quantize_q8_row(const float* src, size_t cols, uint8_t* dst) {
  for (size_t b0 = 0; b0 < cols; b0 += kQ8Block, dst += kQ8BlockBytes) {
    const size_t n = std::min(kQ8Block, cols - b0);
    float amax = 0.0f;
    for (size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(src[b0 + i]));
    const float d = amax / 127.0f;
    const uint16_t dh = f32_to_f16(d);
    // Quantize against the scale as stored, so dequantization is consistent.
    const float ds = f16_to_f32(dh);
    const float inv = ds > 0.0f ? 1.0f / ds : 0.0f;
    std::memcpy(dst, &dh, 2);
    auto* q = reinterpret_cast<int8_t*>(dst + 2);
    for (size_t i = 0; i < kQ8Block; ++i) {
      if (i >= n) {
        q[i] = 0;
        continue;
      }
      const float v = std::nearbyint(src[b0 + i] * inv);
      q[i] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
  }
}

void quantize_row(qisa_dtype t, const float* src, size_t cols, uint8_t* dst) {
  switch (t) {
    case QISA_DTYPE_F32: std::memcpy(dst, src, cols * 4); return;
    case QISA_DTYPE_F16:
      for (size_t i = 0; i < cols; ++i) {
        const uint16_t h = f32_to_f16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case QISA_DTYPE_BF16:
      for (size_t i = 0; i < cols; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case QISA_DTYPE_Q8_0: quantize_q8_row(src, cols, dst); return;
  }
}

float load_element(qisa_dtype t, const uint8_t* row, size_t col) {
  uint16_t h;
  switch (t) {
    case QISA_DTYPE_F32: {
      float f;
      std::memcpy(&f, row + 4 * col, 4);
      return f;
    }
    case QISA_DTYPE_F16: std::memcpy(&h, row + 2 * col, 2); return f16_to_f32(h);
    case QISA_DTYPE_BF16: std::memcpy(&h, row + 2 * col, 2); return bf16_to_f32(h);
    case QISA_DTYPE_Q8_0: {
      const uint8_t* block = row + (col / kQ8Block) * kQ8BlockBytes;
      std::memcpy(&h, block, 2);
      const auto q = static_cast<int8_t>(block[2 + col % kQ8Block]);
      return f16_to_f32(h) * static_cast<float>(q);
    }
  }
  return 0.0f;
}

void dequantize_row(qisa_dtype t, const uint8_t* src, size_t cols, float* dst) {
  if (t == QISA_DTYPE_F32) {
    std::memcpy(dst, src, cols * 4);
    return;
  }
  if (t == QISA_DTYPE_Q8_0) {
    for (size_t b0 = 0; b0 < cols; b0 += kQ8Block, src += kQ8BlockBytes) {
      uint16_t h;
      std::memcpy(&h, src, 2);
      const float d = f16_to_f32(h);
      const size_t n = std::min(kQ8Block, cols - b0);
      for (size_t i = 0; i < n; ++i) dst[b0 + i] = d * static_cast<float>(static_cast<int8_t>(src[2 + i]));
    }
    return;
  }
  for (size_t i = 0; i < cols; ++i) dst[i] = load_element(t, src, i);
}

}  // namespace qisa
