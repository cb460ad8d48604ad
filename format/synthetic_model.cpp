#include "synthetic_model.h"

#include <cmath>

#include "dtype.h"
#include "tensor_names.h"
#include "utf8.h"

namespace qisa::writer {

namespace {

// splitmix64: small, portable, same stream on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  float symmetric(float a) { return static_cast<float>((2.0 * uniform() - 1.0) * a); }

 private:
  uint64_t s_;
};

}  // namespace

std::vector<PauliString> draw_paulis(uint32_t n, uint32_t count, uint64_t seed) {
  Rng rng(seed);
  std::vector<PauliString> out;
  while (out.size() < count) {
    PauliString p;
    for (uint32_t j = 0; j < n; ++j) {
      if (rng.uniform() < 0.9) continue;
      const uint64_t bit = uint64_t{1} << (n - 1 - j);
      switch (rng.next() % 3) {
        case 0: p.x_mask |= bit; break;  // X
        case 1:
          p.x_mask |= bit;
          p.z_mask |= bit;
          break;                          // Y
        default: p.z_mask |= bit; break;  // Z
      }
    }
    if ((p.x_mask | p.z_mask) != 0) out.push_back(p);
  }
  return out;
}

ModelDesc make_synthetic_model(const SyntheticSpec& s) {
  Rng rng(s.seed);
  ModelDesc d;
  const uint32_t n_ff = s.n_ff ? s.n_ff : 4 * s.n_embd;
  const uint32_t hs = s.n_embd / s.n_head;
  d.config = {s.vocab_size,
              s.n_ctx,
              s.n_embd,
              s.n_layer,
              s.n_head,
              n_ff,
              s.ln_placement,
              1e-5f,
              s.activation,
              s.tied_lm_head,
              s.reference_transposed};
  for (uint32_t i = 0; i < s.vocab_size; ++i)
    d.tokenizer.pieces.push_back(i < 95 ? utf8_encode(32 + i) : utf8_encode(0x100 + i));
  d.metadata = {{"dataset", "synthetic"}, {"seed", std::to_string(s.seed)}};

  auto random = [&](const std::string& name, std::vector<uint64_t> shape, float scale, qisa_dtype dt) {
    uint64_t n = 1;
    for (auto x : shape) n *= x;
    std::vector<float> v(n);
    for (auto& x : v) x = rng.symmetric(scale);
    d.tensors.push_back(make_tensor(name, std::move(shape), v, dt));
  };
  auto constant = [&](const std::string& name, uint64_t n, float value) {
    std::vector<float> v(n, value);
    for (auto& x : v) x += rng.symmetric(0.05f);
    d.tensors.push_back(make_tensor(name, {n}, v, QISA_DTYPE_F32));
  };
  const float wscale = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
  const qisa_dtype wd = s.weight_dtype;
  random(names::kTokEmb, {s.vocab_size, s.n_embd}, 0.5f, wd);
  random(names::kPosEmb, {s.n_ctx, s.n_embd}, 0.2f, wd);

  const uint32_t n = qubits_for_width(s.n_embd);
  const uint64_t D = uint64_t{1} << n;
  const qisa_dtype ud = dtype_traits(s.unitary_dtype).holds_unitaries ? s.unitary_dtype : QISA_DTYPE_Q8_0;
  auto projection = [&](const std::string& prefix, std::vector<PauliString> paulis) {
    ProjectionDesc p;
    p.n_qubits = n;
    p.encoding = s.encoding;
    p.angles.resize(3 * n);
    for (auto& a : p.angles) a = rng.symmetric(3.14159265f);
    p.paulis = std::move(paulis);
    p.has_observables = s.observables;
    const std::vector<cplx> u = circuit_unitary(n, p.angles);
    std::vector<float> re(D * D), im(D * D);
    for (uint64_t i = 0; i < D * D; ++i) {
      re[i] = static_cast<float>(u[i].real());
      im[i] = static_cast<float>(u[i].imag());
    }
    d.tensors.push_back(make_tensor(prefix + names::kUnitaryRe, {D, D}, re, ud));
    d.tensors.push_back(make_tensor(prefix + names::kUnitaryIm, {D, D}, im, ud));
    if (s.observables) {
      std::vector<float> ore, oim;
      dense_observables(n, u, p.paulis, ore, oim);
      d.tensors.push_back(make_tensor(prefix + names::kObservablesRe, {hs, D, D}, ore, ud));
      d.tensors.push_back(make_tensor(prefix + names::kObservablesIm, {hs, D, D}, oim, ud));
    }
    return p;
  };

  d.layers.resize(s.n_layer);
  for (uint32_t l = 0; l < s.n_layer; ++l) {
    const std::string p = names::layer(static_cast<int>(l));
    constant(p + names::kLn1Weight, s.n_embd, 1.0f);
    constant(p + names::kLn1Bias, s.n_embd, 0.0f);
    for (uint32_t h = 0; h < s.n_head; ++h) {
      HeadDesc head;
      head.kind = s.kind;
      const int li = static_cast<int>(l), hi = static_cast<int>(h);
      const std::vector<PauliString> paulis = draw_paulis(n, hs, rng.next());
      // By the kind's row: a random linear map (q and k with a bias where
      // the score is the Gaussian kernel) or a quantum projection (q and k
      // of v1 measure Z on qubit 0, h times; otherwise the head's strings).
      const AttentionKind& kind = attention_kind(s.kind);
      if (kind.score == Score::Dot) head.scale = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
      if (kind.select == Select::TopK) head.sparsity = s.sparsity;
      const std::vector<PauliString> z0(hs, PauliString{0, uint64_t{1} << (n - 1)});
      for (Role r : kAllRoles) {
        const std::string where = names::proj(li, hi, role_letter(r));
        if (kind.of(r) == Source::Linear) {
          random(where + names::kWeight, {hs, s.n_embd}, wscale, wd);
          if (kind.score == Score::Gaussian) random(where + names::kBias, {hs}, 0.1f, QISA_DTYPE_F32);
        } else {
          const bool first_qubit = r != Role::V && kind.qk_strings == QkStrings::FirstQubitZ;
          head.quantum(r) = projection(where, first_qubit ? z0 : paulis);
        }
      }
      d.layers[l].push_back(std::move(head));
    }
    random(p + names::kProjWeight, {s.n_embd, s.n_embd}, wscale, wd);
    random(p + names::kProjBias, {s.n_embd}, 0.05f, QISA_DTYPE_F32);
    constant(p + names::kLn2Weight, s.n_embd, 1.0f);
    constant(p + names::kLn2Bias, s.n_embd, 0.0f);
    random(p + names::kUpWeight, {n_ff, s.n_embd}, wscale, wd);
    random(p + names::kUpBias, {n_ff}, 0.05f, QISA_DTYPE_F32);
    random(p + names::kDownWeight, {s.n_embd, n_ff}, 1.0f / std::sqrt(static_cast<float>(n_ff)), wd);
    random(p + names::kDownBias, {s.n_embd}, 0.05f, QISA_DTYPE_F32);
  }
  constant(names::kLnFWeight, s.n_embd, 1.0f);
  constant(names::kLnFBias, s.n_embd, 0.0f);
  if (!s.tied_lm_head) random(names::kLmHeadWeight, {s.vocab_size, s.n_embd}, wscale, wd);
  random(names::kLmHeadBias, {s.vocab_size}, 0.05f, QISA_DTYPE_F32);
  return d;
}

TokenizerDesc bpe_tokenizer(const bpe::Learned& l) {
  TokenizerDesc t;
  t.kind = 1;
  for (const auto& p : l.pieces) t.pieces.push_back(bpe::to_stored(p));
  for (const auto& [a, b] : l.merges)
    t.merges.push_back(bpe::to_stored(l.pieces[static_cast<size_t>(a)]) + " " +
                       bpe::to_stored(l.pieces[static_cast<size_t>(b)]));
  return t;
}

ModelDesc synthetic_bpe_model(const bpe::Learned& l) {
  SyntheticSpec s;
  s.kind = QISA_ATTENTION_CSA;
  s.n_embd = 8;
  s.n_layer = 1;
  s.vocab_size = static_cast<uint32_t>(l.pieces.size());
  ModelDesc d = make_synthetic_model(s);
  d.tokenizer = bpe_tokenizer(l);
  return d;
}

}  // namespace qisa::writer
