// A warm decode step allocates nothing: every malloc / operator new of the
// process (libqisa, oneDNN, libgomp) is counted while a context decodes one
// token per stream within the window, for CSA and QISA v3 with f32 and Q8_0
// weights. Steps that run oneDNN primitives (4 rows or more: the window
// re-evaluation past n_ctx, batches) do allocate: oneDNN 2.6 builds a small
// execution context per primitive call. For those the test checks that the
// count per step stays constant (nothing accumulates). Not built under
// sanitizers (they own malloc).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "synthetic_model.h"
#include "test_support.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<long> g_allocations{0};
std::atomic<bool> g_counting{false};
void count() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// Interpose the C allocator for the whole process (the library's own code,
// oneDNN and OpenMP included); operator new goes through malloc.
extern "C" {
void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  count();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void free(void* p) {
  __libc_free(p);
}
int posix_memalign(void** out, size_t align, size_t n) {
  count();
  *out = __libc_memalign(align, n);
  return *out ? 0 : ENOMEM;
}
void* aligned_alloc(size_t align, size_t n) {
  count();
  return __libc_memalign(align, n);
}
void* memalign(size_t align, size_t n) {
  count();
  return __libc_memalign(align, n);
}
}

namespace qisa {
namespace {

TEST(Allocations, InterpositionSeesAllocations) {
  g_allocations = 0;
  g_counting = true;
  auto* p = new std::vector<int>(100);
  g_counting = false;
  delete p;
  EXPECT_GE(g_allocations.load(), 2);  // the vector and its buffer: the counter works
}

TEST(Allocations, AWarmDecodeStepAllocatesNothing) {
  for (auto kind : {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V3}) {
    for (auto dtype : {QISA_DTYPE_F32, QISA_DTYPE_Q8_0}) {
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
        g_allocations = 0;
        g_counting = true;
        // Within the window: 8 steps of one stream, then 7 of two at once
        // (sequence 0 ends at 15 tokens of its 16).
        for (int i = 0; i < 8; ++i) step(0, (i * 7) % 60);
        for (int i = 0; i < 7; ++i) {
          const qisa_batch_entry two[] = {{0, i + 3, 1}, {1, i + 4, 1}};
          EXPECT_EQ(qisa_decode(ctx.get(), two, 2), QISA_OK);
        }
        g_counting = false;
        EXPECT_EQ(g_allocations.load(), 0) << what;
        step(0, 1);  // the 16th token: the window is full from here on
        long per_round[2];
        for (long& n : per_round) {  // sliding past n_ctx: constant per step
          g_allocations = 0;
          g_counting = true;
          for (int i = 0; i < 10; ++i) step(0, (i * 5) % 60);
          g_counting = false;
          n = g_allocations.load();
        }
        EXPECT_EQ(per_round[0], per_round[1]) << what;
      }
    }
  }
}

}  // namespace
}  // namespace qisa
