#include "research_checkpoint.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "attention_kind.h"
#include "torch_pickle.h"

namespace qisa::train::research {

namespace {

[[noreturn]] void refuse(const std::string& why) {
  throw std::runtime_error(why);
}

std::string shape_str(c10::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

StateDict read_state_dict(const std::string& path) {
  return load_torch_state_dict(path);
}

void write_state_dict(const StateDict& sd, const std::string& path) {
  c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [k, t] : sd) d.insert(k, t);
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(d));
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) refuse("cannot write " + path);
}

PauliTable parse_pauli_log(const std::string& text) {
  PauliTable out;
  static const std::regex head(R"(layer\s*(\d+)\D*?head\s*(\d+))", std::regex::icase);
  static const std::regex word(R"([IXYZ]+)");
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::smatch m;
    if (!std::regex_search(line, m, head)) continue;
    const std::string rest = m.suffix().str();
    std::vector<std::string> strings;
    // Whole words of I/X/Y/Z only ("IXZI", 'XIII'), not letters inside other words.
    for (auto it = std::sregex_iterator(rest.begin(), rest.end(), word); it != std::sregex_iterator(); ++it) {
      const auto pos = static_cast<size_t>(it->position());
      const auto end = pos + static_cast<size_t>(it->length());
      const auto alnum = [&](size_t i) { return std::isalnum(static_cast<unsigned char>(rest[i])) != 0; };
      if ((pos > 0 && alnum(pos - 1)) || (end < rest.size() && alnum(end))) continue;
      strings.push_back(it->str());
    }
    if (strings.empty()) continue;
    const auto key = std::make_pair(std::stoll(m[1].str()), std::stoll(m[2].str()));
    if (auto found = out.find(key); found != out.end() && found->second != strings) {
      refuse("Pauli file, line " + std::to_string(lineno) + ": layer " + m[1].str() + " head " + m[2].str() +
             " is listed twice with different strings (a log of two runs?)");
    }
    out[key] = strings;
  }
  return out;
}

std::optional<PauliString> pauli_from_matrix(uint32_t n, const std::vector<cplx>& m, double tol) {
  const uint64_t D = uint64_t{1} << n;
  if (m.size() != D * D) return std::nullopt;
  // P|j> = i^ny (-1)^popcount(j & z) |j ^ x>: row 0 holds one entry, at column x.
  uint64_t x = 0;
  for (uint64_t c = 1; c < D; ++c)
    if (std::abs(m[c]) > std::abs(m[x])) x = c;
  const cplx phase0 = m[x * D];  // <x|P|0> = i^ny
  if (std::abs(std::abs(phase0) - 1.0) > tol) return std::nullopt;
  uint64_t z = 0;
  for (uint32_t b = 0; b < n; ++b) {
    const uint64_t j = uint64_t{1} << b;
    if ((m[(j ^ x) * D + j] / phase0).real() < 0) z |= j;
  }
  const PauliString p{x, z};
  std::vector<cplx> e(D), col(D);
  for (uint64_t j = 0; j < D; ++j) {
    std::fill(e.begin(), e.end(), cplx(0));
    e[j] = 1;
    apply_pauli(p, e, col);
    for (uint64_t r = 0; r < D; ++r)
      if (std::abs(col[r] - m[r * D + j]) > tol) return std::nullopt;
  }
  return p;
}

namespace {

// The keys of one head, relative to "blocks.L.mhsa.heads.H.".
struct HeadKeys {
  std::string prefix;
  std::vector<std::string> rel;
  std::set<std::string> used;
};

// The one key of `rel` matching `pattern` (anchored), or "" when none.
// Heads may wrap their layers in one module ("qsa.", "csa."): the pattern
// is tried with and without one leading module name.
std::string find_key(HeadKeys& h, const std::string& pattern) {
  const std::regex re("(?:[A-Za-z_][A-Za-z0-9_]*\\.)?" + pattern);
  std::string found;
  for (const auto& k : h.rel) {
    if (!std::regex_match(k, re)) continue;
    if (!found.empty()) refuse("ambiguous: both '" + h.prefix + found + "' and '" + h.prefix + k + "' match");
    found = k;
  }
  return found;
}

bool has_key(HeadKeys& h, const std::string& pattern) {
  const std::regex re("(?:[A-Za-z_][A-Za-z0-9_]*\\.)?" + pattern);
  for (const auto& k : h.rel)
    if (std::regex_match(k, re)) return true;
  return false;
}

class Reader {
 public:
  explicit Reader(const StateDict& sd) : sd_(sd) {}

