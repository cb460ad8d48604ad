// Every allocation fails once in turn (SQLite's malloc-failure testing):
// model loading, context creation, decoding, generation, state save/load
// and tokenizing are run again and again with the k-th allocation failing,
// k = 1, 2, ... until a run needs no more allocations than k - 1. Each
// failed run must return a clean status with a message and leave nothing
// behind (no handle, the sequences as they were); the next run without a
// failure must give the same logits as if nothing had failed.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "alloc/interpose.h"
#include "synthetic_model.h"
#include "test_support.h"

namespace qisa {
namespace {

// Before oneDNN reads its settings (at its first use, after main starts).
const int kNoPrimitiveCache = setenv("DNNL_PRIMITIVE_CACHE_CAPACITY", "0", 1);

// Runs call() with its k-th allocation failing, for k = 1, 2, ... until a
// run is not hit, and check(k, status, failed) after each run (with no
// failure armed: the checks allocate); returns the number of runs hit.
template <class Call, class Check>
int for_each_failure(Call&& call, Check&& check) {
  for (long k = 1; k < 100000; ++k) {
    alloc::fail_nth(k);
    const qisa_status st = call();
    const bool failed = alloc::failure_happened();
    alloc::fail_nth(0);
    check(k, st, failed);
    if (!failed) return static_cast<int>(k - 1);
  }
  ADD_FAILURE() << "no run completed";
  return 0;
}

bool is_memory_status(qisa_status st) {
  return st == QISA_ERR_OUT_OF_MEMORY || st == QISA_ERR_BACKEND;
}

std::vector<uint8_t> model_bytes(qisa_attention_kind kind, qisa_dtype dtype) {
  writer::SyntheticSpec s;
  s.kind = kind;
  s.n_embd = 16;
  s.n_layer = 1;
  s.weight_dtype = dtype;
  s.unitary_dtype = dtype;
  return writer::serialize(writer::make_synthetic_model(s));
}

TEST(AllocationFailure, ModelLoading) {
  const auto bytes = model_bytes(QISA_ATTENTION_QISA_V3, QISA_DTYPE_F32);
  test::TempFile file("alloc-failure.qisa");
  {
    std::ofstream(file.path(), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  for (int how = 0; how < 3; ++how) {
    qisa_model_params mp;
    qisa_model_default_params(&mp);
    mp.use_mmap = how == 1;
    mp.check_weights_finite = 1;
    qisa_model* m = nullptr;
    char err[256] = "";
    const int hit = for_each_failure(
        [&] {
          m = nullptr;
          err[0] = '\0';
          return how == 0 ? qisa_model_load_buffer(bytes.data(), bytes.size(), &mp, &m, err, sizeof err)
                          : qisa_model_load_file(file.path().c_str(), &mp, &m, err, sizeof err);
        },
        [&](long k, qisa_status st, bool failed) {
          if (failed) {
            EXPECT_EQ(st, QISA_ERR_OUT_OF_MEMORY) << "load " << how << ", allocation " << k << ": " << err;
            EXPECT_EQ(m, nullptr);
            EXPECT_NE(err[0], '\0');
          } else {
            EXPECT_EQ(st, QISA_OK) << err;
          }
          qisa_model_free(m);
        });
    EXPECT_GT(hit, 10) << "loading allocates: the failures must have been injected";
  }
}

TEST(AllocationFailure, ContextCreation) {
  for (auto kind : {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V3}) {
    for (auto dtype : {QISA_DTYPE_F32, QISA_DTYPE_Q8_0}) {
      auto r = test::load_bytes(model_bytes(kind, dtype));
      ASSERT_EQ(r.status, QISA_OK) << r.message;
      for (auto engine : {QISA_ENGINE_FAST, QISA_ENGINE_REFERENCE}) {
        qisa_context_params p;
        qisa_context_default_params(&p);
        p.backend = QISA_BACKEND_CPU;
        p.engine = engine;
        p.max_sequences = 2;
        // The same context without failures, as the oracle; also does the
        // process's first-use set-up of oneDNN outside the failure runs.
        auto oracle = test::make_context(r.model.get(), 2, 64, engine);
        const std::vector<float> want = test::decode_all(oracle.get(), 1, {3, 1, 4, 1, 5});
        qisa_context* c = nullptr;
        char err[256] = "";
        const int hit = for_each_failure(
            [&] {
              err[0] = '\0';
              return qisa_context_create(r.model.get(), &p, &c, err, sizeof err);
            },
            [&](long k, qisa_status st, bool failed) {
              if (failed && st != QISA_OK) {
                EXPECT_TRUE(is_memory_status(st)) << "allocation " << k << ": status " << st << ": " << err;
                EXPECT_EQ(c, nullptr);
                EXPECT_NE(err[0], '\0');
              } else {
                // Success, also where a failed allocation was recovered
                // from (oneDNN then takes another implementation): the
                // context must compute what the oracle does.
                ASSERT_EQ(st, QISA_OK) << err;
                EXPECT_LE(test::max_abs_diff(test::decode_all(c, 1, {3, 1, 4, 1, 5}), want), 1e-5f)
                    << "allocation " << k;
              }
              qisa_context_free(c);
              c = nullptr;
            });
        EXPECT_GT(hit, 10);
        EXPECT_EQ(kNoPrimitiveCache, 0);
      }
    }
  }
}

// Decoding (a batch over two sequences, then steps that slide past n_ctx),
// with a twin context that never fails as the oracle.
TEST(AllocationFailure, DecodingAndState) {
  for (auto dtype : {QISA_DTYPE_F32, QISA_DTYPE_Q8_0, QISA_DTYPE_Q4_0}) {
    auto r = test::load_bytes(model_bytes(QISA_ATTENTION_QISA_V3, dtype));
    ASSERT_EQ(r.status, QISA_OK) << r.message;
    auto ctx = test::make_context(r.model.get(), 2, 64);
    auto twin = test::make_context(r.model.get(), 2, 64);
    std::vector<qisa_batch_entry> batch;
    for (int32_t i = 0; i < 10; ++i) batch.push_back({i % 2, 3 + i, 1});
    int total_hits = 0;
    for (int round = 0; round < 6; ++round) {  // round 0: a batch; later rounds slide sequence 0
      std::vector<qisa_batch_entry> step =
          round == 0 ? batch : std::vector<qisa_batch_entry>{{0, 7 + round, 1}, {1, 9 + round, 1}};
      ASSERT_EQ(qisa_decode(twin.get(), step.data(), static_cast<int32_t>(step.size())), QISA_OK);
      int32_t len_before[2];
      std::vector<uint8_t> before[2];  // each sequence's state, to restore an emptied one
      for (int32_t s = 0; s < 2; ++s) {
        qisa_seq_length(ctx.get(), s, &len_before[s]);
        size_t need = 0;
        qisa_seq_state_save(ctx.get(), s, nullptr, 0, &need);
        before[s].resize(need);
        ASSERT_EQ(qisa_seq_state_save(ctx.get(), s, before[s].data(), need, &need), QISA_OK);
      }
      total_hits += for_each_failure(
          [&] { return qisa_decode(ctx.get(), step.data(), static_cast<int32_t>(step.size())); },
          [&](long k, qisa_status st, bool failed) {
            if (!failed) {
              ASSERT_EQ(st, QISA_OK) << qisa_context_last_error(ctx.get());
              return;
            }
            EXPECT_TRUE(is_memory_status(st)) << "allocation " << k << ": " << qisa_context_last_error(ctx.get());
            for (int32_t s = 0; s < 2; ++s) {
              int32_t n = -1;
              qisa_seq_length(ctx.get(), s, &n);
              if (n != len_before[s]) {
                // Only a sequence whose window was being re-evaluated may
                // change, and then it is empty: restore it.
                EXPECT_EQ(n, 0) << "sequence " << s;
                EXPECT_EQ(len_before[s], 16) << "sequence " << s << " changed without a slide";
                ASSERT_EQ(qisa_seq_state_load(ctx.get(), s, before[s].data(), before[s].size()), QISA_OK);
              }
            }
          });
      for (int32_t i = 0; i < static_cast<int32_t>(step.size()); ++i) {
        const float *a = nullptr, *b = nullptr;
        ASSERT_EQ(qisa_get_logits(ctx.get(), i, &a), QISA_OK);
        ASSERT_EQ(qisa_get_logits(twin.get(), i, &b), QISA_OK);
        for (int v = 0; v < 65; ++v) ASSERT_NEAR(a[v], b[v], 1e-5f) << "round " << round << " entry " << i;
      }
      if (round == 0) {  // fill sequence 0 to its window
        std::vector<qisa_batch_entry> fill;
        for (int32_t i = 0; i < 11; ++i) fill.push_back({0, 20 + i, 0});
        ASSERT_EQ(qisa_decode(ctx.get(), fill.data(), 11), QISA_OK);
        ASSERT_EQ(qisa_decode(twin.get(), fill.data(), 11), QISA_OK);
      }
    }
    // State save and load under failures.
    size_t need = 0;
    qisa_seq_state_save(ctx.get(), 0, nullptr, 0, &need);
    std::vector<uint8_t> state(need);
    ASSERT_EQ(qisa_seq_state_save(ctx.get(), 0, state.data(), need, &need), QISA_OK);
    total_hits += for_each_failure([&] { return qisa_seq_state_load(ctx.get(), 1, state.data(), state.size()); },
                                   [&](long, qisa_status st, bool failed) {
                                     EXPECT_EQ(st, failed ? QISA_ERR_OUT_OF_MEMORY : QISA_OK)
                                         << qisa_context_last_error(ctx.get());
                                   });
    int32_t n0 = 0, n1 = 0;
    qisa_seq_length(ctx.get(), 0, &n0);
    qisa_seq_length(ctx.get(), 1, &n1);
    EXPECT_EQ(n0, n1);
    EXPECT_GT(total_hits, 0) << "decoding with oneDNN primitives allocates: failures must have been injected";
  }
}

TEST(AllocationFailure, GenerationAndTokenizing) {
  auto r = test::load_bytes(model_bytes(QISA_ATTENTION_QISA_V3, QISA_DTYPE_F32));
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  auto ctx = test::make_context(r.model.get(), 1, 64);
  qisa_generate_params gp;
  qisa_generate_default_params(&gp);
  gp.max_tokens = 40;
  // A prompt the synthetic vocabulary holds.
  const int32_t ids[] = {5, 9, 14, 20, 27, 33, 40, 51, 2, 8};
  char prompt[128];
  size_t len = 0;
  ASSERT_EQ(qisa_detokenize(r.model.get(), ids, 10, prompt, sizeof prompt, &len), QISA_OK);
  qisa_generate_result res;
  const int hit = for_each_failure(
      [&] {
        std::memset(&res, 0, sizeof res);
        res.struct_size = sizeof res;
        return qisa_generate(ctx.get(), prompt, &gp, &res);
      },
      [&](long k, qisa_status st, bool failed) {
        if (failed) {
          EXPECT_TRUE(is_memory_status(st)) << "allocation " << k << ": " << qisa_context_last_error(ctx.get());
          EXPECT_NE(qisa_context_last_error(ctx.get())[0], '\0');
        } else {
          EXPECT_EQ(st, QISA_OK) << qisa_context_last_error(ctx.get());
          EXPECT_EQ(res.n_generated, 40);
        }
      });
  EXPECT_GT(hit, 2);
  int32_t toks[64];
  size_t n = 0;
  char err[128] = "";
  const int hit2 = for_each_failure(
      [&] { return qisa_tokenize(r.model.get(), prompt, len, toks, 64, &n, 0, err, sizeof err); },
      [&](long, qisa_status st, bool failed) { EXPECT_EQ(st, failed ? QISA_ERR_OUT_OF_MEMORY : QISA_OK) << err; });
  EXPECT_GT(hit2, 0);
}

}  // namespace
}  // namespace qisa
