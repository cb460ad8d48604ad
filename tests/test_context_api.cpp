// Contexts, tokenizer, sampler and generation through the C API: misuse
// gives its status and message, seeded output is reproducible, contexts on
// many threads share one model.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "api_context.h"
#include "sampler.h"
#include "test_support.h"

namespace qisa {
namespace {

test::ModelPtr small_model(qisa_attention_kind kind = QISA_ATTENTION_QISA_V3, bool transposed = false) {
  writer::SyntheticSpec s;
  s.kind = kind;
  s.reference_transposed = transposed;
  auto r = test::load_desc(writer::make_synthetic_model(s));
  if (r.status != QISA_OK) throw std::runtime_error(r.message);
  return std::move(r.model);
}

TEST(ContextApi, CreateChecksItsArguments) {
  auto model = small_model();
  qisa_context* c = nullptr;
  char err[256];
  EXPECT_EQ(qisa_context_create(nullptr, nullptr, &c, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err, "model is NULL");
  EXPECT_EQ(qisa_context_create(model.get(), nullptr, nullptr, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.max_batch = 0;
  EXPECT_EQ(qisa_context_create(model.get(), &p, &c, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(err, "max_batch is 0"), nullptr) << err;
  qisa_context_default_params(&p);
  p.struct_size = 4;
  EXPECT_EQ(qisa_context_create(model.get(), &p, &c, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  qisa_context_default_params(&p);
  p.backend = QISA_BACKEND_CPU;
  ASSERT_EQ(qisa_context_create(model.get(), &p, &c, err, sizeof err), QISA_OK) << err;
  EXPECT_EQ(qisa_context_backend(c), QISA_BACKEND_CPU);
  EXPECT_STREQ(qisa_context_backend_info(c), "cpu");
  EXPECT_EQ(qisa_context_threads(c), 1);  // small model: one thread
  qisa_context_free(c);
  qisa_context_free(nullptr);
  EXPECT_STREQ(qisa_context_backend_info(nullptr), "context is NULL");
}

// AUTO takes CUDA where a device is usable and says why not otherwise; an
// explicit CUDA request without one fails cleanly (no context, a message).
TEST(ContextApi, BackendSelectionSaysWhatItChose) {
  auto model = small_model();
  qisa_context_params p;
  qisa_context_default_params(&p);
  qisa_context* c = nullptr;
  char err[512] = "";
  ASSERT_EQ(qisa_context_create(model.get(), &p, &c, err, sizeof err), QISA_OK) << err;
  const std::string info = qisa_context_backend_info(c);
  const bool gpu = qisa_context_backend(c) == QISA_BACKEND_CUDA;
  qisa_context_free(c);
  p.backend = QISA_BACKEND_CUDA;
  if (gpu) {
    EXPECT_EQ(info.rfind("cuda: ", 0), 0u) << info;
    p.engine = QISA_ENGINE_REFERENCE;  // the reference engine is CPU-only
    EXPECT_EQ(qisa_context_create(model.get(), &p, &c, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  } else {
    EXPECT_EQ(info.rfind("cpu (auto: ", 0), 0u) << info;
    // Without any NVIDIA driver the reason says so, not that the driver is
    // "insufficient" (which reads as "upgrade it").
    void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (driver == nullptr && info.find("without the CUDA Toolkit") == std::string::npos) {
      EXPECT_NE(info.find("no CUDA driver found"), std::string::npos) << info;
    }
    if (driver != nullptr) dlclose(driver);
    EXPECT_EQ(info.find("insufficient"), std::string::npos) << info;
    EXPECT_EQ(qisa_context_create(model.get(), &p, &c, err, sizeof err), QISA_ERR_BACKEND);
    EXPECT_GT(std::strlen(err), 10u) << "a message saying why";
  }
  EXPECT_EQ(c, nullptr);
}

TEST(ContextApi, RefusesTheResearchCodesNonCausalModels) {
  auto model = small_model(QISA_ATTENTION_QISA_V3, true);
  qisa_context* c = nullptr;
  char err[512];
  EXPECT_EQ(qisa_context_create(model.get(), nullptr, &c, err, sizeof err), QISA_ERR_NOT_CAUSAL);
  EXPECT_NE(std::strstr(err, "non-causal"), nullptr) << err;
}

TEST(ContextApi, DecodeMisuse) {
  auto model = small_model();
  auto ctx = test::make_context(model.get(), 2, 4);
  qisa_context* c = ctx.get();
  EXPECT_EQ(qisa_decode(nullptr, nullptr, 0), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_decode(c, nullptr, 3), QISA_ERR_INVALID_ARGUMENT);
  qisa_batch_entry bad_token{0, 65, 1};
  EXPECT_EQ(qisa_decode(c, &bad_token, 1), QISA_ERR_OUT_OF_RANGE);
  EXPECT_NE(std::string(qisa_context_last_error(c)).find("token 65 is out of range 0..64"), std::string::npos)
      << qisa_context_last_error(c);
  qisa_batch_entry bad_seq{2, 1, 1};
  EXPECT_EQ(qisa_decode(c, &bad_seq, 1), QISA_ERR_OUT_OF_RANGE);
  EXPECT_NE(std::string(qisa_context_last_error(c)).find("sequence id 2"), std::string::npos);
  qisa_batch_entry five[5] = {{0, 1, 0}, {0, 2, 0}, {0, 3, 0}, {0, 4, 0}, {0, 5, 1}};
  EXPECT_EQ(qisa_decode(c, five, 5), QISA_ERR_OUT_OF_RANGE);
  EXPECT_NE(std::string(qisa_context_last_error(c)).find("larger than max_batch 4"), std::string::npos);
  // A failed call changes nothing.
  int32_t len = -1;
  ASSERT_EQ(qisa_seq_length(c, 0, &len), QISA_OK);
  EXPECT_EQ(len, 0);
  EXPECT_STREQ(qisa_context_last_error(c), "");
  qisa_batch_entry mixed[2] = {{0, 1, 1}, {0, 99, 1}};
  EXPECT_EQ(qisa_decode(c, mixed, 2), QISA_ERR_OUT_OF_RANGE);
  ASSERT_EQ(qisa_seq_length(c, 0, &len), QISA_OK);
  EXPECT_EQ(len, 0);

  qisa_batch_entry ok[2] = {{0, 1, 0}, {0, 2, 1}};
  ASSERT_EQ(qisa_decode(c, ok, 2), QISA_OK);
  const float* l = nullptr;
  EXPECT_EQ(qisa_get_logits(c, 0, &l), QISA_ERR_INVALID_ARGUMENT);  // did not ask
  EXPECT_EQ(qisa_get_logits(c, 2, &l), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_get_logits(c, 1, nullptr), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_get_logits(c, 1, &l), QISA_OK);
  EXPECT_EQ(qisa_seq_length(c, 5, &len), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_seq_clear(c, 7), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_seq_clear(c, -1), QISA_OK);
}

TEST(ContextApi, OverflowErrorPolicy) {
  auto model = small_model();
  auto ctx = test::make_context(model.get(), 1, 64, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, QISA_OVERFLOW_ERROR);
  std::vector<qisa_batch_entry> e(16, {0, 3, 0});
  ASSERT_EQ(qisa_decode(ctx.get(), e.data(), 16), QISA_OK);
  EXPECT_EQ(qisa_decode(ctx.get(), e.data(), 1), QISA_ERR_CONTEXT_FULL);
  EXPECT_NE(std::string(qisa_context_last_error(ctx.get())).find("n_ctx 16"), std::string::npos);
}

TEST(ContextApi, ShiftHalfPolicyKeepsGoing) {
  auto model = small_model();
  auto ctx = test::make_context(model.get(), 1, 64, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, QISA_OVERFLOW_SHIFT_HALF);
  int32_t len = 0;
  for (int i = 0; i < 40; ++i) {
    qisa_batch_entry e{0, i % 65, 1};
    ASSERT_EQ(qisa_decode(ctx.get(), &e, 1), QISA_OK);
  }
  ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &len), QISA_OK);
  EXPECT_EQ(len, 16);  // 16, then 8+1 .. 16 twice: 40 = 16 + 9 + 8 + 7 -> 16
}

TEST(Tokenizer, RoundTripAndErrors) {
  auto model = small_model();  // pieces are ' ' .. '`' (65 printable ASCII)
  const char* text = "HELLO, WORLD!";
  size_t n = 0;
  char err[256];
  EXPECT_EQ(qisa_tokenize(model.get(), text, std::strlen(text), nullptr, 0, &n, 0, err, sizeof err),
            QISA_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 13u);
  std::vector<int32_t> ids(n);
  ASSERT_EQ(qisa_tokenize(model.get(), text, std::strlen(text), ids.data(), ids.size(), &n, 0, err, sizeof err),
            QISA_OK);
  EXPECT_EQ(ids[0], 'H' - 32);
  size_t len = 0;
  EXPECT_EQ(qisa_detokenize(model.get(), ids.data(), ids.size(), nullptr, 0, &len), QISA_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(len, 13u);
  std::vector<char> buf(len + 1);
  ASSERT_EQ(qisa_detokenize(model.get(), ids.data(), ids.size(), buf.data(), buf.size(), &len), QISA_OK);
  EXPECT_STREQ(buf.data(), text);

  const char* odd = "AB\xc3\xa9z";  // 'é' is not in the vocabulary, nor 'z'
  EXPECT_EQ(qisa_tokenize(model.get(), odd, std::strlen(odd), ids.data(), ids.size(), &n, 0, err, sizeof err),
            QISA_ERR_UNKNOWN_CHARACTER);
  EXPECT_NE(std::strstr(err, "'\xc3\xa9' (U+00E9) at byte 2"), nullptr) << err;
  ASSERT_EQ(qisa_tokenize(model.get(), odd, std::strlen(odd), ids.data(), ids.size(), &n, QISA_TOKENIZE_SKIP_UNKNOWN,
                          err, sizeof err),
            QISA_OK);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(qisa_tokenize(model.get(), "\xff", 1, ids.data(), ids.size(), &n, 0, err, sizeof err),
            QISA_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(err, "not valid UTF-8 at byte 0"), nullptr);
  const char* piece = nullptr;
  EXPECT_EQ(qisa_token_piece(model.get(), 33, &piece), QISA_OK);
  EXPECT_STREQ(piece, "A");
  EXPECT_EQ(qisa_token_piece(model.get(), 65, &piece), QISA_ERR_OUT_OF_RANGE);
  int32_t badtok = -3;
  EXPECT_EQ(qisa_detokenize(model.get(), &badtok, 1, buf.data(), buf.size(), &len), QISA_ERR_OUT_OF_RANGE);
}

TEST(Sampler, GreedyTopKAndSeeds) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i) * 1.3f);
  const int32_t argmax = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  qisa_sampler_params p;
  qisa_sampler_default_params(&p);
  p.temperature = 0.0f;
  p.repeat_penalty = 1.0f;
  qisa_sampler* s = nullptr;
  ASSERT_EQ(qisa_sampler_create(&p, &s), QISA_OK);
  int32_t tok = -1;
  ASSERT_EQ(qisa_sampler_sample(s, logits.data(), 50, &tok), QISA_OK);
  EXPECT_EQ(tok, argmax);
  qisa_sampler_free(s);

  p.temperature = 1.0f;
  p.top_k = 1;
  ASSERT_EQ(qisa_sampler_create(&p, &s), QISA_OK);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(qisa_sampler_sample(s, logits.data(), 50, &tok), QISA_OK);
    EXPECT_EQ(tok, argmax);
  }
  qisa_sampler_free(s);

  auto draw = [&](uint64_t seed) {
    qisa_sampler_params q;
    qisa_sampler_default_params(&q);
    q.temperature = 1.5f;
    q.top_k = 0;
    q.top_p = 1.0f;
    q.min_p = 0.0f;
    q.seed = seed;
    qisa_sampler* sm = nullptr;
    qisa_sampler_create(&q, &sm);
    std::vector<int32_t> out;
    for (int i = 0; i < 30; ++i) {
      int32_t t = 0;
      qisa_sampler_sample(sm, logits.data(), 50, &t);
      qisa_sampler_accept(sm, t);
      out.push_back(t);
    }
    qisa_sampler_free(sm);
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));

  // The repetition penalty moves greedy decoding off a repeated token.
  p.temperature = 0.0f;
  p.top_k = 0;
  p.repeat_penalty = 100.0f;
  ASSERT_EQ(qisa_sampler_create(&p, &s), QISA_OK);
  ASSERT_EQ(qisa_sampler_accept(s, argmax), QISA_OK);
  ASSERT_EQ(qisa_sampler_sample(s, logits.data(), 50, &tok), QISA_OK);
  EXPECT_NE(tok, argmax);
  qisa_sampler_free(s);

  EXPECT_EQ(qisa_sampler_sample(nullptr, logits.data(), 50, &tok), QISA_ERR_INVALID_ARGUMENT);
  p.struct_size = 3;
  EXPECT_EQ(qisa_sampler_create(&p, &s), QISA_ERR_INVALID_ARGUMENT);
}

struct Collected {
  std::string text;
  int calls = 0;
  int stop_after = -1;
};

int collect(const char* piece, size_t n, void* user) {
  auto* c = static_cast<Collected*>(user);
  c->text.append(piece, n);
  return ++c->calls == c->stop_after ? 1 : 0;
}

// Top-k over a 1,024-token vocabulary with ties and NaNs: only the k best
// (ties broken by lower id, as a full sort orders them) are drawn, each about
// as often as its softmax over those k says; NaN logits are never drawn.
TEST(Sampler, TopKDrawsTheKBestInProportion) {
  const int32_t V = 1024, K = 40, draws = 40000;
  std::vector<float> logits(V);
  uint32_t r = 12345;
  for (auto& l : logits) {
    r = r * 1664525u + 1013904223u;
    l = static_cast<float>(r >> 22) / 256.0f;  // 1,024 levels over [0, 4): many ties
  }
  logits[5] = logits[900] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int32_t> order;
  for (int32_t i = 0; i < V; ++i)
    if (!std::isnan(logits[i])) order.push_back(i);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  order.resize(K);
  double z = 0;
  for (int32_t i : order) z += std::exp(logits[i] - logits[order[0]]);
  qisa_sampler_params p;
  qisa_sampler_default_params(&p);
  p.temperature = 1.0f;
  p.top_k = K;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = 3;
  qisa_sampler* s = nullptr;
  ASSERT_EQ(qisa_sampler_create(&p, &s), QISA_OK);
  std::vector<int> count(V, 0);
  for (int i = 0; i < draws; ++i) {
    int32_t t = -1;
    ASSERT_EQ(qisa_sampler_sample(s, logits.data(), V, &t), QISA_OK);
    ++count[static_cast<size_t>(t)];
  }
  qisa_sampler_free(s);
  int in_top = 0;
  for (int32_t i : order) {
    in_top += count[static_cast<size_t>(i)];
    const double want = draws * std::exp(logits[i] - logits[order[0]]) / z;
    EXPECT_NEAR(count[static_cast<size_t>(i)], want, 5 * std::sqrt(want) + 5) << "token " << i;
  }
  EXPECT_EQ(in_top, draws) << "tokens outside the top " << K << " were drawn";
}

TEST(Generate, SeededStopStringsAndCallbacks) {
  auto model = small_model();
  auto ctx = test::make_context(model.get());
  qisa_generate_params p;
  qisa_generate_default_params(&p);
  p.max_tokens = 40;
  p.sampling.seed = 99;
  Collected a, b;
  p.on_piece = collect;
  p.user_data = &a;
  qisa_generate_result r;
  r.struct_size = sizeof r;
  ASSERT_EQ(qisa_generate(ctx.get(), "TO BE OR NOT", &p, &r), QISA_OK) << qisa_context_last_error(ctx.get());
  EXPECT_EQ(r.n_prompt_tokens, 12);
  EXPECT_EQ(r.n_generated, 40);
  EXPECT_EQ(r.stop_reason, QISA_STOP_MAX_TOKENS);
  EXPECT_EQ(a.text.size(), 40u);
  p.user_data = &b;
  ASSERT_EQ(qisa_generate(ctx.get(), "TO BE OR NOT", &p, &r), QISA_OK);
  EXPECT_EQ(a.text, b.text);  // same seed, same text

  // Stop at the first occurrence of a string taken from that text; it is not emitted.
  const std::string stop = a.text.substr(20, 2);
  const char* stops[] = {stop.c_str()};
  p.stop_strings = stops;
  p.n_stop_strings = 1;
  Collected c;
  p.user_data = &c;
  ASSERT_EQ(qisa_generate(ctx.get(), "TO BE OR NOT", &p, &r), QISA_OK);
  EXPECT_EQ(r.stop_reason, QISA_STOP_STRING);
  EXPECT_EQ(c.text, a.text.substr(0, a.text.find(stop)));

  p.n_stop_strings = 0;
  Collected d;
  d.stop_after = 5;
  p.user_data = &d;
  ASSERT_EQ(qisa_generate(ctx.get(), "TO BE", &p, &r), QISA_OK);
  EXPECT_EQ(r.stop_reason, QISA_STOP_CALLBACK);
  EXPECT_EQ(d.calls, 5);

  EXPECT_EQ(qisa_generate(ctx.get(), "", &p, &r), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_generate(ctx.get(), "lowercase is unknown here", &p, &r), QISA_ERR_UNKNOWN_CHARACTER);
  EXPECT_NE(std::string(qisa_context_last_error(ctx.get())).find("'l' (U+006C) at byte 0"), std::string::npos);
  EXPECT_EQ(qisa_generate(ctx.get(), nullptr, &p, &r), QISA_ERR_INVALID_ARGUMENT);
  // A prompt longer than n_ctx slides.
  ASSERT_EQ(qisa_generate(ctx.get(), "A PROMPT MUCH LONGER THAN SIXTEEN CHARACTERS", &p, &r), QISA_OK);
}

// Greedy generation without a repetition penalty asks the context for each
// step's argmax only (on a GPU a token id comes back instead of a row of
// logits); it must give the tokens a caller picks from full logits.
TEST(Generate, GreedyTakesTheArgmaxPathAndMatchesStepwiseDecoding) {
  auto model = small_model();
  auto ctx = test::make_context(model.get());
  qisa_generate_params p;
  qisa_generate_default_params(&p);
  p.max_tokens = 30;  // past n_ctx 16: the window slides
  p.sampling.temperature = 0.0f;
  p.sampling.repeat_penalty = 1.0f;
  Collected got;
  p.on_piece = collect;
  p.user_data = &got;
  ASSERT_EQ(qisa_generate(ctx.get(), "TO BE", &p, nullptr), QISA_OK) << qisa_context_last_error(ctx.get());

  // The same by hand: decode, pick the largest logit (lowest index on ties), repeat.
  auto ref = test::make_context(model.get());
  std::vector<int32_t> prompt(8);
  size_t n = 0;
  ASSERT_EQ(qisa_tokenize(model.get(), "TO BE", 5, prompt.data(), prompt.size(), &n, 0, nullptr, 0), QISA_OK);
  std::vector<float> logits =
      test::decode_all(ref.get(), 0, {prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(n)});
  std::string want;
  for (int i = 0; i < p.max_tokens; ++i) {
    const float* l = logits.data() + logits.size() - 65;
    int32_t best = 0;
    for (int32_t v = 1; v < 65; ++v) best = l[v] > l[best] ? v : best;
    const char* piece = nullptr;
    ASSERT_EQ(qisa_token_piece(model.get(), best, &piece), QISA_OK);
    want += piece;
    logits = test::decode_all(ref.get(), 0, {best});
  }
  EXPECT_EQ(got.text, want);
}

// qisa_decode_greedy (and the context's argmax output under it) against
// the largest logit of the same decode through qisa_decode.
TEST(ContextApi, DecodeGreedyReturnsTheArgmaxOfEachEntry) {
  const float tie[] = {1.0f, 3.0f, 3.0f, 2.0f};
  EXPECT_EQ(argmax(tie, 4), 1);  // the lowest index of equal largest logits
  auto model = small_model();
  auto a = test::make_context(model.get(), 3, 16), b = test::make_context(model.get(), 3, 16);
  for (int step = 0; step < 20; ++step) {  // past n_ctx 16: the windows slide
    std::vector<qisa_batch_entry> e;
    if (step == 0) {  // a prefill: three tokens per sequence, the middle one without logits
      for (int32_t s = 0; s < 3; ++s) {
        for (int32_t t = 0; t < 3; ++t) e.push_back({s, (7 * s + 5 * t) % 65, t != 1});
      }
    } else {
      for (int32_t s = 0; s < 3; ++s) e.push_back({s, (13 * step + 5 * s) % 65, s != 1});
    }
    const auto n = static_cast<int32_t>(e.size());
    std::vector<int32_t> got(e.size(), -7);
    ASSERT_EQ(qisa_decode_greedy(a.get(), e.data(), n, got.data()), QISA_OK) << qisa_context_last_error(a.get());
    ASSERT_EQ(qisa_decode(b.get(), e.data(), n), QISA_OK);
    for (int32_t i = 0; i < n; ++i) {
      if (!e[static_cast<size_t>(i)].logits) {
        EXPECT_EQ(got[static_cast<size_t>(i)], -1);
        EXPECT_THROW(a->impl->argmax(i), Error);
        continue;
      }
      const float* l = nullptr;
      ASSERT_EQ(qisa_get_logits(b.get(), i, &l), QISA_OK);
      EXPECT_EQ(got[static_cast<size_t>(i)], std::max_element(l, l + 65) - l) << "step " << step << " entry " << i;
      EXPECT_EQ(a->impl->argmax(i), got[static_cast<size_t>(i)]);
      EXPECT_EQ(b->impl->argmax(i), argmax(l, 65));  // after a logits decode it is taken from them
    }
  }
  // After an argmax-only decode the logits are not there to read.
  const float* l = nullptr;
  EXPECT_EQ(qisa_get_logits(a.get(), 0, &l), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(qisa_context_last_error(a.get())).find("only the argmax"), std::string::npos);
  const qisa_batch_entry one{0, 1, 1};
  EXPECT_EQ(qisa_decode_greedy(a.get(), &one, 1, nullptr), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(qisa_context_last_error(a.get())).find("out_tokens is NULL"), std::string::npos);
  EXPECT_EQ(qisa_decode_greedy(nullptr, &one, 1, nullptr), QISA_ERR_INVALID_ARGUMENT);
  int32_t tok = 0;
  const qisa_batch_entry bad{0, 65, 1};
  EXPECT_EQ(qisa_decode_greedy(a.get(), &bad, 1, &tok), QISA_ERR_OUT_OF_RANGE);
}

// Four threads, each with its own context on one shared model, give exactly
// the single-threaded results (run under ThreadSanitizer in CI).
TEST(Threads, ContextsShareOneModel) {
  auto model = small_model(QISA_ATTENTION_QISA_V2);
  auto run = [&](uint64_t seed, std::string* out) {
    auto ctx = test::make_context(model.get());
    qisa_generate_params p;
    qisa_generate_default_params(&p);
    p.max_tokens = 60;
    p.sampling.seed = seed;
    Collected c;
    p.on_piece = collect;
    p.user_data = &c;
    if (qisa_generate(ctx.get(), "THE KING", &p, nullptr) == QISA_OK) *out = c.text;
  };
  std::string want[4], got[4];
  for (int i = 0; i < 4; ++i) run(100 + static_cast<uint64_t>(i), &want[i]);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(run, 100 + static_cast<uint64_t>(i), &got[i]);
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(got[i].size(), 60u);
    EXPECT_EQ(got[i], want[i]) << "thread " << i;
  }
}

// A context's own threads (n_threads 2: products split by output columns,
// attention by rows, oneDNN's threads) give what one thread gives.
TEST(Threads, TwoThreadsPerContextMatchOne) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "Debian's libgomp is not built with ThreadSanitizer, so TSan cannot see OpenMP barriers and "
                  "reports every parallel region as a race; this test runs in the other builds";
#endif
  for (auto kind : {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V3}) {
    writer::SyntheticSpec s;
    s.kind = kind;
    s.n_embd = 128;
    s.n_layer = 2;
    auto r = test::load_desc(writer::make_synthetic_model(s));
    ASSERT_EQ(r.status, QISA_OK) << r.message;
    std::vector<float> out[2];
    for (int threads : {1, 2}) {
      qisa_context_params p;
      qisa_context_default_params(&p);
      p.backend = QISA_BACKEND_CPU;
      p.n_threads = threads;
      p.max_sequences = 16;
      p.max_batch = 128;
      qisa_context* c = nullptr;
      ASSERT_EQ(qisa_context_create(r.model.get(), &p, &c, nullptr, 0), QISA_OK);
      test::ContextPtr ctx(c);
      EXPECT_EQ(qisa_context_threads(c), threads);
      std::vector<qisa_batch_entry> e;
      for (int seq = 0; seq < 16; ++seq)
        for (int t = 0; t < 8; ++t) e.push_back({seq, (seq * 5 + t * 3) % 65, 1});
      ASSERT_EQ(qisa_decode(c, e.data(), static_cast<int32_t>(e.size())), QISA_OK);
      for (int32_t i = 0; i < static_cast<int32_t>(e.size()); ++i) {
        const float* l = nullptr;
        ASSERT_EQ(qisa_get_logits(c, i, &l), QISA_OK);
        out[threads - 1].insert(out[threads - 1].end(), l, l + 65);
      }
      const qisa_batch_entry one{3, 7, 1};  // then a single row: the few-row kernels
      ASSERT_EQ(qisa_decode(c, &one, 1), QISA_OK);
      const float* l = nullptr;
      ASSERT_EQ(qisa_get_logits(c, 0, &l), QISA_OK);
      out[threads - 1].insert(out[threads - 1].end(), l, l + 65);
    }
    EXPECT_LE(test::max_abs_diff(out[0], out[1]), 1e-4f) << qisa_attention_kind_string(kind);
  }
}

}  // namespace
}  // namespace qisa
