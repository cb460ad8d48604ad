// The LibTorch trainer against independent computations: the runtime's
// gate-by-gate circuit, dense Pauli algebra, finite differences, causality,
// a short training run, and export -> libqisa loader -> import.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "angle_unitary.h"
#include "api_model.h"
#include "circuit.h"
#include "evaluation.h"
#include "gaussian_score.h"
#include "gpt_model.h"
#include "model_export.h"
#include "quantum_projection.h"
#include "synthetic_model.h"
#include "text_data.h"
#include "text_metrics.h"

namespace qisa::train {
namespace {

using text_metrics::cer;
using text_metrics::sentence_bleu;
using text_metrics::wer;

std::vector<float> values(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat32).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

TEST(TrainerCircuit, UnitaryMatchesGateByGateSimulationAndIsUnitary) {
  for (int64_t n : {2, 3, 4, 5}) {
    torch::manual_seed(n);
    const auto paulis = writer::draw_paulis(static_cast<uint32_t>(n), 4, 9);
    QuantumProjection p(n, paulis);
    const auto [re, im] = p->unitary();
    const int64_t D = int64_t{1} << n;
    const auto ang = values(p->angles);
    const auto ref = circuit_unitary(static_cast<uint32_t>(n), ang);  // runtime/circuit.cpp, gate by gate
    const auto r = values(re), i = values(im);
    double worst = 0;
    for (int64_t k = 0; k < D * D; ++k) worst = std::max(worst, std::abs(cplx(r[k], i[k]) - ref[k]));
    EXPECT_LT(worst, 1e-5) << "n=" << n;
    // U^dag U = I
    const auto gram_re = torch::matmul(re.t(), re) + torch::matmul(im.t(), im);
    const auto gram_im = torch::matmul(re.t(), im) - torch::matmul(im.t(), re);
    EXPECT_LT((gram_re - torch::eye(D)).abs().max().item<double>(), 1e-5);
    EXPECT_LT(gram_im.abs().max().item<double>(), 1e-5);
  }
}

TEST(TrainerCircuit, ExpectationsEqualDenseAlgebraOnBothPaths) {
  const int64_t n = 4, D = 16;
  torch::manual_seed(3);
  std::vector<PauliString> paulis = writer::draw_paulis(4, 12, 5);
  paulis.push_back({0b1111, 0b1010});  // Y X Y X: odd/even Y phases covered
  paulis.push_back({0b0100, 0b0100});  // one Y
  QuantumProjection p(n, paulis);
  const auto x = torch::randn({7, 13});
  const auto psi = encode_amplitudes(x, n, true);
  EXPECT_LT((psi.norm(2, -1) - 1).abs().max().item<double>(), 1e-6);
  const auto [re, im] = p->unitary();
  const auto dense = p->measure(psi, re, im), pauli = p->measure_pauli(psi, re, im);
  const auto ur = values(re), ui = values(im), ps = values(psi);
  for (int64_t row = 0; row < 7; ++row) {
    std::vector<cplx> phi(D, 0.0), pphi(D);
    for (int64_t a = 0; a < D; ++a)
      for (int64_t b = 0; b < D; ++b) phi[a] += cplx(ur[a * D + b], ui[a * D + b]) * double(ps[row * D + b]);
    for (size_t k = 0; k < paulis.size(); ++k) {
      apply_pauli(paulis[k], phi, pphi);
      cplx want = 0.0;
      for (int64_t a = 0; a < D; ++a) want += std::conj(phi[a]) * pphi[a];  // <phi|P|phi>
      EXPECT_NEAR(dense[row][static_cast<int64_t>(k)].item<double>(), want.real(), 1e-5);
      EXPECT_NEAR(pauli[row][static_cast<int64_t>(k)].item<double>(), want.real(), 1e-5);
    }
  }
  // A zero input encodes to the zero state: all expectations 0, no NaN.
  const auto zero = p->forward(encode_amplitudes(torch::zeros({1, 13}), n, true));
  EXPECT_EQ(zero.abs().max().item<double>(), 0.0);
}

// The grouped measurement's hand-written backward against LibTorch's
// autograd of the per-string formula, for the input and the angles.
// The hand-contracted gradient of U(angles) against LibTorch's autograd of
// the stack / kron / index_select form, for random weights of Re U and Im U.
TEST(TrainerGradient, AngleUnitaryEqualsAutogradOfTheKroneckerForm) {
  for (int64_t n : {2, 3, 5, 7}) {
    torch::manual_seed(n);
    QuantumProjection p(n, writer::draw_paulis(static_cast<uint32_t>(n), 4, 3));
    const auto inv_perm = p->named_buffers()["inv_perm"];
    const auto angles0 = (torch::rand({3 * n}, torch::kFloat64) * 2 - 1) * M_PI;
    const int64_t D = int64_t{1} << n;
    const auto wr = torch::randn({D, D}, torch::kFloat64), wi = torch::randn({D, D}, torch::kFloat64);
    auto run = [&](bool fused) {
      auto a = angles0.clone().requires_grad_(true);
      const auto [re, im] = fused ? angle_unitary(a, inv_perm) : angle_unitary_reference(a, inv_perm);
      ((re * wr).sum() + (im * wi).sum()).backward();
      return std::make_tuple(re.detach(), im.detach(), a.grad().clone());
    };
    const auto [r1, i1, g1] = run(true);
    const auto [r2, i2, g2] = run(false);
    EXPECT_LT((r1 - r2).abs().max().item<double>(), 1e-13) << n;
    EXPECT_LT((i1 - i2).abs().max().item<double>(), 1e-13) << n;
    EXPECT_LT((g1 - g2).abs().max().item<double>(), 1e-11) << n;
    EXPECT_GT(g1.abs().max().item<double>(), 1e-2) << n;
    // Only one of the outputs used: the other's gradient is absent.
    auto a = angles0.clone().requires_grad_(true);
    angle_unitary(a, inv_perm).second.mul(wi).sum().backward();
    auto b = angles0.clone().requires_grad_(true);
    angle_unitary_reference(b, inv_perm).second.mul(wi).sum().backward();
    EXPECT_LT((a.grad() - b.grad()).abs().max().item<double>(), 1e-11) << n;
  }
}

// rows: one partial column block of the fused kernels, and several blocks
// with a remainder (they work on 128 columns at a time).
TEST(TrainerGradient, FusedMeasurementBackwardEqualsAutogradOfThePerStringPath) {
  for (int64_t n : {3, 5, 7}) {
    for (int64_t rows : {9, 300}) {
      torch::manual_seed(n * rows);
      auto paulis = writer::draw_paulis(static_cast<uint32_t>(n), 24, 17);
      paulis.push_back({0b101, 0b110});  // X and Y on two qubits, Z on another
      paulis.push_back({0, 1});
      QuantumProjection p(n, paulis);
      for (auto& t : p->parameters()) t.set_data(t.data().to(torch::kFloat64));
      for (auto& t : p->buffers())
        if (t.is_floating_point()) t.set_data(t.data().to(torch::kFloat64));
      const auto psi0 = encode_amplitudes(torch::randn({rows, (int64_t{1} << n) - 1}, torch::kFloat64), n, true);
      const auto w = torch::randn({rows, static_cast<int64_t>(paulis.size())}, torch::kFloat64);
      auto grads = [&](bool fused) {
        auto psi = psi0.clone().requires_grad_(true);
        if (p->angles.grad().defined()) p->angles.mutable_grad().zero_();
        const auto [re, im] = p->unitary();
        const auto out = fused ? p->measure(psi, re, im) : p->measure_pauli(psi, re, im);
        (out * w).sum().backward();
        return std::make_tuple(out.detach(), psi.grad().clone(), p->angles.grad().clone());
      };
      const auto [o1, g1, a1] = grads(true);
      const auto [o2, g2, a2] = grads(false);
      EXPECT_LT((o1 - o2).abs().max().item<double>(), 1e-12) << n << " " << rows;
      EXPECT_LT((g1 - g2).abs().max().item<double>(), 1e-12) << n << " " << rows;
      EXPECT_LT((a1 - a2).abs().max().item<double>(), 1e-10) << n << " " << rows;
      EXPECT_GT(a1.abs().max().item<double>(), 1e-3) << n;  // the angles do get gradients
    }
  }
}

TEST(TrainerGradient, GaussianScoreNodeEqualsAutogradOfThePairwiseDifferences) {
  for (int64_t T : {1, 6, 33}) {
    torch::manual_seed(T);
    // Spread so that the scores range from ~1 to underflow.
    const auto q0 = torch::randn({2, T, 5}, torch::kFloat64) * 0.7, k0 = torch::randn({2, T, 5}, torch::kFloat64) * 0.7;
    const auto w = torch::randn({2, T, T}, torch::kFloat64);
    auto run = [&](bool fused) {
      auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true);
      torch::Tensor e, neg_dist;
      if (fused)
        std::tie(e, neg_dist) = gaussian_score(q, k);
      else
        e = gaussian_score_reference(q, k);
      (e * w).sum().backward();
      return std::make_tuple(e.detach(), neg_dist, q.grad().clone(), k.grad().clone());
    };
    const auto [e1, nd, dq1, dk1] = run(true);
    const auto [e2, unused, dq2, dk2] = run(false);
    const auto dist = (q0.unsqueeze(2) - k0.unsqueeze(1)).pow(2).sum(-1);
    EXPECT_LT((e1 - e2).abs().max().item<double>(), 1e-12) << T;
    EXPECT_LT((nd + dist).abs().max().item<double>(), 1e-12) << T;
    EXPECT_FALSE(nd.requires_grad());
    EXPECT_LT((dq1 - dq2).abs().max().item<double>(), 1e-12) << T;
    EXPECT_LT((dk1 - dk2).abs().max().item<double>(), 1e-12) << T;
    EXPECT_GT(dq1.abs().max().item<double>(), 1e-3) << T;
  }
}

TEST(TrainerGradient, NormalizedEncodingNodeEqualsAutogradOfNormClampDivide) {
  torch::manual_seed(5);
  for (int64_t d : {5, 8}) {  // padded to D = 8, and not
    auto x0 = torch::randn({4, 3, d}, torch::kFloat64);
    x0[1][2].zero_();  // a zero row: its norm is clamped, the gradient is dx = g / eps
    x0[2][0].mul_(1e-13);
    const auto w = torch::randn({4, 3, 8}, torch::kFloat64);
    auto run = [&](bool fused) {
      auto x = x0.clone().requires_grad_(true);
      const auto psi = fused ? encode_amplitudes(x, 3, true) : encode_amplitudes_reference(x, 3, true);
      (psi * w).sum().backward();
      return std::make_pair(psi.detach(), x.grad().clone());
    };
    const auto [p1, g1] = run(true);
    const auto [p2, g2] = run(false);
    EXPECT_LT((p1 - p2).abs().max().item<double>(), 1e-14) << d;
    // Relative: the clamped rows' gradients are ~1e12.
    EXPECT_LT(((g1 - g2).abs() / (g2.abs() + 1)).max().item<double>(), 1e-12) << d;
    EXPECT_GT(g1[1][2].abs().max().item<double>(), 1e11) << d;
    EXPECT_NEAR(p1[0][0].norm().item<double>(), 1.0, 1e-14);
  }
}

TEST(TrainerGradient, QisaHeadMatchesFiniteDifferences) {
  for (auto kind : {QISA_ATTENTION_QISA_V1, QISA_ATTENTION_QISA_V2, QISA_ATTENTION_QISA_V3}) {
    torch::manual_seed(11);
    ModelOptions o;
    o.n_embd = 8;
    o.n_head = 2;
    o.attention = kind;
    Head head(o, 0, 0);
    // Module::to(dtype) would also convert the integer index buffers.
    for (auto& t : head->parameters()) t.set_data(t.data().to(torch::kFloat64));
    for (auto& t : head->buffers()) {
      if (t.is_floating_point()) t.set_data(t.data().to(torch::kFloat64));
    }
    const auto x = torch::randn({2, 5, 8}, torch::kFloat64);
    const auto w = torch::randn({2, 5, 4}, torch::kFloat64);
    auto loss_fn = [&] { return (head(x) * w).sum(); };
    auto loss = loss_fn();
    loss.backward();
    for (auto& param : head->parameters()) {
      auto flat = param.data().view(-1);
      const auto grad = param.grad().view(-1);
      for (int64_t i = 0; i < std::min<int64_t>(flat.numel(), 6); ++i) {
        const double orig = flat[i].item<double>(), eps = 1e-6;
        torch::NoGradGuard ng;
        flat[i] = orig + eps;
        const double up = loss_fn().item<double>();
        flat[i] = orig - eps;
        const double down = loss_fn().item<double>();
        flat[i] = orig;
        const double fd = (up - down) / (2 * eps);
        EXPECT_NEAR(grad[i].item<double>(), fd, 1e-6 + 1e-5 * std::abs(fd)) << attention_name(kind);
      }
    }
  }
}

// Changing token t+1 never changes the logits at positions <= t; the
// research code's transposed attention visibly does.
TEST(TrainerCausality, FutureTokensDoNotLeakUnlessTransposed) {
  for (auto kind : {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V1, QISA_ATTENTION_QISA_V2, QISA_ATTENTION_QISA_V3,
                    QISA_ATTENTION_QSAT}) {
    for (bool transposed : {false, true}) {
      if (transposed && kind == QISA_ATTENTION_QSAT) continue;  // no research-code form
      torch::manual_seed(5);
      ModelOptions o;
      o.n_layer = 2;
      o.attention = kind;
      o.qsat_top_k = 3;  // QSAT: 3 nearest keys and the 2 most recent of up to 16 positions
      o.qsat_window = 2;
      o.reference_transpose = transposed;
      Gpt g(o);
      g->eval();
      torch::NoGradGuard ng;
      auto a = torch::randint(0, 65, {1, 16}, torch::kInt64);
      const auto la = g(a);
      double leak = 0;
      for (int64_t t = 0; t + 1 < 16; t += 3) {
        auto b = a.clone();
        b[0][t + 1] = (b[0][t + 1].item<int64_t>() + 7) % 65;
        const auto lb = g(b);
        leak = std::max(leak, (la.slice(1, 0, t + 1) - lb.slice(1, 0, t + 1)).abs().max().item<double>());
      }
      if (transposed) {
        EXPECT_GT(leak, 1e-4) << attention_name(kind) << ": the transposed form should read future tokens";
      } else {
        EXPECT_EQ(leak, 0.0) << attention_name(kind) << " leaks future tokens";
      }
    }
  }
}

// QSAT: QISA v3's head with top-k selection of the Gaussian-kernel scores.
TEST(TrainerQsat, TopKKeepsTheNearestKeysAndStaysCausal) {
  torch::manual_seed(12);
  ModelOptions o;
  o.n_layer = 1;
  o.attention = QISA_ATTENTION_QISA_V3;
  Head dense(o, 0, 0);
  dense->eval();
  torch::NoGradGuard ng;
  const auto x = torch::randn({2, 16, o.n_embd});
  // (top-k, window): k = 16 is the dense head; a window adds the most recent positions.
  for (auto [k, w] : {std::pair<int64_t, int64_t>{1, 0}, {3, 0}, {16, 0}, {2, 3}}) {
    ModelOptions ok = o;
    ok.attention = QISA_ATTENTION_QSAT;
    ok.qsat_top_k = k;
    ok.qsat_window = w;
    Head sparse(ok, 0, 0);
    sparse->eval();
    for (size_t i = 0; i < dense->parameters().size(); ++i) sparse->parameters()[i].copy_(dense->parameters()[i]);
    const auto got = sparse(x);
    // Independently: per query i, the k earlier keys with the smallest
    // |q_i - k_j|^2, softmax of exp(-dist) over them, times the values.
    const auto psi = encode_amplitudes(x, o.n_qubits(), true).reshape({32, -1});
    const auto q = dense->q(x), kk = dense->k(x), v = dense->qv(psi).view({2, 16, -1});
    double err = 0;
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t i = 0; i < 16; ++i) {
        const auto dist = (kk[b].slice(0, 0, i + 1) - q[b][i]).pow(2).sum(-1);  // [i+1]
        const int64_t keep = std::min<int64_t>(k, i + 1);
        auto near = std::get<1>(dist.topk(keep, -1, /*largest=*/false));
        if (w > 0) {  // the union with positions i-w+1 .. i
          std::vector<int64_t> ids(near.data_ptr<int64_t>(), near.data_ptr<int64_t>() + keep);
          for (int64_t j = std::max<int64_t>(0, i - w + 1); j <= i; ++j)
            if (std::find(ids.begin(), ids.end(), j) == ids.end()) ids.push_back(j);
          near = torch::tensor(ids, torch::kInt64);
        }
        const auto a = torch::softmax(torch::exp(-dist.index_select(0, near)), 0);
        const auto want = (a.unsqueeze(1) * v[b].index_select(0, near)).sum(0);
        err = std::max(err, (got[b][i] - want).abs().max().item<double>());
      }
    }
    EXPECT_LT(err, 1e-5) << "top-k " << k << " window " << w;
    if (k == 16) {
      EXPECT_LT((got - dense(x)).abs().max().item<double>(), 1e-6) << "k >= T is the dense head";
    }
    // A later position never changes an earlier output.
    auto y = x.clone();
    y[0][9] += 1.0;
    EXPECT_EQ((sparse(y).slice(1, 0, 9) - got.slice(1, 0, 9)).abs().max().item<double>(), 0.0) << "top-k " << k;
  }
}

