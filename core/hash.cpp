#include "hash.h"

#include <cstring>

namespace qisa {

namespace {

constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;

uint64_t mix(uint64_t x) {  // a bijective finalizer (splitmix64)
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t hash64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  // Four independent lanes of 8-byte words keep the multiplier busy.
  uint64_t lane[4] = {seed ^ kMul, seed + 1, seed ^ (kMul << 1), seed - 1};
  size_t i = 0;
  for (; i + 32 <= size; i += 32) {
    for (int j = 0; j < 4; ++j) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * j, 8);
      lane[j] = (lane[j] ^ w) * kMul;
      lane[j] ^= lane[j] >> 29;
    }
  }
  uint64_t h = mix(lane[0]) ^ mix(lane[1] + 1) ^ mix(lane[2] + 2) ^ mix(lane[3] + 3) ^ mix(size);
  uint8_t tail[32] = {};
  if (size > i) std::memcpy(tail, p + i, size - i);
  for (int j = 0; j < 4; ++j) {
    uint64_t w;
    std::memcpy(&w, tail + 8 * j, 8);
    h = mix(h ^ w);
  }
  return h;
}

}  // namespace qisa
