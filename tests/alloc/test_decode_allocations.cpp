// A warm decode step allocates nothing: every malloc / operator new of the
// process (libqisa, oneDNN, libgomp) is counted while a context decodes one
// token per stream within the window, for CSA and QISA v3 with f32 and Q8_0
// weights. Steps that run oneDNN primitives (4 rows or more: the window
// re-evaluation past n_ctx, batches) do allocate: oneDNN 2.6 builds a small
// execution context per primitive call. For those the test checks that the
// count per step stays constant (nothing accumulates). Not built under
// sanitizers (they own malloc).
#include <gtest/gtest.h>

#include <string>

#include "alloc/interpose.h"
#include "synthetic_model.h"
#include "test_support.h"

namespace qisa {
namespace {

TEST(Allocations, InterpositionSeesAllocations) {
  alloc::reset_allocations();
  alloc::set_counting(true);
  std::vector<int>* volatile p = new std::vector<int>(100);  // volatile: the pair is not elided
  alloc::set_counting(false);
  delete p;
  EXPECT_GE(alloc::allocations(), 2);  // the vector and its buffer: the counter works
}

TEST(Allocations, AWarmDecodeStepAllocatesNothing) {
  for (auto kind : {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V3, QISA_ATTENTION_QSAT}) {
    for (auto dtype : {QISA_DTYPE_F32, QISA_DTYPE_Q8_0, QISA_DTYPE_Q4_0}) {
      for (uint32_t d : {16u, 128u}) {
        writer::SyntheticSpec s;
        s.kind = kind;
        s.n_embd = d;
        s.weight_dtype = dtype;
        s.unitary_dtype = dtype;
        auto r = test::load_desc(writer::make_synthetic_model(s));
        ASSERT_EQ(r.status, QISA_OK) << r.message;
        auto ctx = test::make_context(r.model.get(), 2, 64);
        auto step = [&](int32_t seq, int32_t token) {
          const qisa_batch_entry e{seq, token, 1};
          ASSERT_EQ(qisa_decode(ctx.get(), &e, 1), QISA_OK);
          const float* l = nullptr;
          ASSERT_EQ(qisa_get_logits(ctx.get(), 0, &l), QISA_OK);
        };
        const std::string what = std::string(qisa_attention_kind_string(kind)) + " dtype " +
                                 std::to_string(static_cast<int>(dtype)) + " n_embd " + std::to_string(d);
        for (int i = 0; i < 20; ++i) step(0, i % 60);  // warm-up, including a slide past n_ctx 16
        ASSERT_EQ(qisa_seq_clear(ctx.get(), 0), QISA_OK);
        ASSERT_EQ(qisa_seq_clear(ctx.get(), 1), QISA_OK);
        alloc::reset_allocations();
        alloc::set_counting(true);
        // Within the window: 8 steps of one stream, then 7 of two at once
        // (sequence 0 ends at 15 tokens of its 16).
        for (int i = 0; i < 8; ++i) step(0, (i * 7) % 60);
        for (int i = 0; i < 7; ++i) {
          const qisa_batch_entry two[] = {{0, i + 3, 1}, {1, i + 4, 1}};
          EXPECT_EQ(qisa_decode(ctx.get(), two, 2), QISA_OK);
        }
        alloc::set_counting(false);
        EXPECT_EQ(alloc::allocations(), 0) << what;
        step(0, 1);  // the 16th token: the window is full from here on
        long per_round[2];
        for (long& n : per_round) {  // sliding past n_ctx: constant per step
          alloc::reset_allocations();
          alloc::set_counting(true);
          for (int i = 0; i < 10; ++i) step(0, (i * 5) % 60);
          alloc::set_counting(false);
          n = alloc::allocations();
        }
        EXPECT_EQ(per_round[0], per_round[1]) << what;
      }
    }
  }
}

}  // namespace
}  // namespace qisa