TEST(TrainerInference, PrecomputedUnitariesGiveTheSameLogits) {
  for (auto kind : {QISA_ATTENTION_QISA_V1, QISA_ATTENTION_QISA_V2, QISA_ATTENTION_QISA_V3}) {
    torch::manual_seed(6);
    ModelOptions o;
    o.n_layer = 2;
    o.attention = kind;
    Gpt g(o);
    g->eval();
    torch::NoGradGuard ng;
    const auto idx = torch::randint(0, 65, {3, 16}, torch::kInt64);
    const auto built = g(idx);
    g->precompute_unitaries(true);
    const auto stored = g(idx);
    // The stored U is the one of the current angles: changing them must not
    // change the output until precomputation is dropped.
    for (auto& p : g->parameters()) p.add_(0.05);
    const auto stale = g(idx);
    g->precompute_unitaries(false);
    const auto rebuilt = g(idx);
    EXPECT_LT((built - stored).abs().max().item<double>(), 1e-5) << attention_name(kind);
    EXPECT_GT((stale - rebuilt).abs().max().item<double>(), 1e-4) << attention_name(kind);
  }
}

std::string corpus() {
  return read_text_file(QISA_TEST_DATA).substr(0, 200000);
}

TEST(TrainerRun, ShortTrainingLowersTheLossAndIsReproducible) {
  torch::set_num_threads(2);
  const std::string text = corpus();
  const TextTokenizer vocab = TextTokenizer::chars(text);
  const Split split = make_split(vocab.encode(text), "0.9");
  auto run = [&](int64_t steps, std::vector<double>* curve) {
    torch::manual_seed(42);
    ModelOptions o;
    o.vocab_size = static_cast<int64_t>(vocab.size());
    o.n_layer = 2;
    o.attention = QISA_ATTENTION_QISA_V3;
    Gpt g(o);
    torch::optim::AdamW opt(g->parameters(), torch::optim::AdamWOptions(3e-3));
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int64_t> pick(0, static_cast<int64_t>(split.train.size()) - 18);
    const auto data = torch::tensor(split.train);
    const auto offs = torch::arange(16);
    const double before = evaluate(g, split.test, vocab, 256, 64, false).cross_entropy;
    for (int64_t s = 0; s < steps; ++s) {
      std::vector<int64_t> st(64);
      for (auto& v : st) v = pick(rng);
      const auto starts = torch::tensor(st).unsqueeze(1);
      const auto x = data.index_select(0, (starts + offs).flatten()).view({64, 16});
      const auto y = data.index_select(0, (starts + offs + 1).flatten()).view({64, 16});
      auto loss = torch::nn::functional::cross_entropy(g(x).view({-1, o.vocab_size}), y.flatten());
      opt.zero_grad();
      loss.backward();
      opt.step();
      if (curve) curve->push_back(loss.item<double>());
    }
    const double after = evaluate(g, split.test, vocab, 256, 64, false).cross_entropy;
    return std::make_pair(before, after);
  };
  std::vector<double> c1, c2;
  const auto [before, after] = run(300, &c1);
  EXPECT_GT(before, 3.9);  // about ln 65 = 4.17 untrained
  EXPECT_LT(after, before - 1.0) << "300 steps: " << before << " -> " << after;
  run(10, &c2);
  for (size_t i = 0; i < c2.size(); ++i) EXPECT_EQ(c1[i], c2[i]) << "step " << i;  // same seed, same curve
}

