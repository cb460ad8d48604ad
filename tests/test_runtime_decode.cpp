// Decoding invariants on random models of every kind: fast == reference,
// cache == recompute, past n_ctx == the research's crop-and-recompute,
// batched == separate, state save/restore, no future token leaks.
#include <gtest/gtest.h>

#include <random>

#include "dtype.h"
#include "test_support.h"

namespace qisa {
namespace {

using test::decode_all;
using test::make_context;
using test::max_abs_diff;

struct Spec {
  qisa_attention_kind kind;
  qisa_ln_placement ln;
  qisa_activation act;
  uint32_t n_head;
  qisa_dtype dtype;
  uint32_t n_embd = 16;  // not a power of two: psi is padded to D = 2^n
};

test::ModelPtr synthetic(const Spec& s, uint32_t n_ctx = 16) {
  writer::SyntheticSpec w;
  w.kind = s.kind;
  w.ln_placement = s.ln;
  w.activation = s.act;
  w.n_head = s.n_head;
  w.n_embd = s.n_embd;
  w.n_layer = 2;
  w.n_ctx = n_ctx;
  w.weight_dtype = w.unitary_dtype = s.dtype;
  w.tied_lm_head = s.ln == QISA_LN_POST;
  w.seed = 17 + s.kind;
  auto r = test::load_desc(writer::make_synthetic_model(w));
  if (r.status != QISA_OK) throw std::runtime_error(r.message);
  return std::move(r.model);
}

std::vector<int32_t> random_tokens(size_t n, uint32_t seed) {
  return test::random_tokens(n, 65, seed);
}

void PrintTo(const Spec& s, std::ostream* os) {
  *os << "kind " << s.kind << ", heads " << s.n_head;
}

std::string spec_name(const ::testing::TestParamInfo<Spec>& info) {
  static const char* const kKinds[] = {"csa", "v1", "v2", "v3", "qsat"};
  return std::string(kKinds[info.param.kind]) + (info.param.ln == QISA_LN_PRE ? "_pre" : "_post_gelu_tied") + "_h" +
         std::to_string(info.param.n_head) + "_dtype" + std::to_string(static_cast<int>(info.param.dtype)) + "_d" +
         std::to_string(info.param.n_embd);
}

class Decode : public ::testing::TestWithParam<Spec> {};

TEST_P(Decode, FastEqualsReference) {
  auto model = synthetic(GetParam());
  auto fast = make_context(model.get(), 1, 64, QISA_ENGINE_FAST);
  auto ref = make_context(model.get(), 1, 64, QISA_ENGINE_REFERENCE);
  const auto tokens = random_tokens(16, 1);
  EXPECT_LE(max_abs_diff(decode_all(fast.get(), 0, tokens), decode_all(ref.get(), 0, tokens)),
            test::cross_path_tolerance(GetParam().dtype, 1e-4f));
}

// Causal: changing token t+1 never changes the logits of positions <= t
// (bit for bit: the same rows meet the same arithmetic), on both engines.
TEST_P(Decode, FutureTokensNeverChangeEarlierLogits) {
  auto model = synthetic(GetParam());
  for (auto engine : {QISA_ENGINE_FAST, QISA_ENGINE_REFERENCE}) {
    auto ctx = make_context(model.get(), 1, 64, engine);
    const auto tokens = random_tokens(16, 5);
    const auto base = decode_all(ctx.get(), 0, tokens);
    for (size_t t = 0; t + 1 < tokens.size(); t += 2) {
      auto changed = tokens;
      changed[t + 1] = (changed[t + 1] + 11) % 65;
      ASSERT_EQ(qisa_seq_clear(ctx.get(), 0), QISA_OK);
      const auto other = decode_all(ctx.get(), 0, changed);
      const size_t upto = (t + 1) * 65;  // the logits of positions 0..t
      EXPECT_EQ(std::vector<float>(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(upto)),
                std::vector<float>(other.begin(), other.begin() + static_cast<std::ptrdiff_t>(upto)))
          << "token " << t + 1 << " changed earlier logits, engine " << engine;
      EXPECT_GT(max_abs_diff({base.begin() + static_cast<std::ptrdiff_t>(upto), base.end()},
                             {other.begin() + static_cast<std::ptrdiff_t>(upto), other.end()}),
                0.0f)
          << "the change reaches position " << t + 1;
    }
  }
}

TEST_P(Decode, ObservablesPathEqualsUnitaryPath) {
  if (GetParam().kind == QISA_ATTENTION_CSA) GTEST_SKIP() << "CSA has no quantum projection";
  auto model = synthetic(GetParam());
  auto a = make_context(model.get(), 1, 64, QISA_ENGINE_FAST, QISA_VALUE_PATH_UNITARY);
  auto b = make_context(model.get(), 1, 64, QISA_ENGINE_FAST, QISA_VALUE_PATH_OBSERVABLES);
  const auto tokens = random_tokens(16, 2);
  EXPECT_LE(max_abs_diff(decode_all(a.get(), 0, tokens), decode_all(b.get(), 0, tokens)),
            test::cross_path_tolerance(GetParam().dtype, 1e-4f));
}

TEST_P(Decode, IncrementalEqualsRecomputingTheWindow) {
  auto model = synthetic(GetParam());
  auto inc = make_context(model.get());
  auto full = make_context(model.get());
  const auto tokens = random_tokens(16, 3);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const auto step = decode_all(inc.get(), 0, {tokens[t]});
    ASSERT_EQ(qisa_seq_clear(full.get(), 0), QISA_OK);
    const auto all = decode_all(full.get(), 0, {tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(t) + 1});
    const std::vector<float> last(all.end() - 65, all.end());
    ASSERT_LE(max_abs_diff(step, last), 1e-5f) << "position " << t;
  }
}

// Past n_ctx the sliding policy gives exactly what the research generate
// loop computes: the logits of the last n_ctx tokens, evaluated afresh.
TEST_P(Decode, SlidingPastNctxEqualsCropAndRecompute) {
  auto model = synthetic(GetParam());
  auto slide = make_context(model.get());
  auto crop = make_context(model.get());
  const auto tokens = random_tokens(40, 4);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const auto step = decode_all(slide.get(), 0, {tokens[t]});
    int32_t len = 0;
    ASSERT_EQ(qisa_seq_length(slide.get(), 0, &len), QISA_OK);
    ASSERT_EQ(len, static_cast<int32_t>(std::min<size_t>(t + 1, 16)));
    const size_t start = t + 1 > 16 ? t + 1 - 16 : 0;
    ASSERT_EQ(qisa_seq_clear(crop.get(), 0), QISA_OK);
    const auto all = decode_all(
        crop.get(), 0,
        {tokens.begin() + static_cast<std::ptrdiff_t>(start), tokens.begin() + static_cast<std::ptrdiff_t>(t) + 1});
    const std::vector<float> last(all.end() - 65, all.end());
    ASSERT_LE(max_abs_diff(step, last), 1e-5f) << "token " << t;
  }
  // A prompt longer than n_ctx in one call: the last logits are those of its last n_ctx tokens.
  ASSERT_EQ(qisa_seq_clear(slide.get(), 0), QISA_OK);
  const auto all = decode_all(slide.get(), 0, tokens);
  ASSERT_EQ(qisa_seq_clear(crop.get(), 0), QISA_OK);
  const auto tail = decode_all(crop.get(), 0, {tokens.end() - 16, tokens.end()});
  EXPECT_LE(max_abs_diff({all.end() - 65, all.end()}, {tail.end() - 65, tail.end()}), 1e-5f);
}

