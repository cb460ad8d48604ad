// Regression tests for the defects a fuzzing campaign found (issue #15):
// bad input gets a status and a message, changes no state, allocates
// nothing unbounded and never blocks.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <limits>

#include "hash.h"
#include "test_support.h"

// ASan and TSan reserve terabytes of address space for their shadow
// memory: RLIMIT_AS cannot be lowered under them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define QISA_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define QISA_TEST_SANITIZED 1
#endif
#endif
#ifndef QISA_TEST_SANITIZED
#define QISA_TEST_SANITIZED 0
#endif

namespace qisa {
namespace {

test::ModelPtr synthetic(writer::SyntheticSpec s) {
  auto r = test::load_desc(writer::make_synthetic_model(s));
  if (r.status != QISA_OK) throw std::runtime_error(r.message);
  return std::move(r.model);
}

test::ModelPtr small_model(uint64_t seed = 1) {
  writer::SyntheticSpec s;
  s.seed = seed;
  return synthetic(s);
}

// Creation fails with `status`, no context, and a message holding `text`.
void expect_refused(const qisa_model* m, const qisa_context_params& p, qisa_status status, const char* text) {
  qisa_context* ctx = nullptr;
  char err[512] = "";
  EXPECT_EQ(qisa_context_create(m, &p, &ctx, err, sizeof err), status) << err;
  EXPECT_EQ(ctx, nullptr);
  EXPECT_NE(std::strstr(err, text), nullptr) << err;
  qisa_context_free(ctx);
}

void expect_created(const qisa_model* m, const qisa_context_params& p) {
  qisa_context* ctx = nullptr;
  char err[512] = "";
  EXPECT_EQ(qisa_context_create(m, &p, &ctx, err, sizeof err), QISA_OK) << err;
  qisa_context_free(ctx);
}

std::vector<int32_t> lengths(qisa_context* ctx, int32_t n_seq) {
  std::vector<int32_t> out;
  for (int32_t s = 0; s < n_seq; ++s) {
    int32_t n = -1;
    EXPECT_EQ(qisa_seq_length(ctx, s, &n), QISA_OK);
    out.push_back(n);
  }
  return out;
}

// Three sequences of 3, 5 and 7 tokens.
void fill_three(qisa_context* ctx) {
  for (int32_t s = 0; s < 3; ++s) {
    std::vector<int32_t> toks(static_cast<size_t>(3 + 2 * s));
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int32_t>(1 + i + s);
    test::decode_all(ctx, s, toks);
  }
}

// Defect 1: qisa_generate with seq_id -1 emptied every sequence before it
// checked the id. Every rejected call must leave all caches as they were.
TEST(HostileInput, RejectedGenerateChangesNoSequence) {
  auto model = small_model();
  auto ctx = test::make_context(model.get(), 3);
  fill_three(ctx.get());
  const std::vector<int32_t> before = lengths(ctx.get(), 3);
  ASSERT_EQ(before, (std::vector<int32_t>{3, 5, 7}));

  qisa_generate_params p;
  qisa_generate_default_params(&p);
  p.max_tokens = 4;
  for (int32_t bad : {-1, 3, INT32_MIN}) {
    p.seq_id = bad;
    EXPECT_EQ(qisa_generate(ctx.get(), "ROMEO:", &p, nullptr), QISA_ERR_OUT_OF_RANGE) << bad;
    EXPECT_NE(std::strstr(qisa_context_last_error(ctx.get()), "sequence id"), nullptr);
    EXPECT_EQ(lengths(ctx.get(), 3), before) << "seq_id " << bad;
  }
  // Bad sampling, an empty prompt or an unknown character: sequence 1 (the
  // one asked for) keeps its tokens too.
  p.seq_id = 1;
  p.sampling.temperature = NAN;
  EXPECT_EQ(qisa_generate(ctx.get(), "ROMEO:", &p, nullptr), QISA_ERR_INVALID_ARGUMENT);
  qisa_sampler_default_params(&p.sampling);
  EXPECT_EQ(qisa_generate(ctx.get(), "", &p, nullptr), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_generate(ctx.get(), "\xe2\x82\xac", &p, nullptr), QISA_ERR_UNKNOWN_CHARACTER);
  EXPECT_EQ(lengths(ctx.get(), 3), before);
}

// Defect 6: qisa_generate accepted what qisa_sampler_create refuses; both
// now share one check, and the message names the field.
TEST(HostileInput, GenerateChecksSamplingLikeTheSampler) {
  auto model = small_model();
  auto ctx = test::make_context(model.get(), 2);
  struct Case {
    const char* field;
    void (*set)(qisa_sampler_params&);
  };
  const Case cases[] = {
      {"temperature", [](qisa_sampler_params& s) { s.temperature = NAN; }},
      {"temperature", [](qisa_sampler_params& s) { s.temperature = INFINITY; }},
      {"repeat_penalty", [](qisa_sampler_params& s) { s.repeat_penalty = 0.0f; }},
      {"repeat_penalty", [](qisa_sampler_params& s) { s.repeat_penalty = -1.0f; }},
      {"top_p", [](qisa_sampler_params& s) { s.top_p = 0.0f; }},
      {"top_p", [](qisa_sampler_params& s) { s.top_p = NAN; }},
      {"min_p", [](qisa_sampler_params& s) { s.min_p = 5.0f; }},
      {"repeat_last_n", [](qisa_sampler_params& s) { s.repeat_last_n = INT32_MAX; }},
      {"repeat_last_n", [](qisa_sampler_params& s) { s.repeat_last_n = -1; }},
  };
  std::vector<int32_t> toks = {1, 2, 3};
  test::decode_all(ctx.get(), 0, toks);
  for (const Case& c : cases) {
    qisa_generate_params p;
    qisa_generate_default_params(&p);
    p.max_tokens = 3;
    c.set(p.sampling);
    EXPECT_EQ(qisa_generate(ctx.get(), "ROMEO:", &p, nullptr), QISA_ERR_INVALID_ARGUMENT) << c.field;
    EXPECT_NE(std::strstr(qisa_context_last_error(ctx.get()), c.field), nullptr) << qisa_context_last_error(ctx.get());
    int32_t n = 0;
    ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &n), QISA_OK);
    EXPECT_EQ(n, 3) << c.field;
    qisa_sampler* s = nullptr;
    EXPECT_EQ(qisa_sampler_create(&p.sampling, &s), QISA_ERR_INVALID_ARGUMENT) << c.field;
    EXPECT_EQ(s, nullptr);
  }
}

