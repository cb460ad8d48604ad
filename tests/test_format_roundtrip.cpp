// write -> load -> every field and tensor equal, for every dtype and kind;
// tensors aligned; f32 weights used in place from the mapping.
#include <gtest/gtest.h>

#include <cstring>

#include "dtype.h"
#include "model_writer.h"
#include "test_support.h"

namespace qisa {
namespace {

using test::load_desc;
using writer::ModelDesc;
using writer::SyntheticSpec;

void expect_projection_equal(const writer::ProjectionDesc& want, const QuantumProjection& got) {
  EXPECT_EQ(got.n_qubits, want.n_qubits);
  EXPECT_EQ(static_cast<int>(got.encoding), want.encoding);
  EXPECT_EQ(static_cast<int>(got.circuit), want.circuit);
  EXPECT_EQ(got.angles, want.angles);
  ASSERT_EQ(got.paulis.size(), want.paulis.size());
  for (size_t i = 0; i < want.paulis.size(); ++i) {
    EXPECT_EQ(got.paulis[i].x_mask, want.paulis[i].x_mask);
    EXPECT_EQ(got.paulis[i].z_mask, want.paulis[i].z_mask);
  }
  EXPECT_EQ(got.observables_re != nullptr, want.has_observables);
}

void expect_model_equal(const ModelDesc& d, const Model& m) {
  const auto& c = m.config;
  EXPECT_EQ(m.format_major, d.format_major);
  EXPECT_EQ(m.format_minor, d.format_minor);
  EXPECT_EQ(c.vocab_size, d.config.vocab_size);
  EXPECT_EQ(c.n_ctx, d.config.n_ctx);
  EXPECT_EQ(c.n_embd, d.config.n_embd);
  EXPECT_EQ(c.n_layer, d.config.n_layer);
  EXPECT_EQ(c.n_head, d.config.n_head);
  EXPECT_EQ(c.n_ff, d.config.n_ff);
  EXPECT_EQ(c.ln_placement, d.config.ln_placement);
  EXPECT_EQ(c.ln_eps, d.config.ln_eps);
  EXPECT_EQ(c.activation, d.config.activation);
  EXPECT_EQ(c.tied_lm_head, d.config.tied_lm_head);
  EXPECT_EQ(c.reference_transposed, d.config.reference_transposed);
  EXPECT_EQ(m.tokenizer.pieces, d.tokenizer.pieces);
  ASSERT_EQ(m.layers.size(), d.layers.size());
  for (size_t l = 0; l < d.layers.size(); ++l) {
    ASSERT_EQ(m.layers[l].heads.size(), d.layers[l].size());
    for (size_t h = 0; h < d.layers[l].size(); ++h) {
      const auto& want = d.layers[l][h];
      const auto& got = m.layers[l].heads[h];
      EXPECT_EQ(static_cast<int>(got.kind), want.kind);
      if (want.kind == QISA_ATTENTION_CSA) {
        EXPECT_EQ(got.scale, want.scale);
      }
      for (Role r : kAllRoles) {
        ASSERT_EQ(got.qp(r).has_value(), want.quantum(r).has_value()) << role_letter(r);
        if (want.quantum(r)) expect_projection_equal(*want.quantum(r), *got.qp(r));
      }
    }
  }
  for (const auto& [k, v] : d.metadata) {
    auto it = m.metadata.find(k);
    ASSERT_NE(it, m.metadata.end()) << k;
    EXPECT_EQ(it->second, v);
  }
  ASSERT_EQ(m.tensors.size(), d.tensors.size());
  const uint8_t* base = m.storage->data();
  for (size_t i = 0; i < d.tensors.size(); ++i) {
    const auto& want = d.tensors[i];
    const auto& got = m.tensors[i];
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(static_cast<int>(got.dtype), want.dtype) << want.name;
    EXPECT_EQ(got.shape, want.shape) << want.name;
    ASSERT_EQ(got.bytes, want.bytes.size()) << want.name;
    EXPECT_EQ(std::memcmp(got.data, want.bytes.data(), got.bytes), 0) << want.name;
    EXPECT_EQ((got.data - base) % 64, 0) << want.name << " is not 64-byte aligned";
  }
}

struct Case {
  qisa_attention_kind kind;
  qisa_dtype dtype;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "kind " << c.kind << ", dtype " << c.dtype;
}

std::string case_name(const ::testing::TestParamInfo<Case>& p) {
  static const char* const kKinds[] = {"csa", "v1", "v2", "v3"};
  return std::string(kKinds[p.param.kind]) + "_" + dtype_name(p.param.dtype);
}

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, EveryFieldAndTensorEqual) {
  SyntheticSpec s;
  s.kind = GetParam().kind;
  s.weight_dtype = s.unitary_dtype = GetParam().dtype;
  s.n_embd = 16;
  s.n_head = 2;
  s.observables = s.kind != QISA_ATTENTION_CSA;
  s.seed = 3;
  const ModelDesc d = writer::make_synthetic_model(s);
  auto r = load_desc(d);
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  EXPECT_EQ(r.message, "");
  expect_model_equal(d, model_of(r.model.get()));

  qisa_model_info info;
  info.struct_size = sizeof info;
  ASSERT_EQ(qisa_model_get_info(r.model.get(), &info), QISA_OK);
  EXPECT_EQ(info.n_embd, 16);
  EXPECT_EQ(info.n_head, 2);
  EXPECT_EQ(info.n_qubits, s.kind == QISA_ATTENTION_CSA ? 0 : 4);
  EXPECT_EQ(info.n_tensors, d.tensors.size());
  qisa_attention_kind k;
  ASSERT_EQ(qisa_model_head_kind(r.model.get(), 1, 1, &k), QISA_OK);
  EXPECT_EQ(k, s.kind);
}

INSTANTIATE_TEST_SUITE_P(
    KindsAndDtypes, RoundTrip,
    ::testing::Values(Case{QISA_ATTENTION_CSA, QISA_DTYPE_F32}, Case{QISA_ATTENTION_QISA_V1, QISA_DTYPE_F32},
                      Case{QISA_ATTENTION_QISA_V2, QISA_DTYPE_F32}, Case{QISA_ATTENTION_QISA_V3, QISA_DTYPE_F32},
                      Case{QISA_ATTENTION_QISA_V3, QISA_DTYPE_F16}, Case{QISA_ATTENTION_QISA_V3, QISA_DTYPE_BF16},
                      Case{QISA_ATTENTION_QISA_V3, QISA_DTYPE_Q8_0}, Case{QISA_ATTENTION_QISA_V2, QISA_DTYPE_Q8_0},
                      Case{QISA_ATTENTION_CSA, QISA_DTYPE_F16}),
    case_name);

TEST(RoundTrip, MixedDtypesPerTensor) {
  SyntheticSpec s;
  s.weight_dtype = QISA_DTYPE_F16;
  s.unitary_dtype = QISA_DTYPE_Q8_0;
  const ModelDesc d = writer::make_synthetic_model(s);
  auto r = load_desc(d);
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  expect_model_equal(d, model_of(r.model.get()));
  const Model& m = model_of(r.model.get());
  EXPECT_EQ(m.layers[0].heads[0].qp(Role::V)->unitary_re->dtype, QISA_DTYPE_Q8_0);
  EXPECT_EQ(m.tok_emb->dtype, QISA_DTYPE_F16);
}

TEST(RoundTrip, Q4WeightsWithQ8Unitaries) {
  for (qisa_attention_kind kind : {QISA_ATTENTION_QISA_V3, QISA_ATTENTION_CSA}) {
    SyntheticSpec s;
    s.kind = kind;
    s.n_embd = 40;  // a ragged last block per row
    s.weight_dtype = QISA_DTYPE_Q4_0;
    s.unitary_dtype = QISA_DTYPE_Q8_0;
    const ModelDesc d = writer::make_synthetic_model(s);
    auto r = load_desc(d);
    ASSERT_EQ(r.status, QISA_OK) << r.message;
    expect_model_equal(d, model_of(r.model.get()));
    const Model& m = model_of(r.model.get());
    EXPECT_EQ(m.tok_emb->dtype, QISA_DTYPE_Q4_0);
    EXPECT_EQ(m.tok_emb->bytes, m.tok_emb->rows() * 2 * 18);
    EXPECT_EQ(m.format_minor, QISA_FORMAT_VERSION_MINOR);
  }
}

TEST(RoundTrip, ValuesSurviveQuantization) {
  // tensor_values(make_tensor(x)) is x within each type's error.
  std::vector<float> x(96);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i));
  for (qisa_dtype t : {QISA_DTYPE_F32, QISA_DTYPE_F16, QISA_DTYPE_BF16, QISA_DTYPE_Q8_0, QISA_DTYPE_Q4_0}) {
    const auto back = writer::tensor_values(writer::make_tensor("x", {3, 32}, x, t));
    // Q4_0: one step of a block whose largest value is about 1 (|m| / 8).
    const float tol = t == QISA_DTYPE_F32    ? 0.0f
                      : t == QISA_DTYPE_F16  ? 5e-4f
                      : t == QISA_DTYPE_BF16 ? 4e-3f
                      : t == QISA_DTYPE_Q8_0 ? 4.5e-3f
                                             : 0.126f;
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(back[i], x[i], tol) << dtype_name(t);
  }
}

