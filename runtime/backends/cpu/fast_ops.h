// Fast CPU versions of the row operations around the products: LayerNorm,
// causal attention over the cache and the amplitude encoding, with
// vectorized sums (the reference loops add one term at a time, which the
// compiler may not reorder).
// Tested against reference_ops through the engine (QISA_ENGINE_FAST vs
// _REFERENCE).
#pragma once

#include <cstdint>

#include "sparse_selection.h"

namespace qisa::fast {

// Same contract as ref::attention_row (LayerNorm: the kernel sets'
// layernorm); scratch: scores and positions, n each.
void attention_row(float* out, const float* q, const float* keys, const float* key_norms, const float* values,
                   int64_t n, int64_t h, int64_t k_stride, int64_t v_stride, int64_t norm_stride, const ScoreRule& rule,
                   float* scores, uint32_t* positions);
// Same contract as ref::encode_amplitudes (the norm as a vectorized dot).
void encode_amplitudes(float* psi, const float* x, int64_t R, int64_t d, int64_t D, bool normalized);

// The positions a sparse rule keeps (select_positions_reference's rule) in
// O(n): s[0..n) are the selection scores, compacted in place to the kept
// ones; pos[0..m) gets their positions, ascending; returns m. Needs
// s.sparse() and n > s.top_k.
int64_t select_positions(float* s, int64_t n, Sparsity sp, uint32_t* pos);

}  // namespace qisa::fast
