// Byte-level BPE: GPT-2's byte map, the chunk rule, learning, exact round
// trips of any bytes through the C API, the loader's checks of a tokenizer
// table, and streamed output that never splits a UTF-8 character.
// tests/tokenizer/test_bpe_reference.py checks the encoding against an
// independent Python implementation.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bpe.h"
#include "qisa.h"
#include "synthetic_model.h"
#include "test_support.h"
#include "utf8.h"
#include "utf8_stream.h"

namespace qisa {
namespace {

std::string shakespeare() {
  std::ifstream f(QISA_TEST_TEXT);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string all_bytes_and_noise() {
  std::string s;
  for (int b = 0; b < 256; ++b) s += static_cast<char>(b);
  std::mt19937 rng(5);
  for (int i = 0; i < 5000; ++i) s += static_cast<char>(rng() & 0xff);
  s += "\xC3\x28 \xE2\x82 \xF0\x9F\x98\x80 caf\xC3\xA9 \xED\xA0\x80 \xF4\x90\x80\x80";  // invalid and valid UTF-8
  s += std::string(300, ' ') + "x" + std::string(200, 'a') + std::string(100, '\n') + "\t \t  end";
  return s;
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    if (!utf8_next(s, i, &cp)) return false;
  }
  return true;
}

TEST(Bpe, ByteMapIsGpt2sAndInvertible) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string stored = bpe::to_stored(all);
  EXPECT_TRUE(valid_utf8(stored));
  EXPECT_EQ(stored.find(' '), std::string::npos);  // merges are "left right"
  std::string back;
  ASSERT_TRUE(bpe::from_stored(stored, &back));
  EXPECT_EQ(back, all);
  EXPECT_EQ(bpe::to_stored(" the"), "\xC4\xA0the");  // 'Ġthe', as in GPT-2's vocabulary
  EXPECT_EQ(bpe::to_stored("\n"), "\xC4\x8A");       // 'Ċ'
  EXPECT_EQ(bpe::byte_to_code_point(0), 0x100u);
  EXPECT_EQ(bpe::byte_to_code_point(0xAD), 0x143u);  // the soft hyphen is not printable
  EXPECT_FALSE(bpe::from_stored("a b", &back));      // a raw space is no mapped byte
  EXPECT_FALSE(bpe::from_stored("\xE2\x82\xAC", &back));
}

std::vector<std::string> chunks(const std::string& text) {
  std::vector<std::string> out;
  bpe::for_each_chunk(text, [&](size_t at, size_t len) { out.push_back(text.substr(at, len)); });
  return out;
}

TEST(Bpe, ChunkRule) {
  EXPECT_EQ(chunks("Hello world, it's 2024!\n\nOK"),
            (std::vector<std::string>{"Hello", " world", ",", " it", "'", "s", " 2024", "!", "\n\n", "OK"}));
  EXPECT_EQ(chunks("a   b \tc \n d"), (std::vector<std::string>{"a", "  ", " b", " \t", "c", " ", "\n", " d"}));
  EXPECT_EQ(chunks("caf\xC3\xA9 na\xC3\xAFve"), (std::vector<std::string>{"caf\xC3\xA9", " na\xC3\xAFve"}));
  const auto long_word = chunks(std::string(150, 'z'));  // cut every 64 bytes
  EXPECT_EQ(long_word, (std::vector<std::string>{std::string(64, 'z'), std::string(64, 'z'), std::string(22, 'z')}));
  EXPECT_TRUE(chunks("").empty());
  EXPECT_EQ(chunks(" "), (std::vector<std::string>{" "}));
}

TEST(Bpe, LearnedMergesCompressAndEveryInputRoundTrips) {
  const std::string text = shakespeare();
  const bpe::Learned l = bpe::learn(std::string_view(text).substr(0, 200000), 400);
  ASSERT_EQ(l.pieces.size(), 400u);
  EXPECT_EQ(l.merges.size(), l.merged.size());
  const bpe::Encoder enc(l.pieces, l.merges, l.merged);
  for (const std::string& s : {text, all_bytes_and_noise(), std::string()}) {
    std::vector<int32_t> ids;
    enc.encode(s, ids);
    std::string back;
    for (int32_t id : ids) back += l.pieces[static_cast<size_t>(id)];
    EXPECT_EQ(back, s);
  }
  std::vector<int32_t> ids;
  enc.encode(text, ids);
  EXPECT_LT(ids.size(), text.size() * 6 / 10);  // 400 tokens: under 0.6 tokens per byte
  // Learning is deterministic.
  const bpe::Learned again = bpe::learn(std::string_view(text).substr(0, 200000), 400);
  EXPECT_EQ(again.pieces, l.pieces);
  EXPECT_EQ(again.merges, l.merges);
  // A vocabulary without every byte cannot encode everything: refused.
  auto missing = l.pieces;
  missing[static_cast<size_t>('q')] = "qq";
  EXPECT_THROW(bpe::Encoder(missing, {}, {}), std::invalid_argument);
}

writer::ModelDesc bpe_model(const bpe::Learned& l) {
  return writer::synthetic_bpe_model(l);
}

std::vector<int32_t> tokenize(const qisa_model* m, const std::string& s) {
  size_t n = 0;
  EXPECT_EQ(qisa_tokenize(m, s.data(), s.size(), nullptr, 0, &n, 0, nullptr, 0),
            s.empty() ? QISA_OK : QISA_ERR_BUFFER_TOO_SMALL);
  std::vector<int32_t> ids(n);
  EXPECT_EQ(qisa_tokenize(m, s.data(), s.size(), ids.data(), ids.size(), &n, 0, nullptr, 0), QISA_OK);
  return ids;
}

TEST(BpeModel, TheCApiRoundTripsAnyBytesExactly) {
  const std::string text = shakespeare();
  const bpe::Learned l = bpe::learn(std::string_view(text).substr(0, 100000), 320);
  auto loaded = test::load_desc(bpe_model(l));
  ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
  const qisa_model* m = loaded.model.get();
  qisa_model_info info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(qisa_model_get_info(m, &info), QISA_OK);
  EXPECT_EQ(info.tokenizer, QISA_TOKENIZER_BYTE_BPE);
  for (const std::string& s : {text, all_bytes_and_noise()}) {
    const auto ids = tokenize(m, s);
    std::vector<int32_t> want;
    bpe::Encoder(l.pieces, l.merges, l.merged).encode(s, want);
    EXPECT_EQ(ids, want);
    size_t len = 0;
    EXPECT_EQ(qisa_detokenize(m, ids.data(), ids.size(), nullptr, 0, &len), QISA_ERR_BUFFER_TOO_SMALL);
    std::string back(len + 1, '\0');
    ASSERT_EQ(qisa_detokenize(m, ids.data(), ids.size(), back.data(), back.size(), &len), QISA_OK);
    back.resize(len);
    EXPECT_EQ(back, s);  // NUL bytes and invalid UTF-8 included
  }
  // The NUL byte's token: qisa_token_bytes shows it, qisa_token_piece cannot.
  const auto zero = tokenize(m, std::string(1, '\0'));
  ASSERT_EQ(zero.size(), 1u);
  const char* bytes = nullptr;
  size_t n = 0;
  ASSERT_EQ(qisa_token_bytes(m, zero[0], &bytes, &n), QISA_OK);
  EXPECT_EQ(std::string(bytes, n), std::string(1, '\0'));
  EXPECT_EQ(qisa_token_bytes(m, -1, &bytes, &n), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_token_bytes(m, static_cast<int32_t>(l.pieces.size()), &bytes, &n), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_token_bytes(m, 0, nullptr, &n), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_token_bytes(nullptr, 0, &bytes, &n), QISA_ERR_INVALID_ARGUMENT);
}

TEST(BpeModel, TheLoaderRefusesBrokenTables) {
  const std::string text = shakespeare();
  const bpe::Learned l = bpe::learn(std::string_view(text).substr(0, 50000), 300);
  auto expect = [&](writer::ModelDesc d, const std::string& says) {
    auto r = test::load_desc(d);
    EXPECT_EQ(r.status, QISA_ERR_INVALID_MODEL) << says;
    EXPECT_NE(r.message.find(says), std::string::npos) << r.message;
  };
  ASSERT_EQ(test::load_desc(bpe_model(l)).status, QISA_OK);
  auto d = bpe_model(l);
  d.tokenizer.pieces[static_cast<size_t>('q')] = bpe::to_stored("qq@");  // byte 'q' has no token now
  expect(d, "no token for byte 0x71");
  d = bpe_model(l);
  d.tokenizer.merges[3] = "nospace";
  expect(d, "merge 3 is not \"left right\"");
  d = bpe_model(l);
  d.tokenizer.merges[4] = "a b c";
  expect(d, "merge 4 is not \"left right\"");
  d = bpe_model(l);
  d.tokenizer.merges[5] = bpe::to_stored("zq") + " " + bpe::to_stored("x");
  expect(d, "merge 5 names a piece the vocabulary lacks (left)");
  d = bpe_model(l);
  d.tokenizer.merges[6] = "a q";  // both pieces exist, "aq" does not
  expect(d, "merge 6 names a piece the vocabulary lacks (their concatenation)");
  d = bpe_model(l);
  d.tokenizer.pieces.back() = "\xE2\x82\xAC";  // U+20AC is no mapped byte
  expect(d, "outside GPT-2's byte map");
  d = bpe_model(l);
  d.tokenizer.kind = 0;  // a char tokenizer with merges
  d.tokenizer.pieces.resize(l.pieces.size());
  expect(d, "char tokenizer");
}

TEST(Utf8Stream, HoldsBackSplitCharactersAndReplacesWhatCanNeverBeOne) {
  std::vector<std::string> got;
  auto emit = [&](const std::string& s) { got.push_back(s); };
  Utf8Stream s;
  s.add("caf\xC3", emit);  // 'é' split across two tokens
  s.add("\xA9!", emit);
  s.add("\xF0\x9F", emit);
  s.add("\x98", emit);
  s.add("\x80", emit);
  EXPECT_EQ(got, (std::vector<std::string>{"caf", "\xC3\xA9!", "\xF0\x9F\x98\x80"}));
  got.clear();
  s.add(
      "\xFF"
      "a\xC3("
      "\xE0\x80",
      emit);  // never characters: U+FFFD each byte
  EXPECT_EQ(got, (std::vector<std::string>{"\xEF\xBF\xBD"
                                           "a"
                                           "\xEF\xBF\xBD("
                                           "\xEF\xBF\xBD\xEF\xBF\xBD"}));
  got.clear();
  s.add("x\xE2\x82", emit);
  EXPECT_TRUE(s.holding());
  s.finish(emit);  // the stream ends inside a character
  EXPECT_EQ(got, (std::vector<std::string>{"x", "\xEF\xBF\xBD"}));
  EXPECT_FALSE(s.holding());
}

TEST(BpeModel, GenerationStreamsOnlyWholeCharacters) {
  // A byte vocabulary with random weights: sampled text is mostly partial
  // and invalid UTF-8, which the stream must never pass on.
  const bpe::Learned l = bpe::learn("\xC3\xA9\xC3\xA9 \xE2\x82\xAC\xE2\x82\xAC", 260);
  auto loaded = test::load_desc(bpe_model(l));
  ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
  qisa_context_params cp;
  qisa_context_default_params(&cp);
  cp.backend = QISA_BACKEND_CPU;
  cp.n_threads = 1;
  qisa_context* raw = nullptr;
  ASSERT_EQ(qisa_context_create(loaded.model.get(), &cp, &raw, nullptr, 0), QISA_OK);
  test::ContextPtr ctx(raw);
  size_t pieces = 0, bytes = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::vector<std::string> out;
    qisa_generate_params gp;
    qisa_generate_default_params(&gp);
    gp.max_tokens = 200;
    gp.sampling.temperature = 1.5f;
    gp.sampling.seed = seed;
    gp.on_piece = [](const char* p, size_t n, void* u) {
      static_cast<std::vector<std::string>*>(u)->emplace_back(p, n);
      return 0;
    };
    gp.user_data = &out;
    ASSERT_EQ(qisa_generate(ctx.get(), "\xC3", &gp, nullptr), QISA_OK) << qisa_context_last_error(ctx.get());
    for (const auto& p : out) {
      EXPECT_TRUE(valid_utf8(p));
      bytes += p.size();
    }
    pieces += out.size();
    ASSERT_EQ(qisa_seq_clear(ctx.get(), 0), QISA_OK);
  }
  EXPECT_GT(pieces, 100u);
  EXPECT_GT(bytes, 300u);
}

}  // namespace
}  // namespace qisa