TEST(TrainerExport, RoundTripsThroughTheRuntimeLoader) {
  for (auto kind : {QISA_ATTENTION_CSA, QISA_ATTENTION_QISA_V1, QISA_ATTENTION_QISA_V2, QISA_ATTENTION_QISA_V3}) {
    torch::manual_seed(8);
    ModelOptions o;
    o.n_layer = 2;
    o.n_head = 2;
    o.attention = kind;
    Gpt g(o);
    g->eval();
    ExportOptions eo;
    for (int i = 0; i < 65; ++i) eo.tokenizer.pieces.push_back(std::string(1, static_cast<char>(32 + i)));
    eo.observables = kind != QISA_ATTENTION_CSA;
    eo.metadata = {{"dataset", "unit-test"}};
    const auto bytes = writer::serialize(export_model(g, eo));
    qisa_model* handle = nullptr;
    char err[512];
    ASSERT_EQ(qisa_model_load_buffer(bytes.data(), bytes.size(), nullptr, &handle, err, sizeof err), QISA_OK)
        << attention_name(kind) << ": " << err;
    Gpt back = import_model(model_of(handle));
    qisa_model_free(handle);
    torch::NoGradGuard ng;
    const auto idx = torch::randint(0, 65, {3, 16}, torch::kInt64);
    EXPECT_LT((g(idx) - back(idx)).abs().max().item<double>(), 1e-5) << attention_name(kind);
  }
}

