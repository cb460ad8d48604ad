// Every way a file can be wrong gives its own status and a message naming
// the field, expected vs found - and never a crash (run under ASan/UBSan).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "model_writer.h"
#include "tensor_names.h"
#include "test_support.h"

namespace qisa {
namespace {

using test::load_bytes;
using test::load_desc;
using writer::ModelDesc;

ModelDesc base_model(qisa_attention_kind kind = QISA_ATTENTION_QISA_V3) {
  writer::SyntheticSpec s;
  s.kind = kind;
  s.n_layer = 2;
  return writer::make_synthetic_model(s);
}

#define EXPECT_LOAD_FAILS(desc_or_bytes, want_status, ...)                                                            \
  do {                                                                                                                \
    auto r_ = (desc_or_bytes);                                                                                        \
    EXPECT_EQ(r_.status, want_status) << qisa_status_string(r_.status) << ": " << r_.message;                         \
    EXPECT_EQ(r_.model, nullptr);                                                                                     \
    for (const char* part : {__VA_ARGS__})                                                                            \
      EXPECT_NE(r_.message.find(part), std::string::npos) << "message '" << r_.message << "' lacks '" << part << "'"; \
  } while (0)

TEST(Corruption, TruncatedAtManyOffsets) {
  const auto bytes = writer::serialize(base_model());
  size_t tried = 0;
  for (size_t len = 0; len < bytes.size(); len += (len < 128 ? 1 : bytes.size() / 257 + 1)) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
    auto r = load_bytes(cut);
    ASSERT_TRUE(r.status == QISA_ERR_NOT_A_MODEL || r.status == QISA_ERR_CORRUPT)
        << "length " << len << ": " << qisa_status_string(r.status) << " " << r.message;
    ASSERT_FALSE(r.message.empty());
    ++tried;
  }
  EXPECT_GT(tried, 300u);
  EXPECT_LOAD_FAILS(load_bytes({}), QISA_ERR_NOT_A_MODEL, "0 bytes");
}

TEST(Corruption, WrongIdentifier) {
  auto bytes = writer::serialize(base_model());
  std::memcpy(bytes.data() + 4, "GGUF", 4);
  EXPECT_LOAD_FAILS(load_bytes(bytes), QISA_ERR_NOT_A_MODEL, "file identifier is 'GGUF'", "expected 'QISA'");
}

TEST(Corruption, NewerMajorVersionIsRefused) {
  ModelDesc d = base_model();
  d.format_major = QISA_FORMAT_VERSION_MAJOR + 1;
  d.format_minor = 0;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_VERSION, "format version 2.0", "reads major version 1");
  d.format_major = 0;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_VERSION, "format version 0.0");
}

TEST(Corruption, OutOfRangeOffsets) {
  const auto good = writer::serialize(base_model());
  auto bytes = good;
  const uint32_t huge = 0x7ffffff0u;
  std::memcpy(bytes.data(), &huge, 4);  // root table offset
  EXPECT_LOAD_FAILS(load_bytes(bytes), QISA_ERR_CORRUPT, "verification");

  // The length prefix of a tensor's data vector claims more than the file.
  auto r = load_bytes(good);
  ASSERT_EQ(r.status, QISA_OK);
  const Model& m = model_of(r.model.get());
  const size_t off = static_cast<size_t>(m.tok_emb->data - m.storage->data());
  bytes = good;
  std::memcpy(bytes.data() + off - 4, &huge, 4);
  EXPECT_LOAD_FAILS(load_bytes(bytes), QISA_ERR_CORRUPT, "verification");
}

TEST(Corruption, ShapeAndSizeMismatches) {
  ModelDesc d = base_model();
  d.find_tensor(names::kTokEmb)->shape = {65, 8, 2};  // same element count, wrong shape
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "tok_emb", "[65, 8, 2]", "expected [65, 16]");

  d = base_model();
  d.find_tensor(names::kPosEmb)->bytes.resize(10);
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "pos_emb", "10 data bytes", "expected 1024");

  d = base_model();
  d.find_tensor(names::kLnFWeight)->dtype = QISA_DTYPE_F16;  // half as many bytes expected
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "ln_f.weight", "64 data bytes", "expected 32");

  d = base_model();
  d.find_tensor(names::kLnFWeight)->dtype = 9;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "unknown dtype 9");
}

