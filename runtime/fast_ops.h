// Fast CPU kernel for what oneDNN does not do well: small products (one
// decode row). Tested against reference_ops through the engine
// (QISA_ENGINE_FAST vs _REFERENCE).
#pragma once

#include <cstdint>

namespace qisa::fast {

// out[r][o] = bias[o] + in[r] . w[o], with 8 independent partial sums per dot
// product so the compiler can vectorize without reordering a single sum.
void linear_small(float* out, const float* in, const float* w, const float* bias, int64_t R, int64_t I, int64_t O);

}  // namespace qisa::fast