TEST(TrainerData, SplitsVocabAndMetrics) {
  const CharVocab v = CharVocab::from_text("hello world");
  EXPECT_EQ(v.size(), 8u);  // " dehlorw"
  EXPECT_EQ(v.pieces()[0], " ");
  EXPECT_EQ(v.decode(v.encode("low")), "low");
  try {
    v.encode("hex");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'x' at byte 2"), std::string::npos) << e.what();
  }
  std::vector<int64_t> t(1000);
  const Split s = make_split(t, "research");
  EXPECT_EQ(s.train.size(), 640u);
  EXPECT_EQ(s.test.size(), 40u);
  EXPECT_EQ(make_split(t, "0.9").test.size(), 100u);
  EXPECT_THROW(make_split(t, "1.5"), std::runtime_error);

  EXPECT_DOUBLE_EQ(cer("abd", "abc"), 1.0 / 3);
  EXPECT_DOUBLE_EQ(cer("", "abcd"), 1.0);
  EXPECT_DOUBLE_EQ(wer("a x c", "a b c"), 1.0 / 3);
  EXPECT_DOUBLE_EQ(sentence_bleu("the cat sat on the mat", "the cat sat on the mat"), 1.0);
  // 5 words vs 6-word reference, all n-grams match: BLEU = BP = exp(1 - 6/5).
  EXPECT_NEAR(sentence_bleu("the cat sat on the", "the cat sat on the mat"), std::exp(1.0 - 6.0 / 5.0), 1e-12);
  // No 3- or 4-gram matches: p3 = 0.1/2, p4 = 0.1/1 (epsilon smoothing).
  const double want = std::exp((std::log(3.0 / 4) + std::log(1.0 / 3) + std::log(0.05) + std::log(0.1)) / 4);
  EXPECT_NEAR(sentence_bleu("a b x c", "a b y c"), want * 1.0, 1e-12) << "p1=3/4 p2=1/3";
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace qisa::train