TEST_P(Decode, BatchedEqualsSeparate) {
  auto model = synthetic(GetParam());
  const int B = 5;
  auto batched = make_context(model.get(), B, 64);
  auto single = make_context(model.get(), 1, 64);
  // The two contexts multiply different row counts, which sum in different
  // orders (oneDNN or not; the value projections' U included, which is f32
  // in a quantized file too).
  const float tol = test::cross_path_tolerance(GetParam().dtype, 1e-5f);
  std::vector<std::vector<int32_t>> seqs;
  for (int b = 0; b < B; ++b) seqs.push_back(random_tokens(6 + static_cast<size_t>(b), 10 + static_cast<uint32_t>(b)));
  // Prompts of different lengths in one call, then 12 steps of all streams
  // together (crossing n_ctx for some).
  std::vector<qisa_batch_entry> entries;
  for (int b = 0; b < B; ++b) {
    for (int32_t t : seqs[static_cast<size_t>(b)]) entries.push_back({b, t, 1});
  }
  ASSERT_EQ(qisa_decode(batched.get(), entries.data(), static_cast<int32_t>(entries.size())), QISA_OK);
  size_t at = 0;
  for (int b = 0; b < B; ++b) {
    ASSERT_EQ(qisa_seq_clear(single.get(), 0), QISA_OK);
    const auto want = decode_all(single.get(), 0, seqs[static_cast<size_t>(b)]);
    for (size_t t = 0; t < seqs[static_cast<size_t>(b)].size(); ++t, ++at) {
      const float* l = nullptr;
      ASSERT_EQ(qisa_get_logits(batched.get(), static_cast<int32_t>(at), &l), QISA_OK);
      ASSERT_LE(max_abs_diff({l, l + 65}, {want.begin() + static_cast<std::ptrdiff_t>(t * 65),
                                           want.begin() + static_cast<std::ptrdiff_t>((t + 1) * 65)}),
                tol);
    }
  }
  for (int step = 0; step < 12; ++step) {
    std::vector<qisa_batch_entry> e;
    for (int b = 0; b < B; ++b) {
      const int32_t tok = (step * 7 + b * 3) % 65;
      e.push_back({b, tok, 1});
      seqs[static_cast<size_t>(b)].push_back(tok);
    }
    ASSERT_EQ(qisa_decode(batched.get(), e.data(), B), QISA_OK);
    for (int b = 0; b < B; ++b) {
      const auto& s = seqs[static_cast<size_t>(b)];
      const size_t start = s.size() > 16 ? s.size() - 16 : 0;
      ASSERT_EQ(qisa_seq_clear(single.get(), 0), QISA_OK);
      const auto want = decode_all(single.get(), 0, {s.begin() + static_cast<std::ptrdiff_t>(start), s.end()});
      const float* l = nullptr;
      ASSERT_EQ(qisa_get_logits(batched.get(), b, &l), QISA_OK);
      ASSERT_LE(max_abs_diff({l, l + 65}, {want.end() - 65, want.end()}), tol) << "step " << step << " seq " << b;
    }
  }
}