// Defect 2: scratch was sized max(max_batch, n_ctx) x n_ff, so a valid model
// with a long window asked for gigabytes (n_ctx 2^18, n_ff 4096: 4 GiB of
// MLP rows alone). Scratch is now bounded; the KV cache is what grows, and
// it is in the estimate. Run in a child under RLIMIT_AS 1.5 GiB.
TEST(HostileInput, LongWindowsDoNotScaleScratch) {
  writer::SyntheticSpec s;
  s.n_ctx = 1u << 18;
  s.n_embd = 16;
  s.n_ff = 4096;
  s.n_layer = 1;
  s.kind = QISA_ATTENTION_CSA;
  auto model = synthetic(s);
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.backend = QISA_BACKEND_CPU;
  uint64_t bytes = 0;
  char err[512] = "";
  ASSERT_EQ(qisa_context_memory_estimate(model.get(), &p, &bytes, err, sizeof err), QISA_OK) << err;
  // KV cache: 2^18 positions x (2 x 16 + 1) floats = 33 MiB; window lists
  // 2 MiB; scratch bounded by 256 rows.
  EXPECT_LT(bytes, uint64_t{128} << 20);
  EXPECT_GT(bytes, uint64_t{33} << 20);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rlimit lim{};
    getrlimit(RLIMIT_AS, &lim);
    lim.rlim_cur = rlim_t{3} << 29;  // 1.5 GiB of address space
    if (!QISA_TEST_SANITIZED && setrlimit(RLIMIT_AS, &lim) != 0) _exit(10);
    qisa_context* ctx = nullptr;
    if (qisa_context_create(model.get(), &p, &ctx, nullptr, 0) != QISA_OK) _exit(11);
    qisa_batch_entry e{0, 1, 1};
    if (qisa_decode(ctx, &e, 1) != QISA_OK) _exit(12);
    qisa_context_free(ctx);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "11: creation failed under RLIMIT_AS, 12: decode failed";
}