TEST(Corruption, AbsurdClaimedSizes) {
  ModelDesc d = base_model();
  d.find_tensor(names::kTokEmb)->shape = {uint64_t{1} << 40, uint64_t{1} << 40};
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "tok_emb", "element count overflows");

  d = base_model();
  d.find_tensor(names::kTokEmb)->shape = {uint64_t{1} << 31, uint64_t{1} << 31};
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "tok_emb", "byte size overflows");

  d = base_model();
  d.find_tensor(names::kTokEmb)->shape = {uint64_t{1} << 30, 16};
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "tok_emb", "expected 68719476736");

  d = base_model();
  d.config.vocab_size = 4000000000u;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "config.vocab_size is 4000000000");

  d = base_model();
  d.config.n_embd = 0;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "config.n_embd is 0");

  d = base_model();
  d.config.n_head = 3;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "n_head 3 does not divide n_embd 16");

  d = base_model();
  d.config.ln_eps = std::numeric_limits<float>::quiet_NaN();
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "config.ln_eps");
}

TEST(Corruption, NanInUnitary) {
  ModelDesc d = base_model();
  auto* u = d.find_tensor("blk.1.head.0.v.unitary_im");
  auto vals = writer::tensor_values(*u);
  vals[5] = std::numeric_limits<float>::quiet_NaN();
  *u = writer::make_tensor(u->name, u->shape, vals);
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_NUMERIC, "blk.1.head.0.v.unitary_im", "non-finite", "[0, 5]");
}

TEST(Corruption, UnitaryThatIsNotUnitary) {
  ModelDesc d = base_model();
  for (const char* part : {"blk.0.head.0.v.unitary_re", "blk.0.head.0.v.unitary_im"}) {
    auto* u = d.find_tensor(part);
    auto vals = writer::tensor_values(*u);
    for (auto& v : vals) v *= 1.1f;
    *u = writer::make_tensor(u->name, u->shape, vals);
  }
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_NUMERIC, "blk.0.head.0.v", "is not unitary", "squared norm");
}

TEST(Corruption, UnitaryThatDoesNotMatchItsAngles) {
  ModelDesc d = base_model();
  d.layers[1][0].v->angles[2] += 0.5f;  // U is still unitary, but another one
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_NUMERIC, "blk.1.head.0.v", "does not match its angles");

  // With the check turned off the file loads (the column norms still pass).
  qisa_model_params p;
  qisa_model_default_params(&p);
  p.check_unitaries = 0;
  EXPECT_EQ(load_desc(d, &p).status, QISA_OK);

  d = base_model();
  d.layers[0][0].v->angles[0] = std::numeric_limits<float>::infinity();
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_NUMERIC, "blk.0.head.0.v", "angle 0");
}

TEST(Corruption, ObservablesThatDoNotMatch) {
  writer::SyntheticSpec s;
  s.observables = true;
  ModelDesc d = writer::make_synthetic_model(s);
  ASSERT_EQ(load_desc(d).status, QISA_OK);
  auto* o = d.find_tensor("blk.0.head.0.v.observables_re");
  auto vals = writer::tensor_values(*o);
  for (size_t i = 16 * 16 * 3; i < 16 * 16 * 4; ++i) vals[i] = -vals[i];  // observable 3 negated
  *o = writer::make_tensor(o->name, o->shape, vals);
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_NUMERIC, "observable 3 of 'blk.0.head.0.v'");
}

TEST(Corruption, PauliStrings) {
  ModelDesc d = base_model();
  d.layers[0][0].v->paulis[2].x_mask = 1u << 4;  // qubit beyond n = 4
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "blk.0.head.0.v", "Pauli string 2", "longer than 4 qubits");

  d = base_model();
  d.layers[0][0].v->paulis.pop_back();
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "15 Pauli strings, expected head size 16");

  d = base_model();
  d.layers[0][0].v->paulis[0] = {0, 0};
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "Pauli string 0 is all identity");

  d = base_model();
  d.layers[0][0].v->n_qubits = 5;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "n_qubits 5, expected ceil(log2 n_embd=16) = 4");

  d = base_model();
  d.layers[0][0].v->angles.pop_back();
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "11 angles, expected 3n = 12");
}

TEST(Corruption, MissingDuplicateAndUnexpectedTensors) {
  ModelDesc d = base_model();
  d.tensors.erase(d.tensors.begin() + static_cast<std::ptrdiff_t>(d.find_tensor(names::kLnFBias) - d.tensors.data()));
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "missing tensor 'ln_f.bias'");

  d = base_model();
  d.tensors.push_back(*d.find_tensor(names::kPosEmb));
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "'pos_emb' appears more than once");

  d = base_model();
  d.tensors.push_back(writer::make_tensor("blk.7.extra", {4}, {1, 2, 3, 4}));
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "unexpected tensor 'blk.7.extra'");

  // A v3 head's value projection is quantum: a linear weight for it is wrong.
  d = base_model();
  d.tensors.push_back(writer::make_tensor("blk.0.head.0.v.weight", {16, 16}, std::vector<float>(256, 0.0f)));
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "blk.0.head.0.v.weight", "quantum-inspired");
}