TEST_P(Decode, StateSaveAndRestore) {
  auto model = synthetic(GetParam());
  auto a = make_context(model.get(), 2);
  auto b = make_context(model.get(), 3);
  const auto tokens = random_tokens(10, 5);
  decode_all(a.get(), 1, tokens);
  size_t size = 0;
  EXPECT_EQ(qisa_seq_state_save(a.get(), 1, nullptr, 0, &size), QISA_ERR_BUFFER_TOO_SMALL);
  std::vector<uint8_t> state(size);
  ASSERT_EQ(qisa_seq_state_save(a.get(), 1, state.data(), state.size(), &size), QISA_OK);
  ASSERT_EQ(qisa_seq_state_load(b.get(), 2, state.data(), state.size()), QISA_OK);
  int32_t len = 0;
  ASSERT_EQ(qisa_seq_length(b.get(), 2, &len), QISA_OK);
  EXPECT_EQ(len, 10);
  EXPECT_LE(max_abs_diff(decode_all(a.get(), 1, {7}), decode_all(b.get(), 2, {7})), 0.0f);
  // Corrupted or foreign states are refused.
  EXPECT_EQ(qisa_seq_state_load(b.get(), 0, state.data(), state.size() - 1), QISA_ERR_INVALID_ARGUMENT);
  auto bad = state;
  bad[0] ^= 1;
  EXPECT_EQ(qisa_seq_state_load(b.get(), 0, bad.data(), bad.size()), QISA_ERR_INVALID_ARGUMENT);
  bad = state;
  bad[8] ^= 1;  // n_layer
  EXPECT_EQ(qisa_seq_state_load(b.get(), 0, bad.data(), bad.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(qisa_context_last_error(b.get())).find("n_layer"), std::string::npos);
  // Truncation keeps a prefix: continuing from it equals decoding that prefix.
  ASSERT_EQ(qisa_seq_truncate(a.get(), 1, 4), QISA_OK);
  auto c = make_context(model.get());
  decode_all(c.get(), 0, {tokens.begin(), tokens.begin() + 4});
  EXPECT_LE(max_abs_diff(decode_all(a.get(), 1, {9}), decode_all(c.get(), 0, {9})), 1e-6f);
  EXPECT_EQ(qisa_seq_truncate(a.get(), 1, 99), QISA_ERR_OUT_OF_RANGE);
}

// Shapes large enough that the fast engine hands its products to oneDNN
// (small ones stay on the plain loop): 64 wide, 4 heads, a 48-token prefill.
TEST(DecodeLarge, FastEqualsReferenceThroughOneDnn) {
  for (auto kind : {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V2, QISA_ATTENTION_QISA_V3, QISA_ATTENTION_QSAT}) {
    writer::SyntheticSpec w;  // QSAT: 4 nearest keys and 2 recent positions of up to 48
    w.kind = kind;
    w.n_embd = 64;
    w.n_head = 4;
    w.n_layer = 2;
    w.n_ctx = 64;
    auto r = test::load_desc(writer::make_synthetic_model(w));
    ASSERT_EQ(r.status, QISA_OK) << r.message;
    auto fast = make_context(r.model.get(), 1, 64, QISA_ENGINE_FAST);
    auto ref = make_context(r.model.get(), 1, 64, QISA_ENGINE_REFERENCE);
    const auto tokens = random_tokens(48, 9);
    EXPECT_LE(max_abs_diff(decode_all(fast.get(), 0, tokens), decode_all(ref.get(), 0, tokens)), 1e-4f)
        << static_cast<int>(kind);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, Decode,
    ::testing::Values(Spec{QISA_ATTENTION_CSA, QISA_LN_PRE, QISA_ACTIVATION_RELU, 1, QISA_DTYPE_F32},
                      Spec{QISA_ATTENTION_QISA_V1, QISA_LN_PRE, QISA_ACTIVATION_RELU, 2, QISA_DTYPE_F32},
                      Spec{QISA_ATTENTION_QISA_V2, QISA_LN_PRE, QISA_ACTIVATION_RELU, 2, QISA_DTYPE_F32},
                      Spec{QISA_ATTENTION_QISA_V3, QISA_LN_PRE, QISA_ACTIVATION_RELU, 1, QISA_DTYPE_F32},
                      Spec{QISA_ATTENTION_QISA_V3, QISA_LN_POST, QISA_ACTIVATION_GELU, 2, QISA_DTYPE_F32},
                      Spec{QISA_ATTENTION_CSA, QISA_LN_POST, QISA_ACTIVATION_GELU, 4, QISA_DTYPE_F16},
                      Spec{QISA_ATTENTION_QISA_V3, QISA_LN_PRE, QISA_ACTIVATION_RELU, 1, QISA_DTYPE_Q8_0},
                      Spec{QISA_ATTENTION_QISA_V3, QISA_LN_PRE, QISA_ACTIVATION_RELU, 1, QISA_DTYPE_F32, 48},
                      Spec{QISA_ATTENTION_QISA_V1, QISA_LN_POST, QISA_ACTIVATION_GELU, 2, QISA_DTYPE_Q8_0, 24},
                      Spec{QISA_ATTENTION_QISA_V2, QISA_LN_POST, QISA_ACTIVATION_GELU, 2, QISA_DTYPE_BF16, 32},
                      Spec{QISA_ATTENTION_QSAT, QISA_LN_PRE, QISA_ACTIVATION_RELU, 1, QISA_DTYPE_F32},
                      Spec{QISA_ATTENTION_QSAT, QISA_LN_POST, QISA_ACTIVATION_GELU, 2, QISA_DTYPE_F16, 32},
                      Spec{QISA_ATTENTION_QISA_V3, QISA_LN_PRE, QISA_ACTIVATION_RELU, 1, QISA_DTYPE_Q4_0, 40},
                      Spec{QISA_ATTENTION_CSA, QISA_LN_POST, QISA_ACTIVATION_GELU, 2, QISA_DTYPE_Q4_0}),
    spec_name);

}  // namespace
}  // namespace qisa