// Resource limits as API: the estimate is what creation is held to; a
// limit below it refuses with QISA_ERR_OUT_OF_MEMORY before allocating,
// and so does RLIMIT_AS (in a child) for a context far beyond it.
TEST(HostileInput, ContextCreationHonoursItsMemoryLimit) {
  auto model = small_model();
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.backend = QISA_BACKEND_CPU;
  p.max_sequences = 1000;
  uint64_t need = 0;
  char err[512] = "";
  ASSERT_EQ(qisa_context_memory_estimate(model.get(), &p, &need, err, sizeof err), QISA_OK) << err;
  p.max_memory_bytes = need - 1;
  expect_refused(model.get(), p, QISA_ERR_OUT_OF_MEMORY, "max_memory_bytes");
  p.max_memory_bytes = need;
  expect_created(model.get(), p);
  // The estimate grows with what the caller asks for.
  uint64_t more = 0;
  p.max_sequences = 2000;
  ASSERT_EQ(qisa_context_memory_estimate(model.get(), &p, &more, err, sizeof err), QISA_OK);
  EXPECT_GT(more, need);
  // Bad params fail the estimate like creation; NULLs are refused.
  p.max_batch = 0;
  EXPECT_EQ(qisa_context_memory_estimate(model.get(), &p, &more, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_context_memory_estimate(nullptr, nullptr, &more, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_context_memory_estimate(model.get(), nullptr, nullptr, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);

  // 65536 sequences of 64 tokens at n_embd 64: 4.3 GB of cache, over a
  // 1 GiB RLIMIT_AS.
  if (QISA_TEST_SANITIZED) GTEST_SKIP() << "RLIMIT_AS cannot be lowered under ASan/TSan (the rest ran)";
  writer::SyntheticSpec wide;
  wide.n_ctx = 64;
  wide.n_embd = 64;
  auto wide_model = synthetic(wide);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rlimit lim{};
    getrlimit(RLIMIT_AS, &lim);
    lim.rlim_cur = rlim_t{1} << 30;
    if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(10);
    qisa_context_params q;
    qisa_context_default_params(&q);
    q.backend = QISA_BACKEND_CPU;
    q.max_sequences = 1 << 16;
    q.max_batch = 1 << 16;
    qisa_context* c = nullptr;
    char msg[512] = "";
    const qisa_status st = qisa_context_create(wide_model.get(), &q, &c, msg, sizeof msg);
    if (st != QISA_ERR_OUT_OF_MEMORY || c != nullptr || std::strstr(msg, "RLIMIT_AS") == nullptr) {
      std::fprintf(stderr, "status %d: %s\n", st, msg);
      _exit(11);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Defect 3: the observables path built U^dag P U densely, O(h D^3) per
// projection, inside context creation: unbounded time. Above the stated
// limit it is refused at once with the way out.
TEST(HostileInput, DenseObservablesAboveTheLimitAreRefused) {
  writer::SyntheticSpec s;
  s.n_embd = 128;  // 7 qubits, 128 strings per projection: 2^28 per layer, limit 2^30
  s.n_layer = 5;
  s.vocab_size = 8;
  s.n_ctx = 4;
  auto model = synthetic(s);
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.backend = QISA_BACKEND_CPU;
  p.value_path = QISA_VALUE_PATH_OBSERVABLES;
  expect_refused(model.get(), p, QISA_ERR_UNSUPPORTED, "unitary path");
  // The unitary path of the same model is fine.
  p.value_path = QISA_VALUE_PATH_AUTO;
  expect_created(model.get(), p);
}

// Defect 4: loading a FIFO blocked forever in open().
TEST(HostileInput, LoadingAFifoDoesNotBlock) {
  test::TempFile fifo("model.fifo");
  ASSERT_EQ(mkfifo(fifo.path().c_str(), 0600), 0) << std::strerror(errno);
  for (int mmap : {1, 0}) {
    qisa_model_params mp;
    qisa_model_default_params(&mp);
    mp.use_mmap = mmap;
    auto result = std::async(std::launch::async, [&] {
      qisa_model* m = nullptr;
      char err[256] = "";
      const qisa_status st = qisa_model_load_file(fifo.path().c_str(), &mp, &m, err, sizeof err);
      return std::make_pair(st, std::string(err));
    });
    if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      // Release the blocked reader so the test can end, then fail.
      const int fd = ::open(fifo.path().c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
      FAIL() << "qisa_model_load_file blocked on a FIFO";
    }
    const auto [st, msg] = result.get();
    EXPECT_EQ(st, QISA_ERR_IO);
    EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  }
}

// A saved state with its bytes at hand, for tampering.
struct SavedState {
  std::vector<uint8_t> bytes;
  size_t len = 0;
};

SavedState save(qisa_context* ctx, int32_t seq) {
  SavedState s;
  size_t need = 0;
  EXPECT_EQ(qisa_seq_state_save(ctx, seq, nullptr, 0, &need), QISA_ERR_BUFFER_TOO_SMALL);
  s.bytes.resize(need);
  EXPECT_EQ(qisa_seq_state_save(ctx, seq, s.bytes.data(), need, &need), QISA_OK);
  uint32_t len = 0;
  std::memcpy(&len, s.bytes.data() + 28, 4);
  s.len = len;
  return s;
}

// The state layout of docs/format.md (version 2): a 48-byte header whose
// last 8 bytes are the checksum of the first 40 and of the payload.
constexpr size_t kHeader = 48;
void reseal(std::vector<uint8_t>& b) {
  const uint64_t sum = hash64(b.data() + kHeader, b.size() - kHeader, hash64(b.data(), 40));
  std::memcpy(b.data() + 40, &sum, 8);
}

// Defect 5: a state from another model of the same shape, NaN keys or
// values, and key norms that do not match the keys were accepted (decoding
// then gave NaN logits with QISA_OK). Each is refused; the target keeps
// what it had.
TEST(HostileInput, StatesAreCheckedBeforeTheyLoad) {
  auto model = small_model(1);
  auto other = small_model(2);  // same shape, other weights
  auto ctx = test::make_context(model.get(), 2);
  auto ctx_other = test::make_context(other.get(), 1);
  const std::vector<int32_t> toks = {5, 6, 7, 8};
  test::decode_all(ctx.get(), 0, toks);
  test::decode_all(ctx_other.get(), 0, toks);
  test::decode_all(ctx.get(), 1, {9, 10});
  const SavedState good = save(ctx.get(), 0);
  const SavedState foreign = save(ctx_other.get(), 0);
  ASSERT_EQ(good.bytes.size(), foreign.bytes.size());

  auto expect_refused = [&](const std::vector<uint8_t>& b, const char* why) {
    EXPECT_EQ(qisa_seq_state_load(ctx.get(), 1, b.data(), b.size()), QISA_ERR_INVALID_ARGUMENT) << why;
    EXPECT_NE(std::strstr(qisa_context_last_error(ctx.get()), why), nullptr) << qisa_context_last_error(ctx.get());
    int32_t n = 0;
    ASSERT_EQ(qisa_seq_length(ctx.get(), 1, &n), QISA_OK);
    EXPECT_EQ(n, 2) << why;
  };
  expect_refused(foreign.bytes, "different model");

  const size_t tokens_at = kHeader, layer0 = kHeader + 4 * good.len;
  const size_t d = 16, H = 1;
  std::vector<uint8_t> b = good.bytes;
  b[layer0 + 3] ^= 0x40;  // a flipped bit, checksum not updated
  expect_refused(b, "checksum");

  const float nan = std::numeric_limits<float>::quiet_NaN(), big = 1e30f;
  b = good.bytes;  // NaN in a value of layer 0, position 1
  std::memcpy(b.data() + layer0 + 4 * (good.len * d + 1 * d + 3), &nan, 4);
  reseal(b);
  expect_refused(b, "non-finite");

  b = good.bytes;  // a key changed, its norm not
  std::memcpy(b.data() + layer0 + 4 * (2 * d + 5), &big, 4);
  reseal(b);
  expect_refused(b, "|k|^2");

  b = good.bytes;  // a norm changed, its keys not
  std::memcpy(b.data() + layer0 + 4 * (2 * good.len * d + 0 * H), &big, 4);
  reseal(b);
  expect_refused(b, "|k|^2");

  b = good.bytes;  // a token out of range
  const int32_t bad_token = 1000;
  std::memcpy(b.data() + tokens_at + 4, &bad_token, 4);
  reseal(b);
  expect_refused(b, "token");

  // The untouched state loads and continues exactly like the original.
  ASSERT_EQ(qisa_seq_state_load(ctx.get(), 1, good.bytes.data(), good.bytes.size()), QISA_OK);
  const auto a = test::decode_all(ctx.get(), 0, {11});
  const auto c = test::decode_all(ctx.get(), 1, {11});
  EXPECT_EQ(test::max_abs_diff(a, c), 0.0f);
}

// Found by fuzz_state_load: a state whose edited values are finite but far
// outside what the model computes loaded (every check it can make without
// a forward pass passed), and the next decode gave non-finite logits with
// QISA_OK. Any overflow to NaN or infinity on the way to a kept logit now
// fails the decode (QISA_ERR_NUMERIC), and the sequence keeps its tokens;
// a window evaluation fails the same way. Made certain here with a model
// whose logits overflow in any summation order (test::overflowing_model).
TEST(HostileInput, LogitsThatOverflowFailTheDecode) {
  const auto model = test::overflowing_model();
  for (qisa_engine engine : {QISA_ENGINE_FAST, QISA_ENGINE_REFERENCE}) {
    auto ctx = test::make_context(model.get(), 1, 16, engine);
    const qisa_batch_entry prompt[2] = {{0, 5, 0}, {0, 6, 0}};
    ASSERT_EQ(qisa_decode(ctx.get(), prompt, 2), QISA_OK);  // no logit kept, none checked
    const qisa_batch_entry next{0, 7, 1};
    int32_t n = 0, token = 0;
    EXPECT_EQ(qisa_decode(ctx.get(), &next, 1), QISA_ERR_NUMERIC);
    EXPECT_NE(std::strstr(qisa_context_last_error(ctx.get()), "overflowed"), nullptr)
        << qisa_context_last_error(ctx.get());
    ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &n), QISA_OK);
    EXPECT_EQ(n, 2);
    EXPECT_EQ(qisa_decode_greedy(ctx.get(), &next, 1, &token), QISA_ERR_NUMERIC);
    ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &n), QISA_OK);
    EXPECT_EQ(n, 2);
    // A whole window too (its sequence, rewritten from position 0, is empty).
    const int32_t window[3] = {5, 6, 7};
    std::vector<float> logits(3 * 65);  // vocab 65
    EXPECT_EQ(qisa_evaluate_window(ctx.get(), 0, window, 3, logits.data(), logits.size()), QISA_ERR_NUMERIC);
    EXPECT_NE(std::strstr(qisa_context_last_error(ctx.get()), "overflowed"), nullptr);
    ASSERT_EQ(qisa_seq_length(ctx.get(), 0, &n), QISA_OK);
    EXPECT_EQ(n, 0);
  }
}

// Defect 7: the state of an empty sequence and text without tokens went
// through memcpy with a NULL pointer (UB; UBSan reports it in CI).
TEST(HostileInput, EmptyStatesAndEmptyTextsAreFine) {
  auto model = small_model();
  auto ctx = test::make_context(model.get(), 2);
  const SavedState empty = save(ctx.get(), 0);
  EXPECT_EQ(empty.len, 0u);
  test::decode_all(ctx.get(), 1, {1, 2});
  ASSERT_EQ(qisa_seq_state_load(ctx.get(), 1, empty.bytes.data(), empty.bytes.size()), QISA_OK)
      << qisa_context_last_error(ctx.get());
  int32_t n = -1;
  ASSERT_EQ(qisa_seq_length(ctx.get(), 1, &n), QISA_OK);
  EXPECT_EQ(n, 0);
  size_t count = 99;
  EXPECT_EQ(qisa_tokenize(model.get(), "", 0, nullptr, 0, &count, 0, nullptr, 0), QISA_OK);
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(qisa_tokenize(model.get(), nullptr, 0, nullptr, 0, &count, 0, nullptr, 0), QISA_OK);
  int32_t one = -1;
  EXPECT_EQ(qisa_tokenize(model.get(), "\xe2\x82\xac", 3, &one, 1, &count, QISA_TOKENIZE_SKIP_UNKNOWN, nullptr, 0),
            QISA_OK);
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(one, -1);
}

// Defect 7: a [ulong] shape vector (and [Pauli] structs) at 4 mod 8 passed
// the FlatBuffers verifier, which checks only a vector's 4-byte length, and
// was read misaligned. Shift everything after the file header by 4 bytes:
// offsets are relative, so the file stays valid for the verifier.
TEST(HostileInput, MisalignedEightByteVectorsAreRefused) {
  const auto good = writer::serialize(writer::make_synthetic_model({}));
  std::vector<uint8_t> shifted(good.size() + 4, 0);
  uint32_t root = 0;
  std::memcpy(&root, good.data(), 4);
  root += 4;
  std::memcpy(shifted.data(), &root, 4);
  std::memcpy(shifted.data() + 4, good.data() + 4, 4);  // file identifier
  std::memcpy(shifted.data() + 12, good.data() + 8, good.size() - 8);
  const auto r = test::load_bytes(shifted);
  EXPECT_EQ(r.status, QISA_ERR_CORRUPT) << r.message;
  EXPECT_NE(r.message.find("tensor shape"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("8-byte aligned"), std::string::npos) << r.message;
}

int collect(const char* piece, size_t n, void* user) {
  static_cast<std::string*>(user)->append(piece, n);
  return 0;
}

// Defect 8: a prompt longer than the window cost O(length x n_ctx) under
// the slide policy. qisa_generate now evaluates only the window the prompt
// leaves; the text must equal that of feeding every prompt token one by one
// through qisa_decode (each token past n_ctx re-evaluating the window), for
// both overflow policies that accept long prompts.
TEST(HostileInput, LongPromptsGenerateWhatStepwiseDecodingGives) {
  auto model = small_model();
  std::vector<int32_t> toks(100);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int32_t>((i * 7 + 3) % 65);
  size_t len = 0;
  std::string prompt(1024, '\0');
  ASSERT_EQ(qisa_detokenize(model.get(), toks.data(), toks.size(), prompt.data(), prompt.size(), &len), QISA_OK);
  prompt.resize(len);
  for (qisa_overflow policy : {QISA_OVERFLOW_SLIDE, QISA_OVERFLOW_SHIFT_HALF}) {
    auto ctx = test::make_context(model.get(), 1, 64, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, policy);
    qisa_generate_params p;
    qisa_generate_default_params(&p);
    p.max_tokens = 24;
    p.sampling.temperature = 0.0f;
    p.sampling.repeat_penalty = 1.0f;
    std::string fast;
    p.on_piece = collect;
    p.user_data = &fast;
    ASSERT_EQ(qisa_generate(ctx.get(), prompt.c_str(), &p, nullptr), QISA_OK) << qisa_context_last_error(ctx.get());

    auto step = test::make_context(model.get(), 1, 64, QISA_ENGINE_FAST, QISA_VALUE_PATH_AUTO, policy);
    const float* logits = nullptr;
    for (size_t i = 0; i < toks.size(); ++i) {
      const qisa_batch_entry e{0, toks[i], i + 1 == toks.size()};
      ASSERT_EQ(qisa_decode(step.get(), &e, 1), QISA_OK);
    }
    std::string slow;
    for (int n = 0; n < p.max_tokens; ++n) {
      ASSERT_EQ(qisa_get_logits(step.get(), 0, &logits), QISA_OK);
      const auto best = static_cast<int32_t>(std::max_element(logits, logits + 65) - logits);
      const char* piece = nullptr;
      ASSERT_EQ(qisa_token_piece(model.get(), best, &piece), QISA_OK);
      slow += piece;
      const qisa_batch_entry e{0, best, 1};
      ASSERT_EQ(qisa_decode(step.get(), &e, 1), QISA_OK);
    }
    EXPECT_EQ(fast, slow) << "overflow policy " << policy;
    EXPECT_EQ(fast.size(), 24u);
  }
}

}  // namespace
}  // namespace qisa
