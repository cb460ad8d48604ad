#include "test_support.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <utility>

#include "api_context.h"
#include "dtype.h"
#include "tensor_names.h"

namespace qisa::test {

static size_t model_of_context_vocab(qisa_context* ctx) {
  return ctx->impl->model().config.vocab_size;
}

Loaded load_bytes(const std::vector<uint8_t>& bytes, const qisa_model_params* params) {
  Loaded r;
  qisa_model* m = nullptr;
  char err[1024] = "sentinel";
  r.status = qisa_model_load_buffer(bytes.empty() ? "" : static_cast<const void*>(bytes.data()), bytes.size(), params,
                                    &m, err, sizeof err);
  r.message = err;
  r.model.reset(m);
  return r;
}

Loaded load_desc(const writer::ModelDesc& desc, const qisa_model_params* params) {
  return load_bytes(writer::serialize(desc), params);
}

ModelPtr overflowing_model() {
  auto desc = writer::make_synthetic_model({});
  for (const auto& [name, value] :
       {std::pair{names::kLnFWeight, 0.0f}, std::pair{names::kLnFBias, 1.0f}, std::pair{names::kLmHeadWeight, 3e38f}}) {
    writer::TensorData* t = desc.find_tensor(name);
    if (t == nullptr || t->dtype != QISA_DTYPE_F32) throw std::runtime_error(std::string("no f32 tensor ") + name);
    const std::vector<float> v(t->bytes.size() / 4, value);
    std::memcpy(t->bytes.data(), v.data(), t->bytes.size());
  }
  Loaded loaded = load_desc(desc);
  if (loaded.status != QISA_OK) throw std::runtime_error("overflowing model: " + loaded.message);
  return std::move(loaded.model);
}

ModelPtr load_file(const std::string& path) {
  qisa_model* m = nullptr;
  char err[512];
  if (qisa_model_load_file(path.c_str(), nullptr, &m, err, sizeof err) != QISA_OK) {
    throw std::runtime_error(path + ": " + err);
  }
  return ModelPtr(m);
}

ContextPtr make_context(const qisa_model* model, int32_t max_sequences, int32_t max_batch, qisa_engine engine,
                        qisa_value_path path, qisa_overflow overflow, qisa_backend backend) {
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.max_sequences = max_sequences;
  p.max_batch = max_batch;
  p.engine = engine;
  p.value_path = path;
  p.overflow = overflow;
  p.n_threads = 1;
  p.backend = backend;
  qisa_context* c = nullptr;
  char err[512];
  if (qisa_context_create(model, &p, &c, err, sizeof err) != QISA_OK) throw std::runtime_error(err);
  return ContextPtr(c);
}

std::vector<float> decode_all(qisa_context* ctx, int32_t seq, const std::vector<int32_t>& tokens) {
  std::vector<qisa_batch_entry> batch;
  for (int32_t t : tokens) batch.push_back({seq, t, 1});
  if (qisa_decode(ctx, batch.data(), static_cast<int32_t>(batch.size())) != QISA_OK) {
    throw std::runtime_error(qisa_context_last_error(ctx));
  }
  std::vector<float> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float* l = nullptr;
    if (qisa_get_logits(ctx, static_cast<int32_t>(i), &l) != QISA_OK) throw std::runtime_error("no logits");
    const auto V = model_of_context_vocab(ctx);
    out.insert(out.end(), l, l + V);
  }
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

float cross_path_tolerance(qisa_dtype weights, float tol) {
  return dtype_traits(weights).rounds_activations ? 0.1f : tol;
}

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

std::vector<int32_t> random_tokens(size_t n, uint32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

std::string fixture(const std::string& name) {
  return std::string(QISA_FIXTURES_DIR) + "/" + name;
}

TempFile::TempFile(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  path_ = std::string(dir ? dir : "/tmp") + "/qisa_test_" + std::to_string(::getpid()) + "_" + name;
}

TempFile::~TempFile() {
  std::remove(path_.c_str());
}

}  // namespace qisa::test
