// libqisa's logits against the trainer's (LibTorch, eval mode) for a tiny
// trained model of each attention kind: tests/fixtures, made by
// scripts/make-test-fixtures.sh.
#include <gtest/gtest.h>

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
                  (p.param.path == QISA_VALUE_PATH_OBSERVABLES ? "_observables" : "");
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
                                           GoldenCase{"qisa-v3", QISA_ENGINE_FAST, QISA_VALUE_PATH_OBSERVABLES}),
                         case_name);

}  // namespace
}  // namespace qisa