  torch::Tensor take(const std::string& key, std::vector<int64_t> shape) {
    const auto it = sd_.find(key);
    if (it == sd_.end()) refuse("missing key '" + key + "' (expected shape " + shape_str(shape) + ")");
    const torch::Tensor& t = it->second;
    if (t.sizes() != c10::IntArrayRef(shape))
      refuse("'" + key + "' has shape " + shape_str(t.sizes()) + ", expected " + shape_str(shape));
    if (t.is_complex() || !t.is_floating_point()) refuse("'" + key + "' is not a real floating-point tensor");
    used_.insert(key);
    return t.detach().to(torch::kFloat32).contiguous();
  }
  const torch::Tensor& get(const std::string& key) {
    used_.insert(key);
    return sd_.at(key);
  }
  void mark(const std::string& key) { used_.insert(key); }
  const std::set<std::string>& used() const { return used_; }

 private:
  const StateDict& sd_;
  std::set<std::string> used_;
};

std::vector<cplx> complex_matrix(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kComplexDouble).contiguous();
  const auto* p = c.data_ptr<c10::complex<double>>();
  std::vector<cplx> out(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = cplx(p[i].real(), p[i].imag());
  return out;
}

const char* role_prefix(Role r) {
  return r == Role::Q ? "q" : r == Role::K ? "k" : "v";
}

}  // namespace

