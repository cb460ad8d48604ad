// The memory estimate is an upper bound: the peak of live heap bytes while
// qisa_context_create runs (every allocation of the process, measured by
// the interposed allocator) never exceeds qisa_context_memory_estimate, over
// attention kinds, stored types, engines, value paths, sequence counts,
// batch sizes and windows longer than one pass. It is also not far above
// the peak, so a caller can budget with it.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "alloc/interpose.h"
#include "synthetic_model.h"
#include "test_support.h"

namespace qisa {
namespace {

struct Case {
  qisa_attention_kind kind;
  uint32_t n_embd, n_ctx, n_head;
  qisa_dtype dtype;
  qisa_engine engine;
  qisa_value_path path;
  int32_t max_sequences, max_batch;
};

TEST(ContextMemory, CreationStaysWithinTheEstimate) {
  const Case cases[] = {
      {QISA_ATTENTION_CSA, 16, 16, 1, QISA_DTYPE_F32, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, 1, 64},
      {QISA_ATTENTION_QISA_V3, 16, 16, 1, QISA_DTYPE_F32, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, 1, 64},
      {QISA_ATTENTION_QISA_V3, 128, 64, 1, QISA_DTYPE_F32, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, 4, 64},
      {QISA_ATTENTION_QISA_V3, 128, 64, 2, QISA_DTYPE_Q8_0, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, 4, 300},
      {QISA_ATTENTION_QISA_V3, 48, 300, 1, QISA_DTYPE_F16, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, 2, 1},
      {QISA_ATTENTION_QISA_V3, 48, 300, 1, QISA_DTYPE_BF16, QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_AUTO, 2, 8},
      {QISA_ATTENTION_QISA_V1, 32, 16, 2, QISA_DTYPE_F32, QISA_ENGINE_FAST, QISA_VALUE_PATH_OBSERVABLES, 3, 16},
      {QISA_ATTENTION_QISA_V2, 24, 16, 2, QISA_DTYPE_Q8_0, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, 8, 64},
      {QISA_ATTENTION_QISA_V2, 24, 16, 2, QISA_DTYPE_Q8_0, QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_OBSERVABLES, 1, 4},
      {QISA_ATTENTION_CSA, 256, 512, 4, QISA_DTYPE_Q8_0, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, 16, 64},
      {QISA_ATTENTION_QISA_V3, 128, 64, 2, QISA_DTYPE_Q4_0, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, 4, 300},
  };
  for (const Case& c : cases) {
    writer::SyntheticSpec s;
    s.kind = c.kind;
    s.n_embd = c.n_embd;
    s.n_ctx = c.n_ctx;
    s.n_head = c.n_head;
    s.weight_dtype = c.dtype;
    s.unitary_dtype = c.dtype;
    auto r = test::load_desc(writer::make_synthetic_model(s));
    ASSERT_EQ(r.status, QISA_OK) << r.message;
    qisa_context_params p;
    qisa_context_default_params(&p);
    p.backend = QISA_BACKEND_CPU;
    p.n_threads = 2;
    p.engine = c.engine;
    p.value_path = c.path;
    p.max_sequences = c.max_sequences;
    p.max_batch = c.max_batch;
    uint64_t estimate = 0;
    char err[512] = "";
    ASSERT_EQ(qisa_context_memory_estimate(r.model.get(), &p, &estimate, err, sizeof err), QISA_OK) << err;
    qisa_context* ctx = nullptr;
    // Once first: the process-wide first-use costs (oneDNN's and OpenMP's
    // own set-up) belong to no context.
    ASSERT_EQ(qisa_context_create(r.model.get(), &p, &ctx, err, sizeof err), QISA_OK) << err;
    qisa_context_free(ctx);
    alloc::reset_bytes();
    ASSERT_EQ(qisa_context_create(r.model.get(), &p, &ctx, err, sizeof err), QISA_OK) << err;
    const long long peak = alloc::peak_bytes();
    qisa_context_free(ctx);
    char what[160];
    std::snprintf(what, sizeof what, "%s n_embd %u n_ctx %u dtype %d engine %d path %d seqs %d batch %d",
                  qisa_attention_kind_string(c.kind), c.n_embd, c.n_ctx, static_cast<int>(c.dtype), c.engine, c.path,
                  c.max_sequences, c.max_batch);
    std::printf("%-90s peak %10lld  estimate %10llu\n", what, peak, static_cast<unsigned long long>(estimate));
    EXPECT_LE(static_cast<uint64_t>(peak), estimate) << what;
    EXPECT_LE(estimate, 2 * static_cast<uint64_t>(peak) + (uint64_t{8} << 20)) << what;
  }
}

// Where the gates take every call the fast engine keeps no dense U (2 MiB
// per layer here): the estimate drops by what creation then no longer
// allocates, and stays above it.
TEST(ContextMemory, EstimateLeavesOutTheUnitaryTheGatesReplace) {
  writer::SyntheticSpec s;
  s.kind = QISA_ATTENTION_QISA_V3;
  s.n_embd = 512;  // 512 states: auto takes the gates for every call
  auto r = test::load_desc(writer::make_synthetic_model(s));
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  struct Measured {
    long long peak;
    uint64_t estimate;
  };
  auto measure = [&](qisa_value_path path) {
    qisa_context_params p;
    qisa_context_default_params(&p);
    p.backend = QISA_BACKEND_CPU;
    p.n_threads = 1;
    p.value_path = path;
    Measured m{0, 0};
    char err[512] = "";
    EXPECT_EQ(qisa_context_memory_estimate(r.model.get(), &p, &m.estimate, err, sizeof err), QISA_OK) << err;
    qisa_context* ctx = nullptr;
    EXPECT_EQ(qisa_context_create(r.model.get(), &p, &ctx, err, sizeof err), QISA_OK) << err;
    qisa_context_free(ctx);
    alloc::reset_bytes();
    EXPECT_EQ(qisa_context_create(r.model.get(), &p, &ctx, err, sizeof err), QISA_OK) << err;
    m.peak = alloc::peak_bytes();
    qisa_context_free(ctx);
    return m;
  };
  const Measured gates = measure(QISA_VALUE_PATH_AUTO), dense = measure(QISA_VALUE_PATH_UNITARY);
  std::printf("auto: peak %lld estimate %llu; unitary: peak %lld estimate %llu\n", gates.peak,
              static_cast<unsigned long long>(gates.estimate), dense.peak,
              static_cast<unsigned long long>(dense.estimate));
  // Re and Im rows of U, n_embd columns, less the gates' own few KiB.
  const long long u_bytes = 2LL * 512 * 512 * 4 * s.n_layer * 95 / 100;
  EXPECT_GE(dense.peak - gates.peak, u_bytes) << "the gates path should not build the dense U";
  EXPECT_LE(static_cast<uint64_t>(gates.peak), gates.estimate);
  EXPECT_LE(static_cast<uint64_t>(dense.peak), dense.estimate);
  EXPECT_GE(dense.estimate - gates.estimate, static_cast<uint64_t>(u_bytes)) << "the estimate should follow";
}

}  // namespace
}  // namespace qisa
