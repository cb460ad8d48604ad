// libqisa's logits against the trainer's (LibTorch, eval mode) for a tiny
// trained model of each attention kind: tests/fixtures, made by
// scripts/make-test-fixtures.sh.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "golden_file.h"
#include "test_support.h"

namespace qisa {
namespace {

struct GoldenCase {
  const char* kind;
  qisa_engine engine;
  qisa_value_path path;
};

void PrintTo(const GoldenCase& c, std::ostream* os) {
  *os << c.kind;
}

std::string case_name(const ::testing::TestParamInfo<GoldenCase>& p) {
  std::string n = std::string(p.param.kind) + (p.param.engine == QISA_ENGINE_FAST ? "_fast" : "_reference") +
                  (p.param.path == QISA_VALUE_PATH_OBSERVABLES ? "_observables"
                   : p.param.path == QISA_VALUE_PATH_GATES     ? "_gates"
                                                               : "");
  for (auto& ch : n) {
    if (ch == '-') ch = '_';
  }
  return n;
}

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, LogitsMatchTheTrainer) {
  const auto c = GetParam();
  const auto golden = writer::read_golden(test::fixture(std::string("tiny-") + c.kind + ".golden"));
  auto model = test::load_file(test::fixture(std::string("tiny-") + c.kind + ".qisa"));
  auto ctx = test::make_context(model.get(), 1, 64, c.engine, c.path);
  const std::vector<int32_t> tokens(golden.tokens.begin(), golden.tokens.end());
  const auto all_at_once = test::decode_all(ctx.get(), 0, tokens);
  EXPECT_LE(test::max_abs_diff(all_at_once, golden.logits), 1e-4f) << c.kind;
  // The same one token at a time through the cache.
  ASSERT_EQ(qisa_seq_clear(ctx.get(), 0), QISA_OK);
  std::vector<float> incremental;
  for (int32_t t : tokens) {
    const auto l = test::decode_all(ctx.get(), 0, {t});
    incremental.insert(incremental.end(), l.begin(), l.end());
  }
  EXPECT_LE(test::max_abs_diff(incremental, golden.logits), 1e-4f) << c.kind;
  // The same as one window: qisa_evaluate_window.
  qisa_model_info info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(qisa_model_get_info(model.get(), &info), QISA_OK);
  std::vector<float> window(tokens.size() * static_cast<size_t>(info.vocab_size));
  ASSERT_EQ(qisa_evaluate_window(ctx.get(), 0, tokens.data(), static_cast<int32_t>(tokens.size()), window.data(),
                                 window.size()),
            QISA_OK)
      << qisa_context_last_error(ctx.get());
  EXPECT_LE(test::max_abs_diff(window, golden.logits), 1e-4f) << c.kind;
  int32_t len = 0;
  ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &len), QISA_OK);
  EXPECT_EQ(len, static_cast<int32_t>(tokens.size()));
}

INSTANTIATE_TEST_SUITE_P(Kinds, Golden,
                         ::testing::Values(GoldenCase{"csa", QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO},
                                           GoldenCase{"csa", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_AUTO},
                                           GoldenCase{"qisa-v1", QISA_ENGINE_FAST, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qisa-v1", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qisa-v1", QISA_ENGINE_FAST, QISA_VALUE_PATH_OBSERVABLES},
                                           GoldenCase{"qisa-v2", QISA_ENGINE_FAST, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qisa-v2", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qisa-v2", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_OBSERVABLES},
                                           GoldenCase{"qisa-v3", QISA_ENGINE_FAST, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qisa-v3", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qisa-v3", QISA_ENGINE_FAST, QISA_VALUE_PATH_OBSERVABLES},
                                           GoldenCase{"qisa-v3", QISA_ENGINE_FAST, QISA_VALUE_PATH_GATES},
                                           GoldenCase{"qisa-v1", QISA_ENGINE_FAST, QISA_VALUE_PATH_GATES},
                                           // sparse: 3 nearest keys + 2 recent positions of 16
                                           GoldenCase{"qsat", QISA_ENGINE_FAST, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qsat", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qsat", QISA_ENGINE_FAST, QISA_VALUE_PATH_OBSERVABLES},
                                           GoldenCase{"qsat", QISA_ENGINE_FAST, QISA_VALUE_PATH_GATES},
                                           // byte-level BPE, 384 tokens
                                           GoldenCase{"qisa-v3-bpe", QISA_ENGINE_FAST, QISA_VALUE_PATH_UNITARY},
                                           GoldenCase{"qisa-v3-bpe", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_UNITARY}),
                         case_name);

