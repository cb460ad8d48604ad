// The overflow policies' arithmetic, header-only so that programs driving
// qisa_decode themselves (tools/qisa-server) evaluate a long prompt exactly
// as qisa_generate does.
#pragma once

#include <cstddef>

#include "qisa.h"

namespace qisa {

// Tokens a full window keeps before the next one (slide: n_ctx - 1,
// shift-half: n_ctx / 2); they are re-evaluated from position 0.
inline size_t kept_on_overflow(size_t n_ctx, qisa_overflow policy) {
  return policy == QISA_OVERFLOW_SHIFT_HALF ? n_ctx / 2 : n_ctx - 1;
}

// How many of the last tokens an empty sequence holds after `n_tokens`
// tokens. Whatever the policy, the cache then equals a fresh evaluation of
// exactly those tokens from position 0 (a slide or a shift re-evaluates what
// it keeps), so evaluating only them leaves the same state.
inline size_t window_after(size_t n_ctx, qisa_overflow policy, size_t n_tokens) {
  if (n_tokens <= n_ctx || policy == QISA_OVERFLOW_ERROR) return n_tokens;
  const size_t keep = kept_on_overflow(n_ctx, policy), period = n_ctx - keep;  // tokens between two overflows
  return keep + 1 + (n_tokens - n_ctx - 1) % period;
}

}  // namespace qisa
