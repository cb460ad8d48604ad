// Every operation of every backend of this build against the reference
// backend (the role llama.cpp's test-backend-ops plays): one operation at a
// time on random inputs, then whole forward passes, for every attention
// kind and stored type, at sizes that are no power of two, with few rows
// (the products on stored weights) and many (the widened / GEMM paths).
// Linked twice: with libqisa's own backends (CPU, and CUDA where a device
// is present), and with the emulated CUDA device (prefix "emulated.");
// ctest runs the CPU part again with QISA_CPU_KERNELS=generic.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "api_model.h"
#include "dtype.h"
#include "forward.h"
#include "registry.h"
#include "synthetic_model.h"
#include "test_support.h"

// Debian's libgomp is not built with ThreadSanitizer: under TSan the
// backends run on one thread (OpenMP's barriers would read as races).
#if defined(__SANITIZE_THREAD__)
#define QISA_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define QISA_TEST_TSAN 1
#endif
#endif
#ifndef QISA_TEST_TSAN
#define QISA_TEST_TSAN 0
#endif

namespace qisa {
namespace {

struct Case {
  qisa_attention_kind kind;
  qisa_dtype dtype;
  qisa_ln_placement ln;
  qisa_activation act;
  qisa_value_path path;
};

std::string case_name(const ::testing::TestParamInfo<Case>& i) {
  std::string s = std::string(attention_kind(i.param.kind).name) + "_" + dtype_name(i.param.dtype) +
                  (i.param.ln == QISA_LN_PRE ? "_pre" : "_post") +
                  (i.param.path == QISA_VALUE_PATH_OBSERVABLES ? "_observables"
                   : i.param.path == QISA_VALUE_PATH_GATES     ? "_gates"
                                                               : "");
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

using test::random_values;

// |got - want| <= tol (1 + max |want|), element by element.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what,
                  float tol = 2e-4f) {
  ASSERT_EQ(got.size(), want.size()) << what;
  float scale = 1.0f;
  for (float w : want) scale = std::max(scale, 1.0f + std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << " [" << i << "]";
    ASSERT_NEAR(got[i], want[i], tol * scale) << what << " [" << i << "]";
  }
}

class OpsParity : public ::testing::TestWithParam<Case> {
 protected:
  static constexpr int64_t kRows = 19;  // > the CUDA GEMV rows, >= the CPU widening rows

  void SetUp() override {
    const Case& c = GetParam();
    writer::SyntheticSpec spec;
    spec.kind = c.kind;
    spec.n_embd = 24;
    spec.n_head = 2;
    spec.n_layer = 2;
    spec.n_ctx = 23;
    spec.ln_placement = c.ln;
    spec.activation = c.act;
    spec.weight_dtype = c.dtype;
    spec.unitary_dtype = c.dtype;
    spec.observables = c.path == QISA_VALUE_PATH_OBSERVABLES;
    loaded_ = test::load_desc(writer::make_synthetic_model(spec));
    ASSERT_EQ(loaded_.status, QISA_OK) << loaded_.message;
    options_.value_path = c.path;
    options_.max_rows = kRows;
    options_.max_sequences = 2;
    options_.threads = QISA_TEST_TSAN ? 1 : 2;
  }

  const Model& model() const { return model_of(loaded_.model.get()); }

  std::unique_ptr<Backend> make(const BackendEntry& e) {
    std::string info;
    return e.create(model(), slots_, options_, &info);
  }

  // The reference row and the rows under test usable here.
  static const BackendEntry& reference() {
    for (const BackendEntry* e : backend_entries())
      if (e->engine == QISA_ENGINE_REFERENCE) return *e;
    throw std::runtime_error("no reference backend");
  }
  static std::vector<const BackendEntry*> under_test() {
    std::vector<const BackendEntry*> v;
    for (const BackendEntry* e : backend_entries()) {
      std::string why;
      if (e->engine == QISA_ENGINE_FAST && e->usable(&why)) v.push_back(e);
    }
    return v;
  }

