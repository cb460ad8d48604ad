// Re-quantized models (format/model_describe + the writer, as qisa-quantize
// does it) load, run, and stay close to the f32 model; describe() loses
// nothing.
#include <gtest/gtest.h>

#include "api_model.h"
#include "backends/quantum_stack.h"
#include "dtype.h"
#include "golden_file.h"
#include "model_describe.h"
#include "test_support.h"

namespace qisa {
namespace {

writer::ModelDesc requantize(const Model& m, qisa_dtype weights, qisa_dtype unitaries) {
  writer::ModelDesc d = writer::describe(m);
  for (auto& t : d.tensors) {
    const auto cls = writer::classify(t.name, t.shape.size());
    const qisa_dtype want = cls == writer::TensorClass::Unitary || cls == writer::TensorClass::Observable ? unitaries
                            : cls == writer::TensorClass::Vector ? QISA_DTYPE_F32
                                                                 : weights;
    if (want != t.dtype) t = writer::make_tensor(t.name, t.shape, writer::tensor_values(t), want);
  }
  return d;
}

TEST(Describe, RewritingAModelChangesNothing) {
  auto model = test::load_file(test::fixture("tiny-qisa-v2.qisa"));
  const auto once = writer::serialize(writer::describe(model_of(model.get())));
  auto r = test::load_bytes(once);
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  EXPECT_EQ(writer::serialize(writer::describe(model_of(r.model.get()))), once);
}

struct Bound {
  qisa_dtype weights, unitaries;
  float max_abs;  // largest logit error allowed against the trainer's f32 logits
};

class Quantized : public ::testing::TestWithParam<Bound> {};

TEST_P(Quantized, LogitsStayCloseToF32) {
  const Bound b = GetParam();
  const auto golden = writer::read_golden(test::fixture("tiny-qisa-v3.golden"));
  auto f32 = test::load_file(test::fixture("tiny-qisa-v3.qisa"));
  auto r = test::load_desc(requantize(model_of(f32.get()), b.weights, b.unitaries));
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  auto ctx = test::make_context(r.model.get());
  const auto logits = test::decode_all(ctx.get(), 0, {golden.tokens.begin(), golden.tokens.end()});
  EXPECT_LE(test::max_abs_diff(logits, golden.logits), b.max_abs);
  EXPECT_GT(test::max_abs_diff(logits, golden.logits), 0.0f);  // really quantized
  int agree = 0;
  const size_t V = golden.vocab;
  for (size_t t = 0; t < golden.tokens.size(); ++t) {
    auto arg = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + static_cast<std::ptrdiff_t>(t * V),
                              v.begin() + static_cast<std::ptrdiff_t>((t + 1) * V)) -
             v.begin();
    };
    agree += arg(logits) == arg(golden.logits);
  }
  EXPECT_GE(agree, 15) << "top-1 agreement over 16 positions";
}

INSTANTIATE_TEST_SUITE_P(Types, Quantized,
                         ::testing::Values(Bound{QISA_DTYPE_F16, QISA_DTYPE_F16, 1e-2f},
                                           Bound{QISA_DTYPE_BF16, QISA_DTYPE_BF16, 8e-2f},
                                           Bound{QISA_DTYPE_Q8_0, QISA_DTYPE_Q8_0, 8e-2f},
                                           Bound{QISA_DTYPE_Q4_0, QISA_DTYPE_Q8_0, 0.3f}));

// A unitary stored as f16, bf16 or q8_0 stands for its circuit's angles
// (docs/format.md): with f32 weights, every engine and value path gives the
// f32 model's logits (measured: at most 7e-7 apart), not those of the
// rounded matrix (2.5e-5 to 2e-4 apart on these tiny models).
TEST(Quantized, UnitariesStoredCoarserAreTheAnglesCircuit) {
  for (const char* kind : {"qisa-v1", "qisa-v3"}) {
    auto f32 = test::load_file(test::fixture(std::string("tiny-") + kind + ".qisa"));
    const auto tokens = test::random_tokens(16, 65, 3);
    for (qisa_dtype u : {QISA_DTYPE_F16, QISA_DTYPE_BF16, QISA_DTYPE_Q8_0}) {
      auto r = test::load_desc(requantize(model_of(f32.get()), QISA_DTYPE_F32, u));
      ASSERT_EQ(r.status, QISA_OK) << r.message;
      int projections = 0;
      for (const Layer& L : model_of(r.model.get()).layers)
        for (const Head& h : L.heads)
          for (Role role : kAllRoles)
            if (h.qp(role)) {
              EXPECT_EQ(h.qp(role)->unitary_re->dtype, u);
              EXPECT_TRUE(unitary_from_angles(*h.qp(role)));
              ++projections;
            }
      ASSERT_GT(projections, 0) << kind;
      for (qisa_engine e : {QISA_ENGINE_FAST, QISA_ENGINE_REFERENCE}) {
        for (qisa_value_path p : {QISA_VALUE_PATH_AUTO, QISA_VALUE_PATH_UNITARY, QISA_VALUE_PATH_GATES}) {
          // All 16 tokens at once, then one more past the window (a one-row step).
          auto logits = [&](const qisa_model* m) {
            auto c = test::make_context(m, 1, 64, e, p);
            std::vector<float> all = test::decode_all(c.get(), 0, tokens), step = test::decode_all(c.get(), 0, {7});
            all.insert(all.end(), step.begin(), step.end());
            return all;
          };
          EXPECT_LE(test::max_abs_diff(logits(f32.get()), logits(r.model.get())), 5e-6f)
              << kind << " " << dtype_name(u) << " engine " << e << " path " << p;
        }
      }
    }
  }
}

// Q4_0 is for weights: a unitary or observable stored in it is refused with
// a message naming the tensor (and qisa-quantize does not write one).
TEST(Quantized, Q4UnitariesAreRefused) {
  auto f32 = test::load_file(test::fixture("tiny-qisa-v3.qisa"));
  auto r = test::load_desc(requantize(model_of(f32.get()), QISA_DTYPE_F32, QISA_DTYPE_Q4_0));
  EXPECT_EQ(r.status, QISA_ERR_INVALID_MODEL);
  EXPECT_NE(r.message.find("is stored as q4_0, which is too coarse for a unitary"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace qisa