Converted convert(const StateDict& sd, const ConvertOptions& o) {
  Reader rd(sd);
  Converted out;
  auto& report = out.report;

  // ---- sizes, from the embeddings and the block / head keys ----
  if (!sd.count("embedding.weight"))
    refuse("missing key 'embedding.weight': not a state_dict of the research code's GPT (model.py)");
  if (!sd.count("positional_embedding_table.weight")) refuse("missing key 'positional_embedding_table.weight'");
  const auto& emb = sd.at("embedding.weight");
  const auto& pos = sd.at("positional_embedding_table.weight");
  if (emb.dim() != 2 || pos.dim() != 2 || pos.size(1) != emb.size(1))
    refuse("embedding.weight " + shape_str(emb.sizes()) + " and positional_embedding_table.weight " +
           shape_str(pos.sizes()) + " are not [vocab, n_embd] and [n_ctx, n_embd]");
  const int64_t vocab = emb.size(0), d = emb.size(1), ctx = pos.size(0);
  std::map<int64_t, std::set<int64_t>> heads_of;  // layer -> heads
  static const std::regex block_re(R"(blocks\.(\d+)\..*)"), head_re(R"(blocks\.(\d+)\.mhsa\.heads\.(\d+)\..*)");
  for (const auto& [k, t] : sd) {
    std::smatch m;
    if (std::regex_match(k, m, head_re))
      heads_of[std::stoll(m[1].str())].insert(std::stoll(m[2].str()));
    else if (std::regex_match(k, m, block_re))
      heads_of[std::stoll(m[1].str())];
  }
  const auto n_layer = static_cast<int64_t>(heads_of.size());
  if (n_layer == 0) refuse("no 'blocks.N.' keys: not a state_dict of the research code's GPT");
  if (heads_of.rbegin()->first != n_layer - 1) refuse("block numbers are not 0.." + std::to_string(n_layer - 1));
  const auto n_head = static_cast<int64_t>(heads_of.begin()->second.size());
  for (const auto& [l, hs] : heads_of) {
    if (static_cast<int64_t>(hs.size()) != n_head || (n_head && *hs.rbegin() != n_head - 1))
      refuse("block " + std::to_string(l) + " has heads " + std::to_string(hs.size()) + ", block 0 has " +
             std::to_string(n_head) + " (or head numbers are not contiguous)");
  }
  if (n_head == 0 || d % n_head != 0)
    refuse("n_embd " + std::to_string(d) + " is not divisible by the " + std::to_string(n_head) + " heads");
  const int64_t hs = d / n_head;
  if (static_cast<int64_t>(o.vocab.size()) != vocab) {
    refuse("the text has " + std::to_string(o.vocab.size()) + " distinct characters but embedding.weight has " +
           std::to_string(vocab) +
           " rows: the research vocabulary is the sorted characters of the training text, so this is not the text "
           "the checkpoint was trained on");
  }

  // ---- the attention kind ----
  std::vector<HeadKeys> heads;
  for (int64_t l = 0; l < n_layer; ++l) {
    for (int64_t h = 0; h < n_head; ++h) {
      HeadKeys hk;
      hk.prefix = "blocks." + std::to_string(l) + ".mhsa.heads." + std::to_string(h) + ".";
      for (const auto& [k, t] : sd)
        if (k.rfind(hk.prefix, 0) == 0) hk.rel.push_back(k.substr(hk.prefix.size()));
      heads.push_back(std::move(hk));
    }
  }
  HeadKeys& h0 = heads.front();
  const bool looks_csa = has_key(h0, R"(query\.weight)");
  const bool looks_v3 = has_key(h0, R"(q_linear\.weight)");
  const bool looks_qsa = has_key(h0, R"(q(_slow)?\.rx0\.0\.params)");
  if (has_key(h0, R"(v_linear\.weight)"))
    refuse(
        "the head has 'v_linear.weight': this is QISA.py's absorbed value layer (O' = L^dag P L with a "
        "non-unitary L, no circuit), which format 1.0 has no attention kind for");
  qisa_attention_kind kind;
  if (o.attention) {
    kind = *o.attention;
    const bool fits = kind == QISA_ATTENTION_CSA       ? looks_csa
                      : kind == QISA_ATTENTION_QISA_V3 ? looks_v3
                                                       : looks_qsa && !looks_v3;
    if (!fits) {
      refuse(std::string("--attention ") + attention_kind(kind).name + " does not fit the checkpoint: head keys are " +
             (looks_csa   ? "nanoGPT-style query/key/value (csa)"
              : looks_v3  ? "q_linear/k_linear + a value circuit (qisa-v3)"
              : looks_qsa ? "circuits for q, k and v (qisa-v1 or qisa-v2)"
                          : "none the converter knows (" + h0.prefix + "...)"));
    }
  } else if (looks_csa) {
    kind = QISA_ATTENTION_CSA;
  } else if (looks_v3) {
    kind = QISA_ATTENTION_QISA_V3;
  } else if (looks_qsa) {
    refuse(
        "qisa-v1 and qisa-v2 checkpoints have the same keys (v1 measures Z on qubit 0 for q and k, v2 the "
        "head's Pauli strings): pass --attention qisa-v1 or --attention qisa-v2");
  } else {
    refuse("cannot tell the attention kind: " + h0.prefix +
           " has none of query.weight (csa), q_linear.weight (qisa-v3), q_slow.rx0.0.params (qisa-v1/v2)");
  }
  const AttentionKind& kd = attention_kind(kind);
  report.push_back(std::string("attention ") + kd.name + (o.attention ? " (given)" : " (from the keys)"));

  // ---- the model ----
  ModelOptions mo;
  mo.vocab_size = vocab;
  mo.n_ctx = ctx;
  mo.n_embd = d;
  mo.n_layer = n_layer;
  mo.n_head = n_head;
  mo.attention = kind;
  mo.dropout = 0.0;
  mo.reference_transpose = o.transposed.value_or(kd.any_quantum());
  const auto n_qubits = static_cast<uint32_t>(mo.n_qubits());
  if (kd.any_quantum() && (uint64_t{1} << n_qubits) < static_cast<uint64_t>(d))
    refuse("n_embd " + std::to_string(d) + " needs more qubits than the format allows");
  if (kd.any_quantum() && d < 3)
    refuse("n_embd " + std::to_string(d) + ": the research code uses ceil(log2 d) < 2 qubits, the format at least 2");
  Gpt g(mo);
  torch::NoGradGuard no_grad;
  auto copy = [&](torch::Tensor& dst, const std::string& key) { dst.copy_(rd.take(key, dst.sizes().vec())); };
  copy(g->tok_emb->weight, "embedding.weight");
  copy(g->pos_emb->weight, "positional_embedding_table.weight");
  copy(g->ln_f->weight, "norm.weight");
  copy(g->ln_f->bias, "norm.bias");
  copy(g->lm_head->weight, "fc.weight");
  copy(g->lm_head->bias, "fc.bias");

  int stored_u = 0, stored_obs = 0, from_file = 0, from_obs = 0, ignored_fast = 0;
  const uint64_t D = uint64_t{1} << n_qubits;
  // A stored D x D matrix (a unitary or an observable), read and checked.
  auto dense = [&](const std::string& key) {
    rd.mark(key);
    const auto& t = sd.at(key);
    if (t.sizes() != c10::IntArrayRef({static_cast<int64_t>(D), static_cast<int64_t>(D)}))
      refuse("'" + key + "' has shape " + shape_str(t.sizes()) + ", expected [" + std::to_string(D) + ", " +
             std::to_string(D) + "]");
    return complex_matrix(t);
  };
  for (int64_t l = 0; l < n_layer; ++l) {
    auto& b = g->blocks[static_cast<size_t>(l)];
    const std::string p = "blocks." + std::to_string(l) + ".";
    copy(b->ln1->weight, p + "norm1.weight");
    copy(b->ln1->bias, p + "norm1.bias");
    copy(b->ln2->weight, p + "norm2.weight");
    copy(b->ln2->bias, p + "norm2.bias");
    copy(b->proj->weight, p + "mhsa.project.weight");
    copy(b->proj->bias, p + "mhsa.project.bias");
    copy(b->up->weight, p + "feed_forward.layer.0.weight");
    copy(b->up->bias, p + "feed_forward.layer.0.bias");
    copy(b->down->weight, p + "feed_forward.layer.2.weight");
    copy(b->down->bias, p + "feed_forward.layer.2.bias");
    for (int64_t h = 0; h < n_head; ++h) {
      HeadKeys& hk = heads[static_cast<size_t>(l * n_head + h)];
      auto head = b->heads[static_cast<size_t>(h)]->as<HeadImpl>();
      const std::string where = "layer " + std::to_string(l) + " head " + std::to_string(h);
      auto need = [&](const std::string& pattern, const std::string& what) {
        const std::string k = find_key(hk, pattern);
        if (k.empty()) refuse("missing key for " + where + ": " + hk.prefix + "[module.]" + what);
        rd.mark(hk.prefix + k);
        return hk.prefix + k;
      };
      // Linear roles: CSA's query/key/value (no bias), v3's q_linear/k_linear (bias).
      for (Role r : kAllRoles) {
        if (kd.of(r) != Source::Linear) continue;
        const std::string base = kind == QISA_ATTENTION_CSA ? (r == Role::Q   ? "query"
                                                               : r == Role::K ? "key"
                                                                              : "value")
                                                            : std::string(role_prefix(r)) + "_linear";
        auto& lin = head->linear(r);
        copy(lin->weight, need(base + R"(\.weight)", base + ".weight"));
        const std::string bias = find_key(hk, base + R"(\.bias)");
        if (lin->options.bias()) {
          if (bias.empty()) refuse("missing key for " + where + ": " + hk.prefix + "[module.]" + base + ".bias");
          copy(lin->bias, hk.prefix + bias);
        } else if (!bias.empty()) {
          refuse("'" + hk.prefix + bias + "': " + kd.name + " projections have no bias in this format");
        }
      }
      for (const auto& k : hk.rel)  // the causal mask buffer
        if (k == "tril" || (k.size() > 5 && k.compare(k.size() - 5, 5, ".tril") == 0)) rd.mark(hk.prefix + k);
      if (!kd.any_quantum()) continue;

      // Pauli strings of the head: from --paulis and/or the dense observables.
      std::optional<std::vector<PauliString>> strings;
      if (o.paulis) {
        const auto it = o.paulis->find({l, h});
        if (it != o.paulis->end()) {
          std::vector<PauliString> v;
          for (const auto& s : it->second) {
            PauliString ps;
            if (s.size() != n_qubits || !pauli_from_string(s, &ps))
              refuse("Pauli file, " + where + ": '" + s + "' is not a string of " + std::to_string(n_qubits) +
                     " of I/X/Y/Z");
            if (ps.x_mask == 0 && ps.z_mask == 0) refuse("Pauli file, " + where + ": an all-identity string");
            v.push_back(ps);
          }
          if (static_cast<int64_t>(v.size()) != hs)
            refuse("Pauli file, " + where + ": " + std::to_string(v.size()) + " strings, the head size is " +
                   std::to_string(hs));
          strings = v;
          ++from_file;
        }
      }
      const std::vector<PauliString> z0(static_cast<size_t>(hs), PauliString{0, uint64_t{1} << (n_qubits - 1)});
      std::vector<float> angles[3];
      std::vector<cplx> unitary[3];
      for (Role r : kAllRoles) {
        if (kd.of(r) != Source::Quantum) continue;
        const auto ri = static_cast<size_t>(r);
        const std::string rp = role_prefix(r);
        // The trained angles: "<r>_slow.*" (QSA.py with fast/slow branches) or "<r>.*" (early QSA.py).
        const bool slow = has_key(hk, rp + R"(_slow\.rx0\.0\.params)");
        const std::string mod = rp + (slow ? "_slow" : "");
        std::vector<float> a(3 * n_qubits);
        const char* gates[3] = {"rx0", "ry0", "ry1"};
        for (int gi = 0; gi < 3; ++gi) {
          for (uint32_t j = 0; j < n_qubits; ++j) {
            const std::string k = need(mod + "\\." + gates[gi] + "\\." + std::to_string(j) + R"(\.params)",
                                       mod + "." + gates[gi] + "." + std::to_string(j) + ".params");
            const auto& t = rd.get(k);
            if (t.numel() != 1 || t.is_complex())
              refuse("'" + k + "' has shape " + shape_str(t.sizes()) + ", expected one angle ([1, 1])");
            a[gi * n_qubits + j] = t.to(torch::kFloat32).item<float>();
          }
        }
        for (uint32_t j = n_qubits; j < 64; ++j)
          if (has_key(hk, mod + R"(\.rx0\.)" + std::to_string(j) + R"(\.params)"))
            refuse(where + ": more rx0 gates than the " + std::to_string(n_qubits) + " qubits n_embd " +
                   std::to_string(d) + " gives");
        angles[ri] = a;
        unitary[ri] = circuit_unitary(n_qubits, a);
        // The eval-mode branch: a stored unitary must be the one the angles give.
        const std::string uk = find_key(hk, rp + R"(_fast\.layer\d+_head\d+_\w+_U\d+)");
        if (!uk.empty()) {
          const auto su = dense(hk.prefix + uk);
          double err = 0;
          for (size_t i = 0; i < su.size(); ++i) err = std::max(err, std::abs(su[i] - unitary[ri][i]));
          if (err > 1e-4 && !o.ignore_stored_unitary) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.3g", err);
            refuse("'" + hk.prefix + uk + "' differs from the unitary of the trained angles (" + mod + ".*) by up to " +
                   buf +
                   ": the checkpoint's evaluation branch did not run the circuit it trained (some research versions "
                   "build the fast unitary from untrained gates or repeat the CNOT/RY layer). The converter keeps "
                   "what training optimised only when told: --ignore-stored-unitary");
          }
          ++stored_u;
        }
        // Dense observables O'_k = U^dag P_k U: P_k = U O'_k U^dag.
        const bool first_qubit = r != Role::V && kd.qk_strings == QkStrings::FirstQubitZ;
        {
          std::vector<PauliString> rec;
          for (int64_t k = 0; k < hs; ++k) {
            const std::string ok = find_key(hk, rp + R"(_fast\.obs_primes\.)" + std::to_string(k));
            if (ok.empty()) break;
            const auto obs = dense(hk.prefix + ok);
            const auto& u = unitary[ri];
            std::vector<cplx> tmp(D * D), pm(D * D);  // tmp = U O', pm = tmp U^dag
            for (uint64_t i = 0; i < D; ++i)
              for (uint64_t q = 0; q < D; ++q) {
                cplx s = 0;
                for (uint64_t j = 0; j < D; ++j) s += u[i * D + j] * obs[j * D + q];
                tmp[i * D + q] = s;
              }
            for (uint64_t i = 0; i < D; ++i)
              for (uint64_t q = 0; q < D; ++q) {
                cplx s = 0;
                for (uint64_t j = 0; j < D; ++j) s += tmp[i * D + j] * std::conj(u[q * D + j]);
                pm[i * D + q] = s;
              }
            const auto ps = pauli_from_matrix(n_qubits, pm);
            if (!ps)
              refuse("'" + hk.prefix + ok + "' is not U^dag P U for any Pauli string P with the U of " + mod +
                     ".* (observables from a different circuit or a QISA.py absorbed layer?)");
            rec.push_back(*ps);
          }
          if (!rec.empty()) {
            if (static_cast<int64_t>(rec.size()) != hs)
              refuse(where + ": " + rp + "_fast has " + std::to_string(rec.size()) + " observables, the head size is " +
                     std::to_string(hs));
            ++stored_obs;
            if (first_qubit) {  // v1's q and k measure Z on qubit 0, whatever the head's strings
              for (size_t k = 0; k < rec.size(); ++k)
                if (rec[k].x_mask != z0[k].x_mask || rec[k].z_mask != z0[k].z_mask)
                  refuse(where + ": the observables of " + rp + "_fast measure " + pauli_to_string(n_qubits, rec[k]) +
                         ", not Z on qubit 0 as qisa-v1's q and k do: a qisa-v2 checkpoint?");
            } else if (strings) {
              for (size_t k = 0; k < rec.size(); ++k)
                if (rec[k].x_mask != (*strings)[k].x_mask || rec[k].z_mask != (*strings)[k].z_mask)
                  refuse(where + ": string " + std::to_string(k) + " is " + pauli_to_string(n_qubits, (*strings)[k]) +
                         " in the Pauli file but the observables of " + rp + "_fast say " +
                         pauli_to_string(n_qubits, rec[k]));
            } else {
              strings = rec;
              ++from_obs;
            }
          }
        }
        // The fast branch's own gate copies (untrained in some versions) and aliases.
        for (const auto& k : hk.rel) {
          static const std::regex fast_gate(R"((?:[A-Za-z_]\w*\.)?[qkv]_fast\.(rx0|ry0|ry1)(_params)?\.\d+\.params)");
          if (k.find(rp + "_fast.") != std::string::npos && std::regex_match(k, fast_gate)) {
            rd.mark(hk.prefix + k);
            ++ignored_fast;
          }
        }
      }
      if (!strings) {
        refuse("no Pauli strings for " + where +
               ": the checkpoint has no dense observables (*_fast.obs_primes.N, stored when the model ran in eval "
               "mode before saving). Pass --paulis LOG with the training log's \"Generated Pauli strings for layer " +
               std::to_string(l) + " head " + std::to_string(h) + ": [...]\" lines");
      }
      for (Role r : kAllRoles) {
        if (kd.of(r) != Source::Quantum) continue;
        const bool first_qubit = r != Role::V && kd.qk_strings == QkStrings::FirstQubitZ;
        QuantumProjection fresh(n_qubits, first_qubit ? z0 : *strings);
        fresh->angles.copy_(torch::tensor(angles[static_cast<size_t>(r)]));
        head->replace_module(std::string("q") + role_letter(r), fresh);
        head->quantum(r) = fresh;
      }
    }
  }
  // Every key must have been read or knowingly ignored.
  std::vector<std::string> unexpected;
  for (const auto& [k, t] : sd)
    if (!rd.used().count(k)) unexpected.push_back(k);
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 5; ++i) list += (i ? ", '" : "'") + unexpected[i] + "'";
    if (unexpected.size() > 5) list += " and " + std::to_string(unexpected.size() - 5) + " more";
    refuse(std::to_string(unexpected.size()) + " unexpected key(s) for a " + kd.name + " research GPT: " + list);
  }
  out.pauli_source = !kd.any_quantum()         ? "none"
                     : from_file && from_obs   ? "file and observables"
                     : from_file && stored_obs ? "file (checked against the observables)"
                     : from_file               ? "file"
                                               : "observables";
  char line[256];
  std::snprintf(line, sizeof line, "sizes: vocab %lld, n_ctx %lld, n_embd %lld, %lld layer(s), %lld head(s)",
                static_cast<long long>(vocab), static_cast<long long>(ctx), static_cast<long long>(d),
                static_cast<long long>(n_layer), static_cast<long long>(n_head));
  report.push_back(line);
  if (kd.any_quantum()) {
    report.push_back("Pauli strings from: " + out.pauli_source);
    std::snprintf(line, sizeof line,
                  "stored unitaries checked against the angles: %d%s; observables read: %d; fast-branch gate copies "
                  "ignored: %d",
                  stored_u, o.ignore_stored_unitary ? " (differences ignored: --ignore-stored-unitary)" : "",
                  stored_obs, ignored_fast);
    report.push_back(line);
  }
  report.push_back(mo.reference_transpose ? "attention: the research code's transposed (non-causal) form"
                                          : "attention: causal");
  g->eval();
  out.model = g;
  return out;
}

}  // namespace qisa::train::research