  test::Loaded loaded_;
  DeviceSlots slots_;
  BackendOptions options_;
};

// Rows of sequence 1 at positions 0..R-1 (each attends to those before it),
// or of sequences 0 and 1 in turn (a batch of two streams); every third
// wants logits, in an order that is not the rows' order.
std::vector<Row> rows_of(const ModelConfig& c, int64_t R, bool two_sequences = false) {
  std::vector<Row> rows;
  std::mt19937 rng(5);
  int32_t slot = 0;
  for (int64_t r = 0; r < R; ++r) {
    Row row;
    row.seq = two_sequences ? static_cast<int32_t>(r % 2) : 1;
    row.pos = static_cast<int32_t>(two_sequences ? r / 2 : r);
    row.token = static_cast<int32_t>(rng() % c.vocab_size);
    row.logits_slot = r % 3 == 0 ? 7 - slot++ : -1;
    rows.push_back(row);
  }
  return rows;
}

TEST_P(OpsParity, EveryOperationMatchesTheReference) {
  const ModelConfig& c = model().config;
  const WeightIds ids(c);
  const int64_t d = c.n_embd, hs = c.head_size();
  const auto width = [&](Buf b) { return b == Buf::Hidden ? static_cast<int64_t>(c.n_ff) : d; };
  const std::vector<const Linear*> linears = linears_by_id(model());
  for (const BackendEntry* entry : under_test()) {
    for (const auto& shape : {std::pair{int64_t{3}, false}, std::pair{kRows, false}, std::pair{kRows, true}}) {
      const int64_t R = shape.first;  // (no structured bindings: the lambdas below capture these)
      const bool two = shape.second;
      SCOPED_TRACE(std::string(entry->name) + " rows " + std::to_string(R) + (two ? " of two sequences" : ""));
      auto ref_backend = make(reference()), backend = make(*entry);
      Ops* ref = dynamic_cast<Ops*>(ref_backend.get());
      Ops* ops = dynamic_cast<Ops*>(backend.get());
      ASSERT_NE(ref, nullptr);
      ASSERT_NE(ops, nullptr);
      const std::vector<Row> rows = rows_of(c, R, two);
      uint32_t seed = 100;
      // Both backends get the same values in `b`.
      auto fill = [&](Buf b) {
        const auto v = random_values(static_cast<size_t>(R * width(b)), seed++);
        ref->upload(b, v.data(), R);
        ops->upload(b, v.data(), R);
      };
      auto compare = [&](Buf b, int64_t n, const std::string& what) {
        std::vector<float> want(static_cast<size_t>(n * width(b))), got(want.size());
        ref->download(b, want.data(), n);
        ops->download(b, got.data(), n);
        expect_close(got, want, what);
      };
      for (Ops* o : {ref, ops}) o->stage(rows);

      for (Ops* o : {ref, ops}) o->embed(Buf::X);
      compare(Buf::X, R, "embed");

      for (int64_t n = 0; n < ids.norms(); ++n) {
        fill(Buf::Tmp);
        for (Ops* o : {ref, ops}) o->layernorm(Buf::U, Buf::Tmp, n, R);
        compare(Buf::U, R, "layernorm " + std::to_string(n));
      }

      for (int64_t id = 0; id < ids.lm_head(); ++id) {
        if (!linears[static_cast<size_t>(id)]->weight) continue;  // a quantum role
        const int64_t l = id / ids.per_layer(), at = id % ids.per_layer();
        Buf in = Buf::X, out = Buf::Tmp;
        int64_t col = 0;
        std::vector<Act> acts = {Act::None};
        if (at == 1) out = Buf::Hidden, acts = {Act::None, Act::Relu, Act::Gelu};  // up
        if (at == 2) in = Buf::Hidden;                                             // down
        if (at >= 3) {  // a head's q, k or v into its columns
          const int64_t h = (at - 3) / kRoles, role = (at - 3) % kRoles;
          out = role == 0 ? Buf::Q : role == 1 ? Buf::K : Buf::V;
          col = h * hs;
        }
        for (Act act : acts) {
          fill(in);
          fill(out);
          for (Ops* o : {ref, ops}) o->linear(id, in, out, col, act, R);
          compare(out, R,
                  "linear " + std::to_string(id) + " of layer " + std::to_string(l) + " act " +
                      std::to_string(static_cast<int>(act)));
        }
      }

      for (int64_t l = 0; l < c.n_layer; ++l) {
        const std::string layer = " layer " + std::to_string(l);
        if (attention_kind(model().layers[static_cast<size_t>(l)].heads[0].kind).any_quantum()) {
          for (Buf b : {Buf::X, Buf::Q, Buf::K, Buf::V}) fill(b);
          for (Ops* o : {ref, ops}) o->quantum(l, Buf::X);
          for (Buf b : {Buf::Q, Buf::K, Buf::V}) compare(b, R, "quantum" + layer);
        }
        for (Buf b : {Buf::Q, Buf::K, Buf::V, Buf::Att}) fill(b);
        for (Ops* o : {ref, ops}) {
          o->kv_write(l, Buf::K, Buf::V);
          o->attention(l, Buf::Q, Buf::Att);
        }
        compare(Buf::Att, R, "attention" + layer);
      }

      fill(Buf::X);
      fill(Buf::Tmp);
      for (Ops* o : {ref, ops}) o->add(Buf::U, Buf::X, Buf::Tmp);
      compare(Buf::U, R, "add");

      int64_t m = 0;
      for (Ops* o : {ref, ops}) m = o->gather_logits(Buf::Tmp, Buf::X);
      EXPECT_EQ(m, (R + 2) / 3);
      compare(Buf::Tmp, m, "gather_logits");
    }
  }
}

// Whole forward passes: logits of every slot (and only the argmax where a
// backend declares it), a prefill then one more step of the same sequence.
TEST_P(OpsParity, ForwardPassesMatchTheReference) {
  const ModelConfig& c = model().config;
  const size_t V = c.vocab_size;
  for (const BackendEntry* entry : under_test()) {
    SCOPED_TRACE(entry->name);
    auto ref = make(reference()), backend = make(*entry);
    std::vector<Row> prefill = rows_of(c, kRows - 1);
    std::vector<Row> step = {Row{1, static_cast<int32_t>(kRows - 1), 3, 0}};
    for (const auto& rows : {prefill, step}) {
      std::vector<float> want(8 * V, 0.0f), got(8 * V, 0.0f);
      ref->forward(rows, want.data(), nullptr);
      backend->forward(rows, got.data(), nullptr);
      expect_close(got, want, "logits", 1e-3f);
    }
    // Probes (qisa_context_probe) of a fresh prefill: every matrix a probe
    // can name.
    for (qisa_probe what : {QISA_PROBE_LAYER_INPUT, QISA_PROBE_QUERIES, QISA_PROBE_KEYS}) {
      const int64_t layers = c.n_layer + (what == QISA_PROBE_LAYER_INPUT ? 1 : 0);
      for (int64_t l = 0; l < layers; ++l) {
        std::vector<float> want(prefill.size() * c.n_embd, NAN), got(want.size(), NAN);
        ref->probe(prefill, ProbePoint{what, l, want.data()});
        backend->probe(prefill, ProbePoint{what, l, got.data()});
        expect_close(got, want, "probe " + std::to_string(what) + " of layer " + std::to_string(l), 1e-3f);
      }
    }
    if (!backend->caps().device_argmax) continue;
    auto again = make(*entry);
    std::vector<int32_t> argmax(8, -1);
    std::vector<float> want(8 * V, 0.0f);
    ref->forward(prefill, want.data(), nullptr);
    again->forward(prefill, nullptr, argmax.data());
    for (const Row& r : prefill) {
      if (r.logits_slot < 0) continue;
      const float* row = want.data() + static_cast<size_t>(r.logits_slot) * V;
      EXPECT_EQ(argmax[static_cast<size_t>(r.logits_slot)], std::max_element(row, row + V) - row);
    }
  }
}

// Every attention kind (the table's rows) with every stored type, both
// LayerNorm placements and activations, and every value path.
std::vector<Case> cases() {
  std::vector<Case> v;
  for (const AttentionKind& k : attention_kinds()) {
    for (const DtypeTraits& t : dtypes()) {
      const bool pre = (static_cast<int>(k.kind) + static_cast<int>(t.type)) % 2 == 0;
      v.push_back({k.kind, t.type, pre ? QISA_LN_PRE : QISA_LN_POST, pre ? QISA_ACTIVATION_RELU : QISA_ACTIVATION_GELU,
                   QISA_VALUE_PATH_UNITARY});
    }
    if (k.any_quantum()) {
      v.push_back({k.kind, QISA_DTYPE_F32, QISA_LN_PRE, QISA_ACTIVATION_RELU, QISA_VALUE_PATH_OBSERVABLES});
      v.push_back({k.kind, QISA_DTYPE_F32, QISA_LN_POST, QISA_ACTIVATION_GELU, QISA_VALUE_PATH_GATES});
    }
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Kinds, OpsParity, ::testing::ValuesIn(cases()), case_name);

}  // namespace
}  // namespace qisa
