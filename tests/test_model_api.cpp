// The model part of the C API: argument checking, messages, queries.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <set>

#include "model_writer.h"
#include "test_support.h"

namespace qisa {
namespace {

TEST(ModelApi, NullArguments) {
  qisa_model* m = reinterpret_cast<qisa_model*>(0x1);
  char err[256];
  EXPECT_EQ(qisa_model_load_file(nullptr, nullptr, &m, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m, nullptr);
  EXPECT_STREQ(err, "path is NULL");
  EXPECT_EQ(qisa_model_load_file("x", nullptr, nullptr, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err, "out_model is NULL");
  EXPECT_EQ(qisa_model_load_buffer(nullptr, 10, nullptr, &m, err, sizeof err), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err, "data is NULL");
  EXPECT_EQ(qisa_model_get_info(nullptr, nullptr), QISA_ERR_INVALID_ARGUMENT);
  qisa_attention_kind k;
  EXPECT_EQ(qisa_model_head_kind(nullptr, 0, 0, &k), QISA_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qisa_model_tensor_info(nullptr, 0, nullptr, nullptr, nullptr), QISA_ERR_INVALID_ARGUMENT);
  const char* v;
  EXPECT_EQ(qisa_model_metadata(nullptr, "seed", &v), QISA_ERR_INVALID_ARGUMENT);
  qisa_model_free(nullptr);            // no-op
  qisa_model_default_params(nullptr);  // no-op
}

TEST(ModelApi, ParamsStructSizeIsChecked) {
  const auto bytes = writer::serialize(writer::make_synthetic_model({}));
  qisa_model_params p;
  qisa_model_default_params(&p);
  p.struct_size = 8;
  auto r = test::load_bytes(bytes, &p);
  EXPECT_EQ(r.status, QISA_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("struct_size"), std::string::npos) << r.message;
}

TEST(ModelApi, FileErrors) {
  qisa_model* m = nullptr;
  char err[256];
  EXPECT_EQ(qisa_model_load_file("/nonexistent/dir/m.qisa", nullptr, &m, err, sizeof err), QISA_ERR_IO);
  EXPECT_NE(std::strstr(err, "cannot open '/nonexistent/dir/m.qisa'"), nullptr) << err;
  EXPECT_EQ(qisa_model_load_file("/tmp", nullptr, &m, err, sizeof err), QISA_ERR_IO);
  EXPECT_NE(std::strstr(err, "not a regular file"), nullptr) << err;
  test::TempFile empty("empty.qisa");
  std::fclose(std::fopen(empty.path().c_str(), "wb"));
  EXPECT_EQ(qisa_model_load_file(empty.path().c_str(), nullptr, &m, err, sizeof err), QISA_ERR_NOT_A_MODEL);
  EXPECT_NE(std::strstr(err, "is empty"), nullptr) << err;
  EXPECT_EQ(m, nullptr);
}

TEST(ModelApi, MessageBufferIsTruncatedSafely) {
  qisa_model* m = nullptr;
  char tiny[6];
  std::memset(tiny, 'x', sizeof tiny);
  EXPECT_EQ(qisa_model_load_file("/nonexistent/m.qisa", nullptr, &m, tiny, sizeof tiny), QISA_ERR_IO);
  EXPECT_STREQ(tiny, "canno");
  char one[1] = {'x'};
  EXPECT_EQ(qisa_model_load_file("/nonexistent/m.qisa", nullptr, &m, one, 1), QISA_ERR_IO);
  EXPECT_EQ(one[0], '\0');
  EXPECT_EQ(qisa_model_load_file("/nonexistent/m.qisa", nullptr, &m, nullptr, 100), QISA_ERR_IO);
}

TEST(ModelApi, StatusStringsAreDistinct) {
  std::set<std::string> seen;
  for (int s = QISA_OK; s <= QISA_ERR_BACKEND; ++s) {
    const char* str = qisa_status_string(static_cast<qisa_status>(s));
    ASSERT_NE(str, nullptr);
    EXPECT_TRUE(seen.insert(str).second) << str;
  }
  EXPECT_STREQ(qisa_status_string(static_cast<qisa_status>(999)), "unknown status");
  EXPECT_STREQ(qisa_attention_kind_string(QISA_ATTENTION_QISA_V2), "qisa-v2");
  EXPECT_STREQ(qisa_attention_kind_string(QISA_ATTENTION_CSA), "csa");
}

TEST(ModelApi, Queries) {
  writer::SyntheticSpec s;
  s.kind = QISA_ATTENTION_QISA_V2;
  s.n_layer = 3;
  auto r = test::load_desc(writer::make_synthetic_model(s));
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  qisa_model* m = r.model.get();

  qisa_model_info info;
  info.struct_size = sizeof(info) - 1;
  EXPECT_EQ(qisa_model_get_info(m, &info), QISA_ERR_INVALID_ARGUMENT);
  info.struct_size = sizeof(info);
  ASSERT_EQ(qisa_model_get_info(m, &info), QISA_OK);
  EXPECT_EQ(info.vocab_size, 65);
  EXPECT_EQ(info.n_ctx, 16);
  EXPECT_EQ(info.n_layer, 3);
  EXPECT_EQ(info.n_ff, 64);
  EXPECT_EQ(info.format_major, QISA_FORMAT_VERSION_MAJOR);
  EXPECT_EQ(info.ln_placement, QISA_LN_PRE);
  EXPECT_EQ(info.activation, QISA_ACTIVATION_RELU);
  EXPECT_FLOAT_EQ(info.ln_eps, 1e-5f);
  EXPECT_EQ(info.bos_token, -1);  // a character vocabulary has no special tokens
  EXPECT_EQ(info.eos_token, -1);
  EXPECT_EQ(info.unk_token, -1);

  // A caller built against 0.3 passes the struct without the token fields:
  // those bytes stay untouched.
  qisa_model_info old;
  std::memset(&old, 0x5a, sizeof old);
  old.struct_size = offsetof(qisa_model_info, bos_token);
  ASSERT_EQ(qisa_model_get_info(m, &old), QISA_OK);
  EXPECT_EQ(old.struct_size, offsetof(qisa_model_info, bos_token));
  EXPECT_EQ(old.n_layer, 3);
  EXPECT_EQ(old.file_bytes, info.file_bytes);
  EXPECT_EQ(old.eos_token, 0x5a5a5a5a);
  EXPECT_EQ(info.tokenizer, QISA_TOKENIZER_CHAR);
  // ... and against 0.4, without the tokenizer kind.
  std::memset(&old, 0x5a, sizeof old);
  old.struct_size = offsetof(qisa_model_info, tokenizer);
  ASSERT_EQ(qisa_model_get_info(m, &old), QISA_OK);
  EXPECT_EQ(old.unk_token, -1);
  EXPECT_EQ(old.tokenizer, 0x5a5a5a5a);

  // The special tokens the file names come back as they are stored.
  writer::ModelDesc with_eos = writer::make_synthetic_model(s);
  with_eos.tokenizer.eos_id = 5;
  auto e = test::load_desc(with_eos);
  ASSERT_EQ(e.status, QISA_OK) << e.message;
  ASSERT_EQ(qisa_model_get_info(e.model.get(), &info), QISA_OK);
  EXPECT_EQ(info.eos_token, 5);
  EXPECT_EQ(info.bos_token, -1);

  qisa_attention_kind k;
  EXPECT_EQ(qisa_model_head_kind(m, 2, 0, &k), QISA_OK);
  EXPECT_EQ(k, QISA_ATTENTION_QISA_V2);
  EXPECT_EQ(qisa_model_head_kind(m, 3, 0, &k), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_model_head_kind(m, 0, 1, &k), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_model_head_kind(m, -1, 0, &k), QISA_ERR_OUT_OF_RANGE);

  // Dense kinds attend to every position: 0 and 0; a QSAT head gives what
  // its file stores.
  int32_t top_k = -1, window = -1;
  EXPECT_EQ(qisa_model_head_sparsity(m, 1, 0, &top_k, &window), QISA_OK);
  EXPECT_EQ(top_k, 0);
  EXPECT_EQ(window, 0);
  EXPECT_EQ(qisa_model_head_sparsity(m, 3, 0, &top_k, &window), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(qisa_model_head_sparsity(nullptr, 0, 0, &top_k, &window), QISA_ERR_INVALID_ARGUMENT);
  writer::SyntheticSpec qs = s;
  qs.kind = QISA_ATTENTION_QSAT;
  qs.sparsity = {5, 3};
  auto q = test::load_desc(writer::make_synthetic_model(qs));
  ASSERT_EQ(q.status, QISA_OK) << q.message;
  EXPECT_EQ(qisa_model_head_kind(q.model.get(), 2, 0, &k), QISA_OK);
  EXPECT_EQ(k, QISA_ATTENTION_QSAT);
  EXPECT_EQ(qisa_model_head_sparsity(q.model.get(), 2, 0, &top_k, nullptr), QISA_OK);
  EXPECT_EQ(qisa_model_head_sparsity(q.model.get(), 2, 0, nullptr, &window), QISA_OK);
  EXPECT_EQ(top_k, 5);
  EXPECT_EQ(window, 3);
  EXPECT_STREQ(qisa_attention_kind_string(QISA_ATTENTION_QSAT), "qsat");

  uint64_t total = 0;
  for (uint64_t i = 0; i < info.n_tensors; ++i) {
    const char* name = nullptr;
    qisa_dtype dt;
    uint64_t n = 0;
    ASSERT_EQ(qisa_model_tensor_info(m, i, &name, &dt, &n), QISA_OK);
    EXPECT_NE(name, nullptr);
    EXPECT_EQ(dt, QISA_DTYPE_F32);
    total += n;
  }
  EXPECT_EQ(total, info.n_params);
  EXPECT_EQ(qisa_model_tensor_info(m, info.n_tensors, nullptr, nullptr, nullptr), QISA_ERR_OUT_OF_RANGE);

  const char* v = nullptr;
  ASSERT_EQ(qisa_model_metadata(m, "dataset", &v), QISA_OK);
  EXPECT_STREQ(v, "synthetic");
  EXPECT_EQ(qisa_model_metadata(m, "no-such-key", &v), QISA_ERR_OUT_OF_RANGE);
  EXPECT_EQ(v, nullptr);
}

}  // namespace
}  // namespace qisa
