// qisa_context_probe: the matrices it returns against the same quantities
// computed here in double from the model's tensors (the writer's
// description, not the runtime), its errors, and what it leaves in the
// sequence.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model_writer.h"
#include "qisa.h"
#include "synthetic_model.h"
#include "tensor_names.h"
#include "test_support.h"

namespace qisa {
namespace {

using test::ContextPtr;
using test::random_tokens;

// Values of a tensor of the description, as f32.
std::vector<float> values(writer::ModelDesc& d, const std::string& name) {
  writer::TensorData* t = d.find_tensor(name);
  if (!t) throw std::runtime_error("no tensor " + name);
  return writer::tensor_values(*t);
}

// x = tok_emb[t] + pos_emb[i], [n, d].
std::vector<double> embeddings(writer::ModelDesc& desc, const std::vector<int32_t>& tokens) {
  const size_t d = desc.config.n_embd;
  const auto tok = values(desc, names::kTokEmb), pos = values(desc, names::kPosEmb);
  std::vector<double> x(tokens.size() * d);
  for (size_t i = 0; i < tokens.size(); ++i)
    for (size_t c = 0; c < d; ++c) x[i * d + c] = double(tok[tokens[i] * d + c]) + pos[i * d + c];
  return x;
}

std::vector<double> layernorm(const std::vector<double>& x, size_t d, const std::vector<float>& w,
                              const std::vector<float>& b, double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / d; ++r) {
    double mean = 0.0, var = 0.0;
    for (size_t c = 0; c < d; ++c) mean += x[r * d + c];
    mean /= double(d);
    for (size_t c = 0; c < d; ++c) var += (x[r * d + c] - mean) * (x[r * d + c] - mean);
    var /= double(d);
    for (size_t c = 0; c < d; ++c) y[r * d + c] = (x[r * d + c] - mean) / std::sqrt(var + eps) * w[c] + b[c];
  }
  return y;
}

void expect_near(const std::vector<float>& got, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::abs(want[i]))) << what << i;
}

std::vector<float> probe(qisa_context* ctx, int32_t seq, const std::vector<int32_t>& tokens, qisa_probe what,
                         int32_t layer, size_t d) {
  std::vector<float> out(tokens.size() * d, NAN);
  EXPECT_EQ(qisa_context_probe(ctx, seq, tokens.data(), static_cast<int32_t>(tokens.size()), what, layer, out.data(),
                               out.size()),
            QISA_OK)
      << qisa_context_last_error(ctx);
  return out;
}

// Layer 0's input is the embeddings; a CSA head's queries and keys are
// LN1(x) W^T (pre-LN); the last layer's output through ln_f and the LM head
// gives the logits qisa_decode gives.
TEST(Probe, MatricesEqualAnIndependentComputation) {
  for (auto engine : {QISA_ENGINE_FAST, QISA_ENGINE_REFERENCE}) {
    writer::SyntheticSpec spec;
    spec.kind = QISA_ATTENTION_CSA;
    spec.n_embd = 24;
    spec.n_head = 2;
    spec.n_layer = 2;
    writer::ModelDesc desc = writer::make_synthetic_model(spec);
    auto loaded = test::load_desc(desc);
    ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
    ContextPtr ctx = test::make_context(loaded.model.get(), 2, 64, engine);
    const size_t d = spec.n_embd, hs = d / spec.n_head, V = spec.vocab_size;
    const auto tokens = random_tokens(spec.n_ctx, spec.vocab_size, 3);
    const auto x0 = embeddings(desc, tokens);
    expect_near(probe(ctx.get(), 1, tokens, QISA_PROBE_LAYER_INPUT, 0, d), x0, 1e-6, "layer 0 input ");

    const auto u = layernorm(x0, d, values(desc, names::layer(0) + names::kLn1Weight),
                             values(desc, names::layer(0) + names::kLn1Bias), desc.config.ln_eps);
    for (auto [what, role] : {std::pair{QISA_PROBE_QUERIES, 'q'}, std::pair{QISA_PROBE_KEYS, 'k'}}) {
      std::vector<double> want(tokens.size() * d, 0.0);
      for (size_t h = 0; h < spec.n_head; ++h) {
        const auto w = values(desc, names::proj(0, static_cast<int>(h), role) + names::kWeight);  // [hs, d]
        for (size_t r = 0; r < tokens.size(); ++r)
          for (size_t o = 0; o < hs; ++o)
            for (size_t c = 0; c < d; ++c) want[r * d + h * hs + o] += u[r * d + c] * w[o * d + c];
      }
      expect_near(probe(ctx.get(), 1, tokens, what, 0, d), want, 1e-4, std::string("layer 0 ") + role + " ");
    }

    const auto last = probe(ctx.get(), 1, tokens, QISA_PROBE_LAYER_INPUT, spec.n_layer, d);
    const std::vector<double> xl(last.begin(), last.end());
    const auto v = layernorm(xl, d, values(desc, names::kLnFWeight), values(desc, names::kLnFBias), desc.config.ln_eps);
    const auto w = values(desc, names::kLmHeadWeight);  // [V, d]
    const auto b = values(desc, names::kLmHeadBias);
    const auto logits = test::decode_all(ctx.get(), 0, tokens);
    std::vector<double> want(tokens.size() * V);
    for (size_t r = 0; r < tokens.size(); ++r)
      for (size_t o = 0; o < V; ++o) {
        double s = b[o];
        for (size_t c = 0; c < d; ++c) s += v[r * d + c] * w[o * d + c];
        want[r * V + o] = s;
      }
    expect_near(logits, want, 1e-4, "logits from the last layer's output ");
  }
}