// Models trained with the research code's transposed attention: only whole
// windows run them (qisa_evaluate_window on a context created with
// allow_non_causal), and they give the trainer's logits.
class GoldenTransposed : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTransposed, WholeWindowsMatchTheTrainerAndNothingElseRuns) {
  const auto c = GetParam();
  const std::string name = std::string("tiny-") + c.kind + "-transposed";
  const auto golden = writer::read_golden(test::fixture(name + ".golden"));
  auto model = test::load_file(test::fixture(name + ".qisa"));
  qisa_model_info info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(qisa_model_get_info(model.get(), &info), QISA_OK);
  EXPECT_EQ(info.reference_transposed, 1);

  qisa_context_params p;
  qisa_context_default_params(&p);
  p.engine = c.engine;
  p.backend = QISA_BACKEND_CPU;
  qisa_context* raw = nullptr;
  char err[512] = "";
  EXPECT_EQ(qisa_context_create(model.get(), &p, &raw, err, sizeof err), QISA_ERR_NOT_CAUSAL);
  EXPECT_EQ(raw, nullptr);
  EXPECT_NE(std::string(err).find("allow_non_causal"), std::string::npos) << err;
  p.allow_non_causal = 1;
  ASSERT_EQ(qisa_context_create(model.get(), &p, &raw, err, sizeof err), QISA_OK) << err;
  test::ContextPtr ctx(raw);

  const std::vector<int32_t> tokens(golden.tokens.begin(), golden.tokens.end());
  const auto n = static_cast<int32_t>(tokens.size());
  std::vector<float> logits(tokens.size() * static_cast<size_t>(info.vocab_size));
  ASSERT_EQ(qisa_evaluate_window(ctx.get(), 0, tokens.data(), n, logits.data(), logits.size()), QISA_OK)
      << qisa_context_last_error(ctx.get());
  EXPECT_LE(test::max_abs_diff(logits, golden.logits), 1e-4f) << c.kind;

  // The future leaks: a window's first half, evaluated alone, gives its
  // positions other logits than the whole window did.
  std::vector<float> half(logits.size() / 2);
  ASSERT_EQ(qisa_evaluate_window(ctx.get(), 0, tokens.data(), n / 2, half.data(), half.size()), QISA_OK);
  EXPECT_GT(test::max_abs_diff(half, std::vector<float>(logits.begin(), logits.begin() + half.size())), 1e-3f);

  // Nothing that decodes runs it, and refusing changes no state.
  int32_t len = 0;
  ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &len), QISA_OK);
  EXPECT_EQ(len, n / 2);
  const qisa_batch_entry e{0, tokens[0], 1};
  EXPECT_EQ(qisa_decode(ctx.get(), &e, 1), QISA_ERR_NOT_CAUSAL);
  EXPECT_NE(std::string(qisa_context_last_error(ctx.get())).find("qisa_evaluate_window"), std::string::npos);
  int32_t greedy = 0;
  EXPECT_EQ(qisa_decode_greedy(ctx.get(), &e, 1, &greedy), QISA_ERR_NOT_CAUSAL);
  EXPECT_EQ(qisa_generate(ctx.get(), "ROMEO:", nullptr, nullptr), QISA_ERR_NOT_CAUSAL);
  ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &len), QISA_OK);
  EXPECT_EQ(len, n / 2);
}

INSTANTIATE_TEST_SUITE_P(Kinds, GoldenTransposed,
                         ::testing::Values(GoldenCase{"csa", QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO},
                                           GoldenCase{"csa", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_AUTO},
                                           GoldenCase{"qisa-v3", QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO},
                                           GoldenCase{"qisa-v3", QISA_ENGINE_REFERENCE, QISA_VALUE_PATH_AUTO}),
                         case_name);

}  // namespace
}  // namespace qisa
