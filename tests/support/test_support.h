// Helpers shared by the unit tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api_model.h"
#include "model_storage.h"
#include "qisa.h"
#include "synthetic_model.h"

namespace qisa::test {

struct ModelDeleter {
  void operator()(qisa_model* m) const { qisa_model_free(m); }
};
using ModelPtr = std::unique_ptr<qisa_model, ModelDeleter>;

struct Loaded {
  qisa_status status = QISA_OK;
  std::string message;
  ModelPtr model;
};

// Loads bytes through the public C API (copying them).
Loaded load_bytes(const std::vector<uint8_t>& bytes, const qisa_model_params* params = nullptr);
// Serializes and loads a description.
Loaded load_desc(const writer::ModelDesc& desc, const qisa_model_params* params = nullptr);

struct ContextDeleter {
  void operator()(qisa_context* c) const { qisa_context_free(c); }
};
using ContextPtr = std::unique_ptr<qisa_context, ContextDeleter>;

// Loads a model file; fails the test (throws) on error.
ModelPtr load_file(const std::string& path);
// A context with max_sequences / max_batch / engine / value path set, one
// thread, on the CPU unless `backend` says otherwise (tests/gpu); throws with
// the library's message when it cannot be made.
ContextPtr make_context(const qisa_model* model, int32_t max_sequences = 1, int32_t max_batch = 64,
                        qisa_engine engine = QISA_ENGINE_FAST, qisa_value_path path = QISA_VALUE_PATH_AUTO,
                        qisa_overflow overflow = QISA_OVERFLOW_SLIDE, qisa_backend backend = QISA_BACKEND_CPU);
// Decodes `tokens` into sequence `seq` in one call, every entry asking for
// logits; returns them [tokens.size() * vocab].
std::vector<float> decode_all(qisa_context* ctx, int32_t seq, const std::vector<int32_t>& tokens);
// Largest |a - b|.
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);
// The largest logit difference to allow between two engines, value paths
// or row counts, which sum in different orders: `tol` where the stored
// type's products keep f32 activations. Where they round them to 8 bits
// (q8_0, q4_0), such a difference can move one activation to the
// neighbouring step (max|x| / 127 of its block): a jump, not a drift, so
// 0.1 (the kernels themselves are checked exactly in test_cpu_kernels).
float cross_path_tolerance(qisa_dtype weights, float tol);
// n values uniform in [-1, 1), the same for the same seed.
std::vector<float> random_values(size_t n, uint32_t seed);
// n token ids in 0..vocab-1, the same for the same seed.
std::vector<int32_t> random_tokens(size_t n, uint32_t vocab, uint32_t seed);
// The default synthetic model (vocab 65, f32) with every kept logit
// overflowing f32 in any summation order: the final LayerNorm gives 1 in
// every column (weight 0, bias 1) and the LM head is all 3e38, so each
// logit is n_embd x 3e38. Finite weights: it loads. Throws if it cannot.
ModelPtr overflowing_model();
// Path of a committed fixture under tests/fixtures.
std::string fixture(const std::string& name);

// A path under the test's temporary directory; removed by the destructor.
class TempFile {
 public:
  explicit TempFile(const std::string& name);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace qisa::test
