#include "dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>

namespace qisa {

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

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

namespace {

template <class T>
T read(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// f32: the bytes are the values.
void f32_quantize(const float* src, size_t cols, uint8_t* dst) {
  std::memcpy(dst, src, cols * 4);
}
void f32_dequantize(const uint8_t* src, size_t cols, float* dst) {
  std::memcpy(dst, src, cols * 4);
}
float f32_load(const uint8_t* row, size_t col) {
  return read<float>(row + 4 * col);
}

// f16 and bf16: one 16-bit value per element.
template <uint16_t (*Narrow)(float), float (*Widen)(uint16_t)>
void half_quantize(const float* src, size_t cols, uint8_t* dst) {
  for (size_t i = 0; i < cols; ++i) {
    const uint16_t h = Narrow(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}
template <uint16_t (*Narrow)(float), float (*Widen)(uint16_t)>
void half_dequantize(const uint8_t* src, size_t cols, float* dst) {
  for (size_t i = 0; i < cols; ++i) dst[i] = Widen(read<uint16_t>(src + 2 * i));
}
template <uint16_t (*Narrow)(float), float (*Widen)(uint16_t)>
float half_load(const uint8_t* row, size_t col) {
  return Widen(read<uint16_t>(row + 2 * col));
}

void q8_quantize(const float* src, size_t cols, uint8_t* dst) {
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
void q8_dequantize(const uint8_t* src, size_t cols, float* dst) {
  for (size_t b0 = 0; b0 < cols; b0 += kQ8Block, src += kQ8BlockBytes) {
    const float d = f16_to_f32(read<uint16_t>(src));
    const size_t n = std::min(kQ8Block, cols - b0);
    for (size_t i = 0; i < n; ++i) dst[b0 + i] = d * static_cast<float>(static_cast<int8_t>(src[2 + i]));
  }
}
float q8_load(const uint8_t* row, size_t col) {
  const uint8_t* block = row + (col / kQ8Block) * kQ8BlockBytes;
  return f16_to_f32(read<uint16_t>(block)) * static_cast<float>(static_cast<int8_t>(block[2 + col % kQ8Block]));
}

// Q4_0: the scale maps the block's largest-magnitude value m to nibble 0
// (d = m / -8), so the 16 levels cover [-|m|, |m|) with steps of |m| / 8;
// only a value near -m clamps to nibble 15 (an error of one step).
void q4_quantize(const float* src, size_t cols, uint8_t* dst) {
  for (size_t b0 = 0; b0 < cols; b0 += kQ4Block, dst += kQ4BlockBytes) {
    const size_t n = std::min(kQ4Block, cols - b0);
    float m = 0.0f;
    for (size_t i = 0; i < n; ++i)
      if (std::fabs(src[b0 + i]) > std::fabs(m)) m = src[b0 + i];
    const uint16_t dh = f32_to_f16(m / -8.0f);
    const float ds = f16_to_f32(dh);  // quantize against the scale as stored
    const float inv = ds != 0.0f ? 1.0f / ds : 0.0f;
    std::memcpy(dst, &dh, 2);
    uint8_t u[kQ4Block];
    for (size_t i = 0; i < kQ4Block; ++i) {
      const float v = i < n ? std::nearbyint(src[b0 + i] * inv) + 8.0f : 8.0f;  // padding: value 0
      u[i] = static_cast<uint8_t>(std::clamp(v, 0.0f, 15.0f));
    }
    for (size_t j = 0; j < kQ4Block / 2; ++j) dst[2 + j] = static_cast<uint8_t>(u[j] | u[j + kQ4Block / 2] << 4);
  }
}
inline int q4_nibble(const uint8_t* block, size_t i) {
  const uint8_t b = block[2 + i % (kQ4Block / 2)];
  return i < kQ4Block / 2 ? (b & 0xf) : (b >> 4);
}
void q4_dequantize(const uint8_t* src, size_t cols, float* dst) {
  for (size_t b0 = 0; b0 < cols; b0 += kQ4Block, src += kQ4BlockBytes) {
    const float d = f16_to_f32(read<uint16_t>(src));
    const size_t n = std::min(kQ4Block, cols - b0);
    for (size_t i = 0; i < n; ++i) dst[b0 + i] = d * static_cast<float>(q4_nibble(src, i) - 8);
  }
}
float q4_load(const uint8_t* row, size_t col) {
  const uint8_t* block = row + (col / kQ4Block) * kQ4BlockBytes;
  return f16_to_f32(read<uint16_t>(block)) * static_cast<float>(q4_nibble(block, col % kQ4Block) - 8);
}

#define QISA_HALF f32_to_f16, f16_to_f32
#define QISA_BHALF f32_to_bf16, bf16_to_f32
// One row per qisa_dtype, in enum order (checked below).
// Columns: type, name, alias, block, block bytes, value error, logit
// tolerance, unitary element / norm error, the conversions, whether it may
// hold unitaries and observables, whether products round the activations.
constexpr DtypeTraits kDtypes[] = {
    {QISA_DTYPE_F32, "f32", nullptr, 1, 4, 0.0, 1e-6, 1e-4, 1e-3, f32_quantize, f32_dequantize, f32_load, true, false},
    {QISA_DTYPE_F16, "f16", nullptr, 1, 2, 0x1p-11, 1e-2, 2e-3, 1e-2, half_quantize<QISA_HALF>,
     half_dequantize<QISA_HALF>, half_load<QISA_HALF>, true, false},
    {QISA_DTYPE_BF16, "bf16", nullptr, 1, 2, 0x1p-8, 8e-2, 1e-2, 5e-2, half_quantize<QISA_BHALF>,
     half_dequantize<QISA_BHALF>, half_load<QISA_BHALF>, true, false},
    {QISA_DTYPE_Q8_0, "q8_0", "q8", kQ8Block, kQ8BlockBytes, 1.0 / 254.0, 8e-2, 1.5e-2, 1e-1, q8_quantize,
     q8_dequantize, q8_load, true, true},
    // Too coarse for a unitary (a column's norm would err by several %).
    {QISA_DTYPE_Q4_0, "q4_0", "q4", kQ4Block, kQ4BlockBytes, 1.0 / 8.0, 0.3, 0.0, 0.0, q4_quantize, q4_dequantize,
     q4_load, false, true},
};
#undef QISA_HALF
#undef QISA_BHALF

constexpr bool in_enum_order() {
  for (size_t i = 0; i < std::size(kDtypes); ++i)
    if (static_cast<size_t>(kDtypes[i].type) != i) return false;
  return true;
}
static_assert(in_enum_order(), "kDtypes is indexed by qisa_dtype");
static_assert(std::size(kDtypes) == kDtypeCount, "kDtypeCount counts the rows");

}  // namespace

std::span<const DtypeTraits> dtypes() {
  return kDtypes;
}

const DtypeTraits* find_dtype(int t) {
  if (t < 0 || static_cast<size_t>(t) >= std::size(kDtypes)) return nullptr;
  return &kDtypes[t];
}

const DtypeTraits& dtype_traits(qisa_dtype t) {
  const DtypeTraits* d = find_dtype(static_cast<int>(t));
  return d ? *d : kDtypes[0];
}

const char* dtype_name(qisa_dtype t) {
  const DtypeTraits* d = find_dtype(static_cast<int>(t));
  return d ? d->name : "unknown";
}

std::optional<qisa_dtype> dtype_from_name(std::string_view name) {
  for (const DtypeTraits& d : kDtypes)
    if (name == d.name || (d.alias && name == d.alias)) return d.type;
  return std::nullopt;
}

std::string dtype_names(std::string_view separator) {
  std::string s;
  for (const DtypeTraits& d : kDtypes) {
    if (!s.empty()) s += separator;
    s += d.name;
    if (d.alias) {
      s += " (";
      s += d.alias;
      s += ')';
    }
  }
  return s;
}

bool dtype_valid(int t) {
  return find_dtype(t) != nullptr;
}

std::optional<uint64_t> row_bytes(qisa_dtype t, uint64_t cols) {
  const DtypeTraits* d = find_dtype(static_cast<int>(t));
  if (!d) return std::nullopt;
  const uint64_t blocks = cols / d->block + (cols % d->block != 0);
  if (blocks > std::numeric_limits<uint64_t>::max() / d->block_bytes) return std::nullopt;
  return blocks * d->block_bytes;
}

void quantize_row(qisa_dtype t, const float* src, size_t cols, uint8_t* dst) {
  dtype_traits(t).quantize(src, cols, dst);
}

void round_activations(const float* x, size_t n, float* out) {
  for (size_t b0 = 0; b0 < n; b0 += kQ4Block) {
    const size_t m = std::min(kQ4Block, n - b0);
    float amax = 0.0f;
    for (size_t i = 0; i < m; ++i) amax = std::max(amax, std::fabs(x[b0 + i]));
    const float dx = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (size_t i = 0; i < m; ++i) out[b0 + i] = dx * std::nearbyint(x[b0 + i] * inv);
  }
}

float load_element(qisa_dtype t, const uint8_t* row, size_t col) {
  return dtype_traits(t).load(row, col);
}

void dequantize_row(qisa_dtype t, const uint8_t* src, size_t cols, float* dst) {
  dtype_traits(t).dequantize(src, cols, dst);
}

}  // namespace qisa
