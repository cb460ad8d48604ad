// The CUDA engine against the CPU engines, every attention kind: logits
// (<= 1e-3 against the reference engine), incremental vs full window,
// batched vs single, sliding past n_ctx, state moved between CPU and GPU
// contexts, and the observables path; the trainer's golden logits of every
// kind (<= 1e-4). Every test skips, visibly, where no CUDA device is usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "api_context.h"
#include "api_model.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/quantum_stack.h"
#include "dtype.h"
#include "golden_file.h"
#include "sampler.h"
#include "synthetic_model.h"
#include "test_support.h"

namespace qisa {
namespace {

struct Case {
  qisa_attention_kind kind;
  uint32_t n_embd, n_head;
  qisa_ln_placement ln;
  qisa_dtype dtype;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  std::string kind = qisa_attention_kind_string(c.kind);
  std::replace(kind.begin(), kind.end(), '-', '_');
  return kind + "_d" + std::to_string(c.n_embd) + "_h" + std::to_string(c.n_head) +
         (c.ln == QISA_LN_PRE ? "_pre" : "_post") + "_t" + std::to_string(static_cast<int>(c.dtype));
}

test::ModelPtr model(const Case& c, qisa_dtype dtype) {
  writer::SyntheticSpec s;
  s.kind = c.kind;
  s.n_embd = c.n_embd;
  s.n_head = c.n_head;
  s.ln_placement = c.ln;
  s.activation = c.ln == QISA_LN_POST ? QISA_ACTIVATION_GELU : QISA_ACTIVATION_RELU;
  s.weight_dtype = dtype;
  s.unitary_dtype = dtype;
  s.n_layer = 2;
  auto r = test::load_desc(writer::make_synthetic_model(s));
  EXPECT_EQ(r.status, QISA_OK) << r.message;
  return std::move(r.model);
}

test::ModelPtr model(const Case& c) {
  return model(c, c.dtype);
}

// The "weights N bytes" of a CUDA context's backend line.
size_t device_weight_bytes(const qisa_context* ctx) {
  const std::string info = qisa_context_backend_info(ctx);
  const size_t at = info.find("weights ");
  return at == std::string::npos ? 0 : std::stoull(info.substr(at + 8));
}

test::ContextPtr cuda_context(const qisa_model* m, int32_t max_seq = 1, int32_t max_batch = 64,
                              qisa_value_path path = QISA_VALUE_PATH_AUTO) {
  return test::make_context(m, max_seq, max_batch, QISA_ENGINE_FAST, path, QISA_OVERFLOW_SLIDE, QISA_BACKEND_CUDA);
}

std::vector<int32_t> tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % 65);
  return t;
}

class Cuda : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_usable(&why)) GTEST_SKIP() << why;
  }
};

TEST_P(Cuda, LogitsEqualTheCpuReference) {
  auto m = model(GetParam());
  auto gpu = cuda_context(m.get());
  auto ref = test::make_context(m.get(), 1, 64, QISA_ENGINE_REFERENCE);
  EXPECT_EQ(qisa_context_backend(gpu.get()), QISA_BACKEND_CUDA);
  std::printf("%s\n", qisa_context_backend_info(gpu.get()));
  const auto t = tokens(16, 1);
  EXPECT_LE(test::max_abs_diff(test::decode_all(gpu.get(), 0, t), test::decode_all(ref.get(), 0, t)),
            test::cross_path_tolerance(GetParam().dtype, 1e-3f));
}

TEST_P(Cuda, IncrementalEqualsTheWholeWindowAndSlidesLikeTheCpu) {
  auto m = model(GetParam());
  auto gpu = cuda_context(m.get()), full = cuda_context(m.get());
  auto cpu = test::make_context(m.get());
  const auto t = tokens(40, 2);
  for (size_t i = 0; i < t.size(); ++i) {
    const auto step = test::decode_all(gpu.get(), 0, {t[i]});
    EXPECT_LE(test::max_abs_diff(step, test::decode_all(cpu.get(), 0, {t[i]})),
              test::cross_path_tolerance(GetParam().dtype, 1e-3f))
        << "token " << i;
    if (i < 16) {
      ASSERT_EQ(qisa_seq_clear(full.get(), 0), QISA_OK);
      const auto all = test::decode_all(full.get(), 0, {t.begin(), t.begin() + static_cast<std::ptrdiff_t>(i) + 1});
      EXPECT_LE(test::max_abs_diff(step, {all.end() - 65, all.end()}),
                test::cross_path_tolerance(GetParam().dtype, 1e-4f))
          << "position " << i;
    }
  }
}

