// qisa-train convert-research: state_dicts with the research code's key
// names and layouts, written here with LibTorch (and one committed file
// written by PyTorch's torch.save), convert to .qisa files whose logits in
// libqisa are the trainer model's; every refusal says why.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <caffe2/serialize/inline_container.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "circuit.h"
#include "gpt_model.h"
#include "qisa.h"
#include "research_checkpoint.h"
#include "synthetic_model.h"
#include "test_support.h"
#include "text_data.h"
#include "trainer_cli.h"

namespace qisa::train {
namespace {

namespace fs = std::filesystem;
using research::StateDict;

std::string corpus_path() {
  return QISA_TEST_DATA;
}

const std::vector<std::string>& vocab() {
  static const std::vector<std::string> v = CharVocab::from_text(read_text_file(corpus_path())).pieces();
  return v;
}

struct Layout {
  bool observables = false;  // the model ran in eval mode before saving
  bool stored_unitary = false;
  bool fast_gate_copies = true;  // QSA.py's fast branch keeps its own (untrained) gates
};

torch::Tensor complex_tensor(const std::vector<cplx>& m, int64_t rows, int64_t cols) {
  auto t = torch::empty({rows, cols}, torch::kComplexFloat);
  auto* p = t.data_ptr<c10::complex<float>>();
  for (size_t i = 0; i < m.size(); ++i)
    p[i] = c10::complex<float>(static_cast<float>(m[i].real()), static_cast<float>(m[i].imag()));
  return t;
}

// U^dag P U, row-major.
std::vector<cplx> observable(uint32_t n, const std::vector<cplx>& u, PauliString p) {
  const uint64_t D = uint64_t{1} << n;
  std::vector<cplx> pu(D * D), col(D), e(D), out(D * D);
  for (uint64_t j = 0; j < D; ++j) {  // column j of P U
    for (uint64_t r = 0; r < D; ++r) e[r] = u[r * D + j];
    apply_pauli(p, e, col);
    for (uint64_t r = 0; r < D; ++r) pu[r * D + j] = col[r];
  }
  for (uint64_t r = 0; r < D; ++r)
    for (uint64_t c = 0; c < D; ++c) {
      cplx s = 0;
      for (uint64_t k = 0; k < D; ++k) s += std::conj(u[k * D + r]) * pu[k * D + c];
      out[r * D + c] = s;
    }
  return out;
}

// The trainer model's weights under the research code's names (model.py,
// QSA.py; CSA heads as nanoGPT's Head).
StateDict research_state_dict(Gpt& g, const Layout& lay) {
  torch::NoGradGuard ng;
  StateDict sd;
  auto put = [&](const std::string& k, const torch::Tensor& t) { sd[k] = t.detach().clone(); };
  put("embedding.weight", g->tok_emb->weight);
  put("positional_embedding_table.weight", g->pos_emb->weight);
  put("norm.weight", g->ln_f->weight);
  put("norm.bias", g->ln_f->bias);
  put("fc.weight", g->lm_head->weight);
  put("fc.bias", g->lm_head->bias);
  const int64_t ctx = g->options.n_ctx;
  for (size_t l = 0; l < g->blocks.size(); ++l) {
    auto& b = g->blocks[l];
    const std::string p = "blocks." + std::to_string(l) + ".";
    put(p + "norm1.weight", b->ln1->weight);
    put(p + "norm1.bias", b->ln1->bias);
    put(p + "norm2.weight", b->ln2->weight);
    put(p + "norm2.bias", b->ln2->bias);
    put(p + "mhsa.project.weight", b->proj->weight);
    put(p + "mhsa.project.bias", b->proj->bias);
    put(p + "feed_forward.layer.0.weight", b->up->weight);
    put(p + "feed_forward.layer.0.bias", b->up->bias);
    put(p + "feed_forward.layer.2.weight", b->down->weight);
    put(p + "feed_forward.layer.2.bias", b->down->bias);
    for (size_t h = 0; h < b->heads->size(); ++h) {
      auto head = b->heads[h]->as<HeadImpl>();
      const std::string hp = p + "mhsa.heads." + std::to_string(h) + ".";
      if (head->kind == QISA_ATTENTION_CSA) {
        put(hp + "query.weight", head->q->weight);
        put(hp + "key.weight", head->k->weight);
        put(hp + "value.weight", head->v->weight);
        put(hp + "tril", torch::ones({ctx, ctx}).tril());
        continue;
      }
      const std::string qp = hp + "qsa.";
      put(qp + "tril", torch::ones({ctx, ctx}).tril());
      if (head->kind == QISA_ATTENTION_QISA_V3) {
        put(qp + "q_linear.weight", head->q->weight);
        put(qp + "q_linear.bias", head->q->bias);
        put(qp + "k_linear.weight", head->k->weight);
        put(qp + "k_linear.bias", head->k->bias);
      }
      int count = 0;
      for (Role r : kAllRoles) {
        auto& qproj = head->quantum(r);
        if (!qproj) continue;
        const std::string rp(1, role_letter(r));
        const auto n = static_cast<uint32_t>(qproj->n_qubits());
        const auto a = qproj->angles.detach();
        const char* gates[3] = {"rx0", "ry0", "ry1"};
        for (int gi = 0; gi < 3; ++gi)
          for (uint32_t j = 0; j < n; ++j) {
            const std::string tail = std::string(gates[gi]) + "." + std::to_string(j) + ".params";
            put(qp + rp + "_slow." + tail, a[gi * n + j].reshape({1, 1}));
            if (lay.fast_gate_copies) put(qp + rp + "_fast." + tail, torch::rand({1, 1}));
          }
        const std::vector<float> av(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
        const auto u = circuit_unitary(n, av);
        const int64_t D = int64_t{1} << n;
        if (lay.stored_unitary) {
          put(qp + rp + "_fast.layer" + std::to_string(l) + "_head" + std::to_string(h) + "_" + rp + "_fast_U" +
                  std::to_string(count++),
              complex_tensor(u, D, D));
        }
        if (lay.observables) {
          const auto ps = qproj->paulis();
          for (size_t k = 0; k < ps.size(); ++k)
            put(qp + rp + "_fast.obs_primes." + std::to_string(k), complex_tensor(observable(n, u, ps[k]), D, D));
        }
      }
    }
  }
  return sd;
}

// The research code's training log lines for every head of g.
std::string pauli_log(Gpt& g) {
  std::ostringstream os;
  os << "Instantiate QSA v3 for the head 0\n";
  for (size_t l = 0; l < g->blocks.size(); ++l)
    for (size_t h = 0; h < g->blocks[l]->heads->size(); ++h) {
      auto head = g->blocks[l]->heads[h]->as<HeadImpl>();
      os << "Generated Pauli strings for layer " << l << " head " << h << ":  [";
      const auto ps = head->qv->paulis();
      for (size_t k = 0; k < ps.size(); ++k)
        os << (k ? ", " : "") << "'" << pauli_to_string(static_cast<uint32_t>(head->qv->n_qubits()), ps[k]) << "'";
      os << "]\n";
    }
  return os.str();
}

Gpt make_model(qisa_attention_kind kind, uint64_t seed, bool transposed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  ModelOptions o;
  o.vocab_size = static_cast<int64_t>(vocab().size());
  o.n_ctx = 16;
  o.n_embd = 16;
  o.n_layer = 2;
  o.n_head = 2;
  o.attention = kind;
  o.dropout = 0;
  o.reference_transpose = transposed;
  o.pauli_seed = seed;
  Gpt g(o);
  g->eval();
  return g;
}

std::vector<int32_t> window() {
  std::vector<int32_t> t;
  const auto ids = CharVocab(vocab()).encode(read_text_file(corpus_path()).substr(1000, 16));
  for (auto id : ids) t.push_back(static_cast<int32_t>(id));
  return t;
}

std::vector<float> trainer_logits(Gpt& g, const std::vector<int32_t>& tokens) {
  torch::NoGradGuard ng;
  std::vector<int64_t> ids(tokens.begin(), tokens.end());
  const auto out = g->forward(torch::tensor(ids).view({1, -1})).contiguous();
  return {out.data_ptr<float>(), out.data_ptr<float>() + out.numel()};
}

struct CliCase {
  qisa_attention_kind kind;
  Layout layout;
  bool pauli_file;
  bool give_attention;
};

class ConvertResearch : public ::testing::TestWithParam<CliCase> {};

TEST_P(ConvertResearch, GivesTheTrainersLogitsInLibqisa) {
  const CliCase& cc = GetParam();
  const bool transposed = cc.kind != QISA_ATTENTION_CSA;  // the research code's QSA attention
  Gpt g = make_model(cc.kind, 11 + static_cast<uint64_t>(cc.kind), transposed);
  TempDir dir;
  research::write_state_dict(research_state_dict(g, cc.layout), dir / "model.pt");
  std::string args =
      "convert-research " + (dir / "model.pt") + " --text " + corpus_path() + " --out " + (dir / "model.qisa");
  if (cc.give_attention) args += std::string(" --attention ") + attention_name(cc.kind);
  if (cc.pauli_file) {
    std::ofstream(dir / "train.log") << pauli_log(g);
    args += " --paulis " + (dir / "train.log");
  }
  const CliRun r = train_cli(args, dir.str());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto tokens = window();
  const auto want = trainer_logits(g, tokens);
  const auto got = libqisa_logits(dir / "model.qisa", tokens);
  EXPECT_LT(test::max_abs_diff(want, got), 1e-4f);
  // Marked as the research attention was: transposed for QSA, causal for CSA.
  auto model = test::load_file(dir / "model.qisa");
  qisa_model_info info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(qisa_model_get_info(model.get(), &info), QISA_OK);
  EXPECT_EQ(info.reference_transposed != 0, transposed);
  if (transposed) {
    EXPECT_NE(r.err.find("ReferenceTransposed"), std::string::npos) << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ConvertResearch,
    ::testing::Values(CliCase{QISA_ATTENTION_CSA, {}, false, false},
                      CliCase{QISA_ATTENTION_QISA_V1, {true, true, true}, false, true},   // strings from observables
                      CliCase{QISA_ATTENTION_QISA_V2, {false, false, true}, true, true},  // strings from the log
                      CliCase{QISA_ATTENTION_QISA_V3, {true, true, false}, true, false},  // both, cross-checked
                      CliCase{QISA_ATTENTION_QISA_V3, {false, true, true}, true, true}),  // stored U checked
    [](const ::testing::TestParamInfo<CliCase>& p) {
      std::string n = attention_name(p.param.kind);
      for (auto& c : n)
        if (c == '-') c = '_';
      return n + "_" + std::to_string(p.index);
    });

TEST(ConvertResearchCli, CausalFlagAndRefusalsExitWithAMessage) {
  Gpt g = make_model(QISA_ATTENTION_QISA_V3, 5, false);
  TempDir dir;
  research::write_state_dict(research_state_dict(g, {}), dir / "model.pt");
  const std::string base =
      "convert-research " + (dir / "model.pt") + " --text " + corpus_path() + " --out " + (dir / "m.qisa");
  // No observables, no log: nothing says which Pauli strings the heads measured.
  CliRun r = train_cli(base, dir.str());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no Pauli strings for layer 0 head 0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--paulis"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "m.qisa"));
  // With the log and --causal: a causal model with the trainer's (causal) logits.
  std::ofstream(dir / "train.log") << pauli_log(g);
  r = train_cli(base + " --paulis " + (dir / "train.log") + " --causal", dir.str());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto tokens = window();
  EXPECT_LT(test::max_abs_diff(trainer_logits(g, tokens), libqisa_logits(dir / "m.qisa", tokens)), 1e-4f);
  // Flags that contradict each other, and files that are not checkpoints.
  r = train_cli(base + " --causal --transposed", dir.str());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--causal or --transposed"), std::string::npos) << r.err;
  std::ofstream(dir / "text.pt") << "not a zip";
  r = train_cli("convert-research " + (dir / "text.pt") + " --text " + corpus_path() + " --out " + (dir / "x.qisa"),
                dir.str());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("not a torch.save zip archive"), std::string::npos) << r.err;
  r = train_cli("convert-research " + (dir / "model.pt") + " --out " + (dir / "x.qisa"), dir.str());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--text"), std::string::npos) << r.err;
}

// ---- refusals of the library call ------------------------------------------

research::ConvertOptions options(std::optional<qisa_attention_kind> kind = std::nullopt) {
  research::ConvertOptions o;
  o.vocab = vocab();
  o.attention = kind;
  return o;
}

void expect_refusal(const StateDict& sd, const research::ConvertOptions& o, const std::string& says) {
  try {
    research::convert(sd, o);
    ADD_FAILURE() << "converted; expected a refusal saying '" << says << "'";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

TEST(ConvertResearchRefusals, MissingKeyWrongShapeUnexpectedKey) {
  Gpt g = make_model(QISA_ATTENTION_CSA, 3, false);
  const StateDict sd = research_state_dict(g, {});
  EXPECT_NO_THROW(research::convert(sd, options()));
  auto missing = sd;
  missing.erase("blocks.1.feed_forward.layer.2.bias");
  expect_refusal(missing, options(), "missing key 'blocks.1.feed_forward.layer.2.bias'");
  auto head_missing = sd;
  head_missing.erase("blocks.0.mhsa.heads.1.value.weight");
  expect_refusal(head_missing, options(), "missing key for layer 0 head 1");
  auto shape = sd;
  shape["norm.weight"] = torch::ones({15});
  expect_refusal(shape, options(), "'norm.weight' has shape [15], expected [16]");
  auto extra = sd;
  extra["blocks.0.mhsa.heads.0.query.bias"] = torch::zeros({8});
  expect_refusal(extra, options(), "have no bias");
  auto stray = sd;
  stray["lm_head_extra.weight"] = torch::zeros({2});
  expect_refusal(stray, options(), "1 unexpected key(s) for a csa research GPT: 'lm_head_extra.weight'");
  auto no_gpt = StateDict{{"weight", torch::zeros({2})}};
  expect_refusal(no_gpt, options(), "not a state_dict of the research code's GPT");
  auto o = options();
  o.vocab.pop_back();
  expect_refusal(sd, o, "64 distinct characters but embedding.weight has 65 rows");
}

TEST(ConvertResearchRefusals, KindsThatCannotBeToldApartOrDoNotFit) {
  Gpt v2 = make_model(QISA_ATTENTION_QISA_V2, 4, true);
  Layout lay;
  lay.observables = true;
  const StateDict sd = research_state_dict(v2, lay);
  expect_refusal(sd, options(), "pass --attention qisa-v1 or --attention qisa-v2");
  expect_refusal(sd, options(QISA_ATTENTION_CSA), "does not fit the checkpoint");
  expect_refusal(sd, options(QISA_ATTENTION_QISA_V3), "does not fit the checkpoint");
  // v2's q observables measure the head's strings, not Z on qubit 0.
  expect_refusal(sd, options(QISA_ATTENTION_QISA_V1), "not Z on qubit 0");
  EXPECT_NO_THROW(research::convert(sd, options(QISA_ATTENTION_QISA_V2)));
  auto absorbed = sd;
  absorbed["blocks.0.mhsa.heads.0.qsa.v_linear.weight"] = torch::zeros({16, 16});
  expect_refusal(absorbed, options(QISA_ATTENTION_QISA_V2), "absorbed value layer");
}

TEST(ConvertResearchRefusals, UnitariesAndObservablesThatContradictTheAngles) {
  Gpt g = make_model(QISA_ATTENTION_QISA_V3, 6, true);
  Layout lay;
  lay.observables = true;
  lay.stored_unitary = true;
  const StateDict sd = research_state_dict(g, lay);
  const std::string u_key = "blocks.1.mhsa.heads.0.qsa.v_fast.layer1_head0_v_fast_U0";
  ASSERT_TRUE(sd.count(u_key));
  // A fast unitary built from other angles (research versions differ).
  auto other_u = sd;
  std::vector<float> angles(12);
  for (size_t i = 0; i < angles.size(); ++i) angles[i] = 0.1f * static_cast<float>(i);
  other_u[u_key] = complex_tensor(circuit_unitary(4, angles), 16, 16);
  expect_refusal(other_u, options(), "differs from the unitary of the trained angles");
  auto o = options();
  o.ignore_stored_unitary = true;
  const auto converted = research::convert(other_u, o);  // the trained angles win, as told
  const auto tokens = window();
  EXPECT_LT(test::max_abs_diff(trainer_logits(g, tokens), trainer_logits(const_cast<Gpt&>(converted.model), tokens)),
            1e-5f);
  // An observable that is no U^dag P U.
  auto noise = sd;
  noise["blocks.0.mhsa.heads.1.qsa.v_fast.obs_primes.3"] = torch::randn({16, 16}, torch::kComplexFloat);
  expect_refusal(noise, options(), "is not U^dag P U for any Pauli string");
  // A log whose strings disagree with the observables.
  std::string log = pauli_log(g);
  const auto at = log.find("layer 1 head 1:  ['");
  ASSERT_NE(at, std::string::npos);
  log[at + 19] = log[at + 19] == 'X' ? 'Z' : 'X';
  o = options();
  o.paulis = research::parse_pauli_log(log);
  expect_refusal(sd, o, "in the Pauli file but the observables");
}

TEST(ConvertResearchRefusals, PauliLogs) {
  const auto t = research::parse_pauli_log(
      "[INFO] noise\nGenerated Pauli strings for layer 0 head 1:  ['IXII', 'ZIIY']\nlayer 2 head 0: XXXX IIIZ\n");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.at({0, 1}), (std::vector<std::string>{"IXII", "ZIIY"}));
  EXPECT_EQ(t.at({2, 0}), (std::vector<std::string>{"XXXX", "IIIZ"}));
  EXPECT_THROW(research::parse_pauli_log("layer 0 head 0: IXII\nlayer 0 head 0: XIII\n"), std::runtime_error);
  Gpt g = make_model(QISA_ATTENTION_QISA_V3, 7, true);
  const StateDict sd = research_state_dict(g, {});
  auto o = options();
  o.paulis = research::parse_pauli_log(pauli_log(g) + "");
  EXPECT_NO_THROW(research::convert(sd, o));
  auto short_log = pauli_log(g);
  short_log.replace(short_log.find("layer 0 head 0:  ['"), 19, "layer 0 head 0:  ['IIII', '");
  o.paulis = research::parse_pauli_log(short_log);
  expect_refusal(sd, o, "an all-identity string");
}

TEST(ConvertResearchRefusals, PauliFromMatrixIdentifiesEveryStringAndNothingElse) {
  for (uint32_t n : {2u, 3u}) {
    const uint64_t D = uint64_t{1} << n;
    for (uint64_t x = 0; x < D; ++x)
      for (uint64_t z = 0; z < D; ++z) {
        std::vector<cplx> m(D * D), e(D), col(D);
        for (uint64_t j = 0; j < D; ++j) {
          std::fill(e.begin(), e.end(), cplx(0));
          e[j] = 1;
          apply_pauli({x, z}, e, col);
          for (uint64_t r = 0; r < D; ++r) m[r * D + j] = col[r];
        }
        const auto p = research::pauli_from_matrix(n, m);
        ASSERT_TRUE(p.has_value()) << x << " " << z;
        EXPECT_EQ(p->x_mask, x);
        EXPECT_EQ(p->z_mask, z);
        m[1] += cplx(0.5, 0);  // no longer a Pauli string
        EXPECT_FALSE(research::pauli_from_matrix(n, m).has_value());
      }
  }
}

// ---- the file reader on hostile archives -------------------------------------

// A string literal's bytes, embedded zeros included.
template <size_t N>
std::string bytes(const char (&s)[N]) {
  return std::string(s, N - 1);
}

void write_archive(const std::string& path, const std::string& pkl,
                   const std::vector<std::pair<std::string, std::string>>& records = {}) {
  caffe2::serialize::PyTorchStreamWriter w(path);
  w.writeRecord("data.pkl", pkl.data(), pkl.size());
  for (const auto& [name, bytes] : records) w.writeRecord(name, bytes.data(), bytes.size());
  w.writeEndOfFile();
}

TEST(TorchPickle, RefusesCodeTruncationAndOutOfRangeTensors) {
  TempDir dir;
  auto refused = [&](const std::string& pkl, const std::string& says,
                     const std::vector<std::pair<std::string, std::string>>& records = {}) {
    write_archive(dir / "x.pt", pkl, records);
    try {
      research::read_state_dict(dir / "x.pt");
      ADD_FAILURE() << "read; expected '" << says << "'";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  // os.system("true"): a pickle that would run code in Python.
  refused(bytes("\x80\x02"
                "cos\nsystem\n"
                "X\x04\x00\x00\x00"
                "true"
                "\x85R."),
          "calls os.system");
  refused(bytes("\x80\x02}q\x00(X\x01\x00\x00\x00"
                "a"),
          "truncated");
  refused(bytes("\x80\x02\xff"), "opcode 0xff");
  // {"w": tensor} whose 4-element view with stride 3 reads element 9 of a 4-element storage.
  const std::string tensor = bytes(
      "\x80\x02}(X\x01\x00\x00\x00"
      "w"
      "ctorch._utils\n_rebuild_tensor_v2\n("
      "(X\x07\x00\x00\x00"
      "storage"
      "ctorch\nFloatStorage\n"
      "X\x01\x00\x00\x00"
      "0"
      "X\x03\x00\x00\x00"
      "cpu"
      "K\x04tQ"
      "K\x00K\x04\x85K\x03\x85\x89NtRu.");
  refused(tensor, "reads past the end of its storage", {{"data/0", std::string(16, '\0')}});
  refused(tensor, "missing record data/0");
  refused(tensor, "fewer than its 4 elements", {{"data/0", std::string(8, '\0')}});
}

// A state_dict written by PyTorch's own torch.save (tests/fixtures/research-qisa-v3.pt,
// made by tests/fixtures/make_research_checkpoint.py with an independent
// NumPy-free implementation of the research model's eval-mode forward):
// its OrderedDict, _metadata and complex storages read, and the converted
// model gives the logits PyTorch computed.
TEST(ConvertResearchFixture, TorchSaveFileGivesPyTorchsLogits) {
  const std::string ckpt = test::fixture("research-qisa-v3.pt");
  ASSERT_TRUE(fs::exists(ckpt)) << ckpt;
  const StateDict sd = research::read_state_dict(ckpt);
  auto o = options();
  const auto converted = research::convert(sd, o);
  EXPECT_EQ(converted.pauli_source, "observables");
  TempDir dir;
  const CliRun r =
      train_cli("convert-research " + ckpt + " --text " + corpus_path() + " --out " + (dir / "m.qisa"), dir.str());
  ASSERT_EQ(r.rc, 0) << r.err;
  std::ifstream golden(test::fixture("research-qisa-v3.logits"));
  std::vector<int32_t> tokens;
  std::vector<float> want;
  size_t n = 0;
  golden >> n;
  for (size_t i = 0; i < n; ++i) {
    int32_t t = 0;
    golden >> t;
    tokens.push_back(t);
  }
  for (float v; golden >> v;) want.push_back(v);
  ASSERT_EQ(want.size(), n * vocab().size());
  EXPECT_LT(test::max_abs_diff(want, libqisa_logits(dir / "m.qisa", tokens)), 1e-4f);
}

}  // namespace
}  // namespace qisa::train
