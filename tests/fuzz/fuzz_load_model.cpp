// libFuzzer: arbitrary bytes as a model file. Loading must give QISA_OK or
// a status with a message and no model; a model that loads must answer
// every query, tokenize its own vocabulary, and (within a memory limit) run
// the same logits on the fast and the reference engine (when its weights
// are moderate: see below).
#include <cstring>
#include <string>

#include "api_model.h"
#include "dtype.h"
#include "fuzz_support.h"

using namespace qisa::fuzz;

namespace {

float max_abs_weight(const qisa_model* m) {
  float mx = 0.0f;
  for (const qisa::TensorView& t : qisa::model_of(m).tensors) {
    std::vector<float> row(t.cols());
    for (uint64_t r = 0; r < t.rows(); ++r) {
      qisa::dequantize_row(t.dtype, t.row(r), t.cols(), row.data());
      for (float v : row) mx = std::fmax(mx, std::fabs(v));
    }
  }
  return mx;
}

// Whether a matrix's stored type rounds the activations (q8_0, q4_0): the
// engines' rounding of the same value can then land on neighbouring 8-bit
// steps, a jump that no logit tolerance bounds on mutated weights.
bool rounds_activations(const qisa_model* m) {
  for (const qisa::TensorView& t : qisa::model_of(m).tensors)
    if (t.shape.size() > 1 && qisa::dtype_traits(t.dtype).rounds_activations) return true;
  return false;
}

void exercise(const qisa_model* m) {
  qisa_model_info info;
  info.struct_size = sizeof info;
  FUZZ_CHECK(qisa_model_get_info(m, &info) == QISA_OK, "info");
  for (uint64_t i = 0; i < info.n_tensors; ++i) {
    const char* name = nullptr;
    qisa_dtype dt;
    uint64_t n = 0;
    FUZZ_CHECK(qisa_model_tensor_info(m, i, &name, &dt, &n) == QISA_OK && name != nullptr, "tensor %llu",
               static_cast<unsigned long long>(i));
  }
  for (int32_t l = 0; l < info.n_layer; ++l) {
    for (int32_t h = 0; h < info.n_head; ++h) {
      qisa_attention_kind k;
      FUZZ_CHECK(qisa_model_head_kind(m, l, h, &k) == QISA_OK, "head %d %d", l, h);
    }
  }
  const char* v = nullptr;
  (void)qisa_model_metadata(m, "dataset", &v);
  // Every piece detokenizes, and its text tokenizes back to a non-empty list.
  for (int32_t t = 0; t < info.vocab_size && t < 512; ++t) {
    const char* piece = nullptr;
    FUZZ_CHECK(qisa_token_piece(m, t, &piece) == QISA_OK && piece != nullptr, "piece %d", t);
    size_t count = 0;
    const qisa_status st = qisa_tokenize(m, piece, std::strlen(piece), nullptr, 0, &count, 0, nullptr, 0);
    FUZZ_CHECK(st == QISA_OK || st == QISA_ERR_BUFFER_TOO_SMALL || st == QISA_ERR_UNKNOWN_CHARACTER, "tokenize %d", st);
  }
  if (info.reference_transposed || info.n_params > 200000 || info.n_ctx > 4096) return;
  // The engines sum in different orders; with huge weights (a mutated scale
  // gives 1e6 and more) a LayerNorm of nearly equal values is decided by
  // rounding alone, so only moderate models are held to equal logits.
  // Models with q8_0 / q4_0 matrices are held to the same status on both
  // engines, not to equal logits.
  const bool moderate = max_abs_weight(m) <= 64.0f && !rounds_activations(m);
  qisa_context* fast = make_context(m, 1, 4, QISA_ENGINE_FAST);
  qisa_context* ref = make_context(m, 1, 4, QISA_ENGINE_REFERENCE);
  if (fast != nullptr && ref != nullptr) {
    const qisa_batch_entry entries[3] = {{0, 0, 1}, {0, info.vocab_size - 1, 1}, {0, info.vocab_size / 2, 1}};
    const qisa_status a = qisa_decode(fast, entries, 3), b = qisa_decode(ref, entries, 3);
    // A logit that overflows fails the decode (QISA_ERR_NUMERIC); at the
    // edge of f32 one summation order may overflow where the other does
    // not, so only models with huge weights may differ there.
    const bool overflow_edge =
        !moderate && (a == QISA_ERR_NUMERIC || b == QISA_ERR_NUMERIC) && (a == QISA_OK || b == QISA_OK);
    FUZZ_CHECK(a == b || overflow_edge, "fast %d vs reference %d", a, b);
    if (a == QISA_OK && b == QISA_OK) {
      for (int32_t i = 0; i < 3; ++i) {
        const float *x = nullptr, *y = nullptr;
        FUZZ_CHECK(qisa_get_logits(fast, i, &x) == QISA_OK && qisa_get_logits(ref, i, &y) == QISA_OK, "logits");
        bool finite = true;
        for (int32_t j = 0; j < info.vocab_size; ++j) finite = finite && std::isfinite(x[j]) && std::isfinite(y[j]);
        if (finite && moderate) {
          int32_t w = 0;
          for (int32_t j = 1; j < info.vocab_size; ++j) w = std::fabs(x[j] - y[j]) > std::fabs(x[w] - y[w]) ? j : w;
          FUZZ_CHECK(logits_close(x, y, info.vocab_size, 2e-3f), "entry %d: fast and reference differ at %d: %g vs %g",
                     i, w, x[w], y[w]);
        }
      }
    }
  }
  qisa_context_free(fast);
  qisa_context_free(ref);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qisa_model_params mp;
  qisa_model_default_params(&mp);
  mp.check_weights_finite = size > 0 && (data[size - 1] & 1);
  qisa_model* m = nullptr;
  char err[512] = "";
  const qisa_status st = qisa_model_load_buffer(data, size, &mp, &m, err, sizeof err);
  if (st != QISA_OK) {
    FUZZ_CHECK(m == nullptr && err[0] != '\0', "status %d without a message", st);
    return 0;
  }
  exercise(m);
  qisa_model_free(m);
  return 0;
}