TEST_P(Cuda, BatchedEqualsSeparate) {
  auto m = model(GetParam());
  auto batched = cuda_context(m.get(), 8, 64), single = cuda_context(m.get());
  std::vector<qisa_batch_entry> e;
  std::vector<std::vector<int32_t>> seqs;
  for (int s = 0; s < 8; ++s) {
    seqs.push_back(tokens(static_cast<size_t>(3 + s), static_cast<uint32_t>(10 + s)));
    for (int32_t tok : seqs.back()) e.push_back({s, tok, 1});
  }
  ASSERT_EQ(qisa_decode(batched.get(), e.data(), static_cast<int32_t>(e.size())), QISA_OK);
  size_t i = 0;
  for (int s = 0; s < 8; ++s) {
    ASSERT_EQ(qisa_seq_clear(single.get(), 0), QISA_OK);
    const auto want = test::decode_all(single.get(), 0, seqs[static_cast<size_t>(s)]);
    for (size_t t = 0; t < seqs[static_cast<size_t>(s)].size(); ++t, ++i) {
      const float* l = nullptr;
      ASSERT_EQ(qisa_get_logits(batched.get(), static_cast<int32_t>(i), &l), QISA_OK);
      EXPECT_LE(test::max_abs_diff({l, l + 65}, {want.begin() + static_cast<std::ptrdiff_t>(t * 65),
                                                 want.begin() + static_cast<std::ptrdiff_t>((t + 1) * 65)}),
                test::cross_path_tolerance(GetParam().dtype, 1e-4f));
    }
  }
}

TEST_P(Cuda, StateMovesBetweenCpuAndGpuContexts) {
  auto m = model(GetParam());
  auto gpu = cuda_context(m.get());
  auto cpu = test::make_context(m.get());
  const auto t = tokens(10, 3);
  test::decode_all(gpu.get(), 0, {t.begin(), t.begin() + 9});
  size_t n = 0;
  ASSERT_EQ(qisa_seq_state_save(gpu.get(), 0, nullptr, 0, &n), QISA_ERR_BUFFER_TOO_SMALL);
  std::vector<uint8_t> state(n);
  ASSERT_EQ(qisa_seq_state_save(gpu.get(), 0, state.data(), n, &n), QISA_OK);
  ASSERT_EQ(qisa_seq_state_load(cpu.get(), 0, state.data(), n), QISA_OK);
  EXPECT_LE(test::max_abs_diff(test::decode_all(cpu.get(), 0, {t[9]}), test::decode_all(gpu.get(), 0, {t[9]})),
            test::cross_path_tolerance(GetParam().dtype, 1e-3f));
  // and back: the CPU's cache into a fresh GPU context
  auto gpu2 = cuda_context(m.get());
  ASSERT_EQ(qisa_seq_state_save(cpu.get(), 0, nullptr, 0, &n), QISA_ERR_BUFFER_TOO_SMALL);  // one token more now
  state.resize(n);
  ASSERT_EQ(qisa_seq_state_save(cpu.get(), 0, state.data(), n, &n), QISA_OK);
  ASSERT_EQ(qisa_seq_state_load(gpu2.get(), 0, state.data(), n), QISA_OK);
  int32_t len = 0;
  ASSERT_EQ(qisa_seq_length(gpu2.get(), 0, &len), QISA_OK);
  EXPECT_EQ(len, 10);
  EXPECT_LE(test::max_abs_diff(test::decode_all(cpu.get(), 0, {t[0]}), test::decode_all(gpu2.get(), 0, {t[0]})),
            test::cross_path_tolerance(GetParam().dtype, 1e-3f));
}

TEST_P(Cuda, ObservablesPathEqualsUnitaryPath) {
  if (GetParam().kind == QISA_ATTENTION_CSA) GTEST_SKIP() << "CSA has no quantum projections";
  auto m = model(GetParam());
  auto u = cuda_context(m.get(), 1, 64, QISA_VALUE_PATH_UNITARY);
  auto o = cuda_context(m.get(), 1, 64, QISA_VALUE_PATH_OBSERVABLES);
  const auto t = tokens(16, 4);
  EXPECT_LE(test::max_abs_diff(test::decode_all(u.get(), 0, t), test::decode_all(o.get(), 0, t)),
            test::cross_path_tolerance(GetParam().dtype, 1e-3f));
}

