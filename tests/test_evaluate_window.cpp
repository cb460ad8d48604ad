// qisa_evaluate_window: a causal model's window gives what decoding it
// gives (every kind, windows over several passes), the sequence is left as a
// decode would leave it, bad arguments change nothing, and the transposed
// models' limits. The trainer's logits of transposed models:
// test_runtime_golden.cpp.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "qisa.h"
#include "synthetic_model.h"
#include "test_support.h"

namespace qisa {
namespace {

using test::ContextPtr;
using test::random_tokens;

std::vector<float> evaluate(qisa_context* c, int32_t seq, const std::vector<int32_t>& tokens, uint32_t vocab) {
  std::vector<float> out(tokens.size() * vocab);
  EXPECT_EQ(qisa_evaluate_window(c, seq, tokens.data(), static_cast<int32_t>(tokens.size()), out.data(), out.size()),
            QISA_OK)
      << qisa_context_last_error(c);
  return out;
}

TEST(EvaluateWindow, EqualsDecodingForEveryKindAcrossPasses) {
  for (qisa_attention_kind kind :
       {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V1, QISA_ATTENTION_QISA_V2, QISA_ATTENTION_QISA_V3}) {
    writer::SyntheticSpec spec;
    spec.kind = kind;
    spec.n_embd = 8;
    spec.n_ctx = 300;  // more than the 256 rows a pass holds at max_batch 1
    spec.n_layer = 2;
    auto loaded = test::load_desc(writer::make_synthetic_model(spec));
    ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
    for (qisa_engine engine : {QISA_ENGINE_FAST, QISA_ENGINE_REFERENCE}) {
      ContextPtr narrow = test::make_context(loaded.model.get(), 2, 1, engine),
                 wide = test::make_context(loaded.model.get(), 2, 512, engine);
      const auto tokens = random_tokens(290, spec.vocab_size, 3);
      const auto window = evaluate(narrow.get(), 0, tokens, spec.vocab_size);
      const auto decoded = test::decode_all(wide.get(), 1, tokens);
      EXPECT_LE(test::max_abs_diff(window, decoded), 1e-4f) << kind << " engine " << engine;
      // The sequence continues as after decoding the window.
      int32_t len = 0;
      ASSERT_EQ(qisa_seq_length(narrow.get(), 0, &len), QISA_OK);
      EXPECT_EQ(len, 290);
      const auto next = test::decode_all(narrow.get(), 0, {5});
      const auto want = test::decode_all(wide.get(), 1, {5});
      EXPECT_LE(test::max_abs_diff(next, want), 1e-4f) << kind;
    }
  }
}

TEST(EvaluateWindow, BadArgumentsChangeNothing) {
  writer::SyntheticSpec spec;
  auto loaded = test::load_desc(writer::make_synthetic_model(spec));
  ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
  ContextPtr ctx = test::make_context(loaded.model.get(), 2, 64);
  qisa_context* c = ctx.get();
  test::decode_all(c, 0, {1, 2, 3});
  const std::vector<int32_t> tokens = {4, 5, 6, 7};
  const auto n = static_cast<int32_t>(tokens.size());
  std::vector<float> out(tokens.size() * spec.vocab_size);
  EXPECT_EQ(qisa_evaluate_window(nullptr, 0, tokens.data(), n, out.data(), out.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_evaluate_window(c, 0, nullptr, n, out.data(), out.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_evaluate_window(c, 0, tokens.data(), n, nullptr, out.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_evaluate_window(c, 0, tokens.data(), 0, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_evaluate_window(c, 0, tokens.data(), -4, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_evaluate_window(c, 2, tokens.data(), n, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_evaluate_window(c, -1, tokens.data(), n, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_evaluate_window(c, 0, tokens.data(), n, out.data(), out.size() - 1), QISA_ERR_BUFFER_TOO_SMALL);
  const std::vector<int32_t> bad = {1, 65};
  EXPECT_EQ(qisa_evaluate_window(c, 0, bad.data(), 2, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  std::vector<int32_t> longer(spec.n_ctx + 1, 1);
  std::vector<float> big(longer.size() * spec.vocab_size);
  EXPECT_EQ(qisa_evaluate_window(c, 0, longer.data(), static_cast<int32_t>(longer.size()), big.data(), big.size()),
            QISA_ERR_OUT_OF_RANGE);
  EXPECT_NE(std::string(qisa_context_last_error(c)).find("n_ctx"), std::string::npos) << qisa_context_last_error(c);
  int32_t len = 0;
  ASSERT_EQ(qisa_seq_length(c, 0, &len), QISA_OK);
  EXPECT_EQ(len, 3);  // untouched by every refusal
}

TEST(EvaluateWindow, TransposedModelsNeedTheirWindowInOnePass) {
  writer::SyntheticSpec spec;
  spec.kind = QISA_ATTENTION_QISA_V3;
  spec.n_embd = 8;
  spec.n_ctx = 300;
  spec.n_layer = 1;
  spec.reference_transposed = true;
  auto loaded = test::load_desc(writer::make_synthetic_model(spec));
  ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.backend = QISA_BACKEND_CPU;
  p.allow_non_causal = 1;
  p.max_batch = 1;  // 256 rows a pass
  qisa_context* raw = nullptr;
  ASSERT_EQ(qisa_context_create(loaded.model.get(), &p, &raw, nullptr, 0), QISA_OK);
  ContextPtr narrow(raw);
  const auto tokens = random_tokens(290, spec.vocab_size, 4);
  std::vector<float> out(tokens.size() * spec.vocab_size);
  EXPECT_EQ(qisa_evaluate_window(narrow.get(), 0, tokens.data(), 290, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_NE(std::string(qisa_context_last_error(narrow.get())).find("one pass"), std::string::npos);
  EXPECT_EQ(qisa_evaluate_window(narrow.get(), 0, tokens.data(), 256, out.data(), out.size()), QISA_OK);
  p.max_batch = 300;  // the whole window in one pass
  ASSERT_EQ(qisa_context_create(loaded.model.get(), &p, &raw, nullptr, 0), QISA_OK);
  ContextPtr wide(raw);
  EXPECT_EQ(qisa_evaluate_window(wide.get(), 0, tokens.data(), 290, out.data(), out.size()), QISA_OK)
      << qisa_context_last_error(wide.get());
  // allow_non_causal is 0 or 1.
  p.allow_non_causal = 2;
  EXPECT_EQ(qisa_context_create(loaded.model.get(), &p, &raw, nullptr, 0), QISA_ERR_INVALID_ARGUMENT);
}

TEST(EvaluateWindow, ParamsOfEarlierVersionsStillCreateContexts) {
  writer::SyntheticSpec spec;
  auto loaded = test::load_desc(writer::make_synthetic_model(spec));
  ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
  for (size_t size : {offsetof(qisa_context_params, max_memory_bytes), offsetof(qisa_context_params, allow_non_causal),
                      sizeof(qisa_context_params)}) {
    qisa_context_params p;
    qisa_context_default_params(&p);
    p.struct_size = size;
    qisa_context* raw = nullptr;
    EXPECT_EQ(qisa_context_create(loaded.model.get(), &p, &raw, nullptr, 0), QISA_OK) << size;
    qisa_context_free(raw);
  }
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.struct_size = offsetof(qisa_context_params, allow_non_causal) + 1;
  qisa_context* raw = nullptr;
  EXPECT_EQ(qisa_context_create(loaded.model.get(), &p, &raw, nullptr, 0), QISA_ERR_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace qisa