TEST(RoundTrip, TiedHeadPostLnGeluAndTransposedFlag) {
  SyntheticSpec s;
  s.tied_lm_head = true;
  s.ln_placement = QISA_LN_POST;
  s.activation = QISA_ACTIVATION_GELU;
  s.reference_transposed = true;
  const ModelDesc d = writer::make_synthetic_model(s);
  auto r = load_desc(d);
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  expect_model_equal(d, model_of(r.model.get()));
  const Model& m = model_of(r.model.get());
  EXPECT_EQ(m.lm_head.weight, m.tok_emb);
  qisa_model_info info;
  info.struct_size = sizeof info;
  ASSERT_EQ(qisa_model_get_info(r.model.get(), &info), QISA_OK);
  EXPECT_EQ(info.reference_transposed, 1);
  EXPECT_EQ(info.tied_lm_head, 1);
}

TEST(RoundTrip, NewerMinorVersionIsAccepted) {
  ModelDesc d = writer::make_synthetic_model({});
  d.format_minor = QISA_FORMAT_VERSION_MINOR + 7;
  auto r = load_desc(d);
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  qisa_model_info info;
  info.struct_size = sizeof info;
  ASSERT_EQ(qisa_model_get_info(r.model.get(), &info), QISA_OK);
  EXPECT_EQ(info.format_minor, QISA_FORMAT_VERSION_MINOR + 7);
}