// The probed sequence then holds the tokens: decoding on from it gives
// what decoding the same tokens gives; a window longer than one pass of
// rows (n_ctx > 256, max_batch 1) gives what one pass gives.
TEST(Probe, LeavesTheSequenceAsADecodeWouldAndSpansPasses) {
  writer::SyntheticSpec spec;
  spec.kind = QISA_ATTENTION_QISA_V3;
  spec.n_embd = 8;
  spec.n_ctx = 300;
  spec.n_layer = 1;
  auto loaded = test::load_desc(writer::make_synthetic_model(spec));
  ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
  ContextPtr narrow = test::make_context(loaded.model.get(), 2, 1),
             wide = test::make_context(loaded.model.get(), 2, 512);
  const auto tokens = random_tokens(290, spec.vocab_size, 5);
  for (qisa_probe what : {QISA_PROBE_LAYER_INPUT, QISA_PROBE_QUERIES, QISA_PROBE_KEYS}) {
    const auto a = probe(narrow.get(), 0, tokens, what, what == QISA_PROBE_LAYER_INPUT ? 1 : 0, 8);
    const auto b = probe(wide.get(), 0, tokens, what, what == QISA_PROBE_LAYER_INPUT ? 1 : 0, 8);
    EXPECT_LE(test::max_abs_diff(a, b), 1e-4f) << what;
  }
  int32_t len = 0;
  ASSERT_EQ(qisa_seq_length(narrow.get(), 0, &len), QISA_OK);
  EXPECT_EQ(len, 290);
  const std::vector<int32_t> more = {1, 2, 3};
  const auto after_probe = test::decode_all(wide.get(), 0, more);
  std::vector<int32_t> all = tokens;
  all.insert(all.end(), more.begin(), more.end());
  const auto decoded = test::decode_all(wide.get(), 1, all);
  const std::vector<float> tail(decoded.end() - static_cast<std::ptrdiff_t>(after_probe.size()), decoded.end());
  EXPECT_LE(test::max_abs_diff(after_probe, tail), 1e-4f);
}

TEST(Probe, BadArgumentsChangeNothing) {
  writer::SyntheticSpec spec;
  auto loaded = test::load_desc(writer::make_synthetic_model(spec));
  ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
  ContextPtr ctx = test::make_context(loaded.model.get(), 2, 64);
  qisa_context* c = ctx.get();
  test::decode_all(c, 0, {1, 2, 3});
  const std::vector<int32_t> tokens = {4, 5, 6, 7};
  std::vector<float> out(tokens.size() * spec.n_embd);
  const int32_t n = static_cast<int32_t>(tokens.size());
  auto call = [&](int32_t seq, const int32_t* t, int32_t count, int what, int32_t layer, float* o, size_t cap) {
    return qisa_context_probe(c, seq, t, count, static_cast<qisa_probe>(what), layer, o, cap);
  };
  EXPECT_EQ(call(0, nullptr, n, 0, 0, out.data(), out.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(0, tokens.data(), n, 0, 0, nullptr, out.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(0, tokens.data(), 0, 0, 0, out.data(), out.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(2, tokens.data(), n, 0, 0, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(call(0, tokens.data(), n, 7, 0, out.data(), out.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(0, tokens.data(), n, -1, 0, out.data(), out.size()), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(0, tokens.data(), n, QISA_PROBE_LAYER_INPUT, 3, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(call(0, tokens.data(), n, QISA_PROBE_QUERIES, 2, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(call(0, tokens.data(), n, QISA_PROBE_KEYS, -1, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(call(0, tokens.data(), n, 0, 0, out.data(), out.size() - 1), QISA_ERR_BUFFER_TOO_SMALL);
  const std::vector<int32_t> bad = {1, 65};
  EXPECT_EQ(call(0, bad.data(), 2, 0, 0, out.data(), out.size()), QISA_ERR_OUT_OF_RANGE);
  std::vector<int32_t> longer(spec.n_ctx + 1, 1);
  std::vector<float> big(longer.size() * spec.n_embd);
  EXPECT_EQ(call(0, longer.data(), static_cast<int32_t>(longer.size()), 0, 0, big.data(), big.size()),
            QISA_ERR_OUT_OF_RANGE);
  EXPECT_NE(std::string(qisa_context_last_error(c)).find("n_ctx"), std::string::npos) << qisa_context_last_error(c);
  EXPECT_EQ(qisa_context_probe(nullptr, 0, tokens.data(), n, QISA_PROBE_KEYS, 0, out.data(), out.size()),
            QISA_ERR_INVALID_ARGUMENT);
  int32_t len = 0;
  ASSERT_EQ(qisa_seq_length(c, 0, &len), QISA_OK);
  EXPECT_EQ(len, 3);  // untouched by every refusal
}

}  // namespace
}  // namespace qisa