// Steps replayed from a captured graph give the logits of direct launches
// (QISA_CUDA_GRAPHS=0), in the window and while it slides.
TEST_P(Cuda, GraphReplayEqualsDirectLaunches) {
  auto m = model(GetParam());
  auto graphs = cuda_context(m.get());
  setenv("QISA_CUDA_GRAPHS", "0", 1);
  auto direct = cuda_context(m.get());
  unsetenv("QISA_CUDA_GRAPHS");
  const auto t = tokens(30, 5);
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_LE(test::max_abs_diff(test::decode_all(graphs.get(), 0, {t[i]}), test::decode_all(direct.get(), 0, {t[i]})),
              1e-5f)
        << "token " << i;
  }
  const std::string state = graphs->impl->backend_state();
  std::printf("graph context: %s; direct context: %s\n", state.c_str(), direct->impl->backend_state().c_str());
  // One shape in the window (1 row), one while sliding (n_ctx rows), each captured on its second use.
  EXPECT_EQ(state, "graphs: 2 captured");
  EXPECT_EQ(direct->impl->backend_state(), "graphs: off (QISA_CUDA_GRAPHS=0)");
}

// The argmax taken on the device is the argmax of the logits it would have
// copied back, batched and single, direct and replayed.
TEST_P(Cuda, DeviceArgmaxEqualsTheArgmaxOfTheLogits) {
  auto m = model(GetParam());
  auto a = cuda_context(m.get(), 4, 16), b = cuda_context(m.get(), 4, 16);
  for (int step = 0; step < 20; ++step) {
    std::vector<qisa_batch_entry> e;
    for (int32_t s = 0; s < (step % 2 ? 1 : 4); ++s) e.push_back({s, (11 * step + 7 * s) % 65, 1});
    std::vector<int32_t> got(e.size(), -1);
    if (step % 4 < 2) {  // through the C API and through the context directly
      ASSERT_EQ(qisa_decode_greedy(a.get(), e.data(), static_cast<int32_t>(e.size()), got.data()), QISA_OK);
    } else {
      a->impl->decode(e, Context::Output::Argmax);
      for (size_t i = 0; i < e.size(); ++i) got[i] = a->impl->argmax(static_cast<int32_t>(i));
    }
    ASSERT_EQ(qisa_decode(b.get(), e.data(), static_cast<int32_t>(e.size())), QISA_OK);
    for (int32_t i = 0; i < static_cast<int32_t>(e.size()); ++i) {
      const float* l = nullptr;
      ASSERT_EQ(qisa_get_logits(b.get(), i, &l), QISA_OK);
      EXPECT_EQ(got[static_cast<size_t>(i)], argmax(l, 65)) << "step " << step << " entry " << i;
    }
  }
}

// f16, bf16 and Q8_0 weights are kept as stored on the device, not widened.
// Unitaries of circuits with angles are the angles' f32 U in both models
// (docs/format.md): their stacks [2 P D, n_embd] are left out of the ratio.
TEST_P(Cuda, StoredTypesStayStoredOnTheDevice) {
  if (GetParam().dtype == QISA_DTYPE_F32) GTEST_SKIP() << "f32 model";
  auto stored = model(GetParam()), wide = model(GetParam(), QISA_DTYPE_F32);
  auto s = cuda_context(stored.get()), w = cuda_context(wide.get());
  size_t ub = 0;
  const Model& m = model_of(stored.get());
  for (const Layer& L : m.layers)
    for (const Head& h : L.heads)
      for (Role r : kAllRoles)
        if (h.qp(r) && unitary_from_angles(*h.qp(r)))
          ub += 2 * (size_t{1} << h.qp(r)->n_qubits) * m.config.n_embd * sizeof(float);
  const size_t sb = device_weight_bytes(s.get()), wb = device_weight_bytes(w.get());
  std::printf("device weights: %zu bytes stored, %zu bytes as f32, %zu of them f32 unitaries in both\n", sb, wb, ub);
  ASSERT_GT(wb, ub);
  ASSERT_GE(sb, ub);
  EXPECT_LT(static_cast<double>(sb - ub),
            (dtype_traits(GetParam().dtype).block > 1 ? 0.45 : 0.6) * static_cast<double>(wb - ub));
}

