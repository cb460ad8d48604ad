// A fast non-cryptographic 64-bit hash of bytes: model identities and
// checksums of saved sequence states (it detects accidents and mix-ups, not
// tampering).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qisa {

uint64_t hash64(const void* data, size_t size, uint64_t seed = 0);

}  // namespace qisa
