// What a context will cost before it is made: the bytes of host memory its
// creation allocates (an upper bound, checked against measured allocations
// in tests/alloc) and the work of building dense observables. Context
// creation refuses, before allocating, what exceeds the limits.
#pragma once

#include <cstdint>

#include "model.h"
#include "qisa.h"

namespace qisa {

// Rows per forward pass: max_batch, or a whole window up to this many rows.
// Longer windows are re-evaluated in several passes, so scratch does not
// grow with n_ctx.
constexpr int64_t kMaxWindowRows = 256;
int64_t context_max_rows(const ModelConfig& c, const qisa_context_params& p);

// Complex multiply-adds above which the observables value path refuses to
// build U^dag P U densely (h D^3 per projection without stored
// observables; measured 0.4 s per 2^28 on one core, so ~1.6 s at this limit).
constexpr uint64_t kMaxDenseObservableWork = uint64_t{1} << 30;

// Upper bound of the host bytes context creation allocates (CPU backend; a
// device backend allocates the same caches and scratch in its own memory).
uint64_t context_memory_bytes(const Model& m, const qisa_context_params& p, int32_t threads);

// The limit a context's estimate is held to: params.max_memory_bytes when
// set, else the machine's physical memory; never above RLIMIT_AS.
uint64_t context_memory_limit(const qisa_context_params& p);

// Throws QISA_ERR_OUT_OF_MEMORY or QISA_ERR_UNSUPPORTED with the reason
// when a context with these params must not be made.
void check_context_budget(const Model& m, const qisa_context_params& p, int32_t threads);

}  // namespace qisa