// The 6-layer, 128-wide f32 model of the issue: loading from a file maps it,
// and every tensor points into the mapping (no weight byte is copied).
TEST(ZeroCopy, MappedF32ModelUsesTheMapping) {
  SyntheticSpec s;
  s.n_embd = 128;
  s.n_layer = 6;
  s.n_head = 1;
  s.kind = QISA_ATTENTION_QISA_V3;
  const ModelDesc d = writer::make_synthetic_model(s);
  test::TempFile file("zero_copy.qisa");
  writer::write_file(d, file.path());

  qisa_model* raw = nullptr;
  char err[256];
  ASSERT_EQ(qisa_model_load_file(file.path().c_str(), nullptr, &raw, err, sizeof err), QISA_OK) << err;
  test::ModelPtr model(raw);
  const Model& m = model_of(model.get());
  ASSERT_TRUE(m.storage->is_mapped());
  const uint8_t* lo = m.storage->data();
  const uint8_t* hi = lo + m.storage->size();
  uint64_t tensor_bytes = 0;
  for (const auto& t : m.tensors) {
    EXPECT_GE(t.data, lo) << t.name;
    EXPECT_LE(t.data + t.bytes, hi) << t.name;
    tensor_bytes += t.bytes;
  }
  EXPECT_GT(tensor_bytes, 6u * 128 * 128 * 4);
  expect_model_equal(d, m);

  // Read into memory instead of mapping: same content, not mapped.
  qisa_model_params p;
  qisa_model_default_params(&p);
  p.use_mmap = 0;
  ASSERT_EQ(qisa_model_load_file(file.path().c_str(), &p, &raw, err, sizeof err), QISA_OK) << err;
  test::ModelPtr read(raw);
  EXPECT_FALSE(model_of(read.get()).storage->is_mapped());
  expect_model_equal(d, model_of(read.get()));
}

TEST(ZeroCopy, BorrowedAlignedBufferIsUsedInPlace) {
  const auto bytes = writer::serialize(writer::make_synthetic_model({}));
  std::vector<uint8_t> storage(bytes.size() + 64);
  uint8_t* aligned = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64;
  std::memcpy(aligned, bytes.data(), bytes.size());
  qisa_model_params p;
  qisa_model_default_params(&p);
  p.copy_buffer = 0;
  qisa_model* raw = nullptr;
  ASSERT_EQ(qisa_model_load_buffer(aligned, bytes.size(), &p, &raw, nullptr, 0), QISA_OK);
  test::ModelPtr model(raw);
  EXPECT_EQ(model_of(model.get()).storage->data(), aligned);
  EXPECT_GE(model_of(model.get()).tok_emb->data, aligned);
  EXPECT_LT(model_of(model.get()).tok_emb->data, aligned + bytes.size());

  // A misaligned buffer is copied even when copy_buffer is 0.
  std::memmove(aligned + 1, aligned, bytes.size());
  ASSERT_EQ(qisa_model_load_buffer(aligned + 1, bytes.size(), &p, &raw, nullptr, 0), QISA_OK);
  test::ModelPtr copied(raw);
  EXPECT_NE(model_of(copied.get()).storage->data(), aligned + 1);
}

TEST(ZeroCopy, CopiedBufferOutlivesTheCallersBytes) {
  const ModelDesc d = writer::make_synthetic_model({});
  auto bytes = writer::serialize(d);
  auto r = test::load_bytes(bytes);
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  std::fill(bytes.begin(), bytes.end(), 0xAB);
  bytes.clear();
  bytes.shrink_to_fit();
  expect_model_equal(d, model_of(r.model.get()));
}

}  // namespace
}  // namespace qisa