// A model whose every logit overflows (test::overflowing_model): a greedy
// decode, whose argmax is taken on the device, fails as the decode of the
// logits does, and the sequence keeps what it held.
TEST(CudaNumeric, LogitsThatOverflowFailTheGreedyDecode) {
  std::string why;
  if (!cuda_usable(&why)) GTEST_SKIP() << why;
  const auto model = test::overflowing_model();
  auto ctx = cuda_context(model.get());
  const qisa_batch_entry prompt[2] = {{0, 5, 0}, {0, 6, 0}};
  ASSERT_EQ(qisa_decode(ctx.get(), prompt, 2), QISA_OK);
  const qisa_batch_entry next{0, 7, 1};
  int32_t token = 0, n = 0;
  EXPECT_EQ(qisa_decode_greedy(ctx.get(), &next, 1, &token), QISA_ERR_NUMERIC);
  EXPECT_NE(std::strstr(qisa_context_last_error(ctx.get()), "overflowed"), nullptr)
      << qisa_context_last_error(ctx.get());
  ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &n), QISA_OK);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(qisa_decode(ctx.get(), &next, 1), QISA_ERR_NUMERIC);  // the logits on the host, checked there
  ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &n), QISA_OK);
  EXPECT_EQ(n, 2);
}

// The trainer's eval-mode logits of each tiny fixture (tests/fixtures,
// scripts/make-test-fixtures.sh), as the CPU engines match them.
TEST(CudaGolden, LogitsMatchTheTrainer) {
  std::string why;
  if (!cuda_usable(&why)) GTEST_SKIP() << why;
  for (const char* kind : {"csa", "qisa-v1", "qisa-v2", "qisa-v3", "qsat"}) {
    const auto golden = writer::read_golden(test::fixture(std::string("tiny-") + kind + ".golden"));
    auto m = test::load_file(test::fixture(std::string("tiny-") + kind + ".qisa"));
    auto gpu = cuda_context(m.get());
    const std::vector<int32_t> t(golden.tokens.begin(), golden.tokens.end());
    EXPECT_LE(test::max_abs_diff(test::decode_all(gpu.get(), 0, t), golden.logits), 1e-4f) << kind;
    ASSERT_EQ(qisa_seq_clear(gpu.get(), 0), QISA_OK);
    std::vector<float> one_by_one;
    for (int32_t x : t) {
      const auto l = test::decode_all(gpu.get(), 0, {x});
      one_by_one.insert(one_by_one.end(), l.begin(), l.end());
    }
    EXPECT_LE(test::max_abs_diff(one_by_one, golden.logits), 1e-4f) << kind << " one token at a time";
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, Cuda,
                         ::testing::Values(Case{QISA_ATTENTION_CSA, 16, 1, QISA_LN_PRE, QISA_DTYPE_F32},
                                           Case{QISA_ATTENTION_QISA_V1, 16, 1, QISA_LN_PRE, QISA_DTYPE_F32},
                                           Case{QISA_ATTENTION_QISA_V2, 16, 2, QISA_LN_PRE, QISA_DTYPE_F32},
                                           Case{QISA_ATTENTION_QISA_V3, 16, 1, QISA_LN_PRE, QISA_DTYPE_F32},
                                           Case{QISA_ATTENTION_QISA_V3, 128, 4, QISA_LN_POST, QISA_DTYPE_F32},
                                           Case{QISA_ATTENTION_CSA, 128, 4, QISA_LN_POST, QISA_DTYPE_Q8_0},
                                           Case{QISA_ATTENTION_QISA_V3, 48, 1, QISA_LN_PRE, QISA_DTYPE_F16},
                                           Case{QISA_ATTENTION_QISA_V3, 24, 1, QISA_LN_PRE, QISA_DTYPE_Q8_0},
                                           Case{QISA_ATTENTION_QISA_V2, 32, 2, QISA_LN_POST, QISA_DTYPE_BF16},
                                           Case{QISA_ATTENTION_QSAT, 16, 1, QISA_LN_PRE, QISA_DTYPE_F32},
                                           Case{QISA_ATTENTION_QSAT, 64, 2, QISA_LN_POST, QISA_DTYPE_F16},
                                           Case{QISA_ATTENTION_QISA_V3, 40, 2, QISA_LN_PRE, QISA_DTYPE_Q4_0}),
                         case_name);

}  // namespace
}  // namespace qisa