TEST(Corruption, StructureAgainstConfig) {
  ModelDesc d = base_model();
  d.layers.pop_back();
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "file has 1 layers, expected config.n_layer 2");

  d = base_model();
  d.layers[1].push_back(d.layers[1][0]);
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "layer 1 has 2 heads, expected config.n_head 1");

  d = base_model();
  d.layers[0][0].v.reset();
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "layer 0 head 0 (QISA v3) lacks a quantum projection for v");

  d = base_model(QISA_ATTENTION_CSA);
  d.layers[0][0].scale = -1.0f;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "CSA scale is -1");

  d = base_model();
  d.layers[0][0].kind = 7;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "attention kind 7");

  // QSAT's selection: at least one key, nothing beyond the window of
  // positions; the dense kinds store none.
  for (auto [top_k, window] : {std::pair<uint32_t, uint32_t>{0, 2}, {17, 0}, {4, 17}, {0xffffffffu, 0xffffffffu}}) {
    d = base_model(QISA_ATTENTION_QSAT);
    d.layers[1][0].sparsity = {top_k, window};
    EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "layer 1 head 0 (QSAT) has top_k",
                      "expected 1 <= top_k <= n_ctx=16");
  }
  d = base_model(QISA_ATTENTION_QSAT);
  d.layers[1][0].sparsity = {16, 16};  // dense in effect, and valid
  EXPECT_EQ(load_desc(d).status, QISA_OK);
  d = base_model();
  d.layers[0][0].sparsity = {4, 0};
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "layer 0 head 0 (QISA v3) has top_k 4 and window 0",
                    "expected 0 (dense attention)");
}

TEST(Corruption, Tokenizer) {
  ModelDesc d = base_model();
  d.tokenizer.pieces.pop_back();
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "tokenizer has 64 pieces, expected vocab_size 65");

  d = base_model();
  d.tokenizer.pieces[3] = d.tokenizer.pieces[1];
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "tokenizer pieces 1 and 3 are the same");

  d = base_model();
  d.tokenizer.pieces[4] = "\xff";
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "tokenizer piece 4 is not valid UTF-8");

  d = base_model();
  d.tokenizer.pieces[4] = "ab";
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "piece 4 has 2 characters");

  d = base_model();
  d.tokenizer.eos_id = 65;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "tokenizer.eos_id is 65");

  // A char table marked byte-level BPE: its raw newline is no mapped byte
  // (tests/test_tokenizer_bpe.cpp has the BPE table's own checks).
  d = base_model();
  d.tokenizer.kind = 1;
  EXPECT_LOAD_FAILS(load_desc(d), QISA_ERR_INVALID_MODEL, "outside GPT-2's byte map");
}

TEST(Corruption, NonFiniteWeightsWhenAsked) {
  ModelDesc d = base_model();
  auto* w = d.find_tensor("blk.1.ffn.up.weight");
  auto vals = writer::tensor_values(*w);
  vals[17] = std::numeric_limits<float>::infinity();
  *w = writer::make_tensor(w->name, w->shape, vals);
  EXPECT_EQ(load_desc(d).status, QISA_OK);  // not scanned by default
  qisa_model_params p;
  qisa_model_default_params(&p);
  p.check_weights_finite = 1;
  EXPECT_LOAD_FAILS(load_desc(d, &p), QISA_ERR_NUMERIC, "blk.1.ffn.up.weight", "row 1, column 1");
}

// Random byte flips: any status is fine, crashing or hanging is not.
TEST(Corruption, RandomByteFlipsNeverCrash) {
  const auto good = writer::serialize(base_model(QISA_ATTENTION_QISA_V2));
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  int ok = 0;
  for (int trial = 0; trial < 600; ++trial) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(next() % 4);
    // Most flips land in the metadata at the front, where structure lives.
    for (int f = 0; f < flips; ++f) {
      const size_t at = next() % (trial % 2 ? bytes.size() : std::min<size_t>(bytes.size(), 2048));
      bytes[at] ^= static_cast<uint8_t>(1u << (next() % 8));
    }
    auto r = load_bytes(bytes);
    if (r.status == QISA_OK)
      ++ok;
    else
      EXPECT_FALSE(r.message.empty());
  }
  EXPECT_LT(ok, 600);  // at least some flips are caught
}

}  // namespace
}  // namespace qisa
