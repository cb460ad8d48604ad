// qisa-inspect: verifies a .qisa file and prints what it holds.
//   qisa-inspect [--json] [--no-check-unitaries] [--check-finite] FILE
// Exit status: 0 valid, 1 invalid file, 2 bad usage.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "api_model.h"
#include "bpe.h"
#include "circuit.h"
#include "dtype.h"
#include "json_escape.h"
#include "qisa.h"
#include "utf8.h"

namespace {

// Bytes as text: whole UTF-8 characters JSON-escaped, other bytes as \xNN.
std::string printable_bytes(const std::string& b) {
  std::string out;
  for (size_t i = 0; i < b.size();) {
    size_t j = i;
    uint32_t cp = 0;
    if (qisa::utf8_next(b, j, &cp)) {
      out += qisa::tools::json_escape(b.substr(i, j - i));
      i = j;
    } else {
      char x[8];
      std::snprintf(x, sizeof x, "\\x%02x", static_cast<unsigned char>(b[i]));
      out += x;
      ++i;
    }
  }
  return out;
}

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: qisa-inspect [options] FILE\n"
               "Verifies a .qisa model file and prints its config, tokenizer, tensors and provenance.\n"
               "  --json                 machine-readable output\n"
               "  --no-check-unitaries   skip comparing each U with its angles\n"
               "  --check-finite         scan every weight for NaN/Inf\n"
               "  --paulis               list every Pauli string\n"
               "  --vocab                list the vocabulary: id, then the piece as a JSON string (byte-level\n"
               "                         BPE: bytes that are no whole character as \\xNN, then the stored\n"
               "                         piece); with --json the tokenizer table (pieces, merges)\n"
               "  -h, --help             this text\n"
               "  --version              libqisa version\n");
}

using qisa::tools::json_escape;

std::string shape_of(const qisa::TensorView& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

// "csa x6" style summary of the heads' kinds.
std::map<std::string, int> kind_counts(const qisa::Model& m) {
  std::map<std::string, int> out;
  for (const auto& l : m.layers) {
    for (const auto& h : l.heads) ++out[qisa_attention_kind_string(h.kind)];
  }
  return out;
}

void print_text(const qisa::Model& m, const char* path, bool paulis) {
  const auto& c = m.config;
  std::printf("file:        %s (%llu bytes, format %u.%u)\n", path, static_cast<unsigned long long>(m.file_bytes),
              m.format_major, m.format_minor);
  std::printf("config:      vocab %u, n_ctx %u, n_embd %u, n_layer %u, n_head %u (head size %u), n_ff %u\n",
              c.vocab_size, c.n_ctx, c.n_embd, c.n_layer, c.n_head, c.head_size(), c.n_ff);
  std::printf("             %s-LN (eps %g), %s, LM head %s, attention %s\n",
              c.ln_placement == QISA_LN_PRE ? "pre" : "post", static_cast<double>(c.ln_eps),
              c.activation == QISA_ACTIVATION_RELU ? "ReLU" : "GELU", c.tied_lm_head ? "tied" : "untied",
              c.reference_transposed ? "REFERENCE-TRANSPOSED (non-causal; not for generation)" : "causal");
  std::printf("heads:      ");
  for (const auto& [k, n] : kind_counts(m)) std::printf(" %s x%d", k.c_str(), n);
  std::printf("\n");
  if (m.n_qubits) std::printf("qubits:      %u (D = %llu)\n", m.n_qubits, 1ull << m.n_qubits);
  std::printf("tokenizer:   %s, %zu pieces\n", m.tokenizer.kind == qisa::TokenizerKind::Char ? "char" : "byte-bpe",
              m.tokenizer.pieces.size());
  std::printf("parameters:  %llu in %zu tensors\n", static_cast<unsigned long long>(m.n_params), m.tensors.size());
  std::map<std::string, std::pair<int, unsigned long long>> by_type;
  for (const auto& t : m.tensors) {
    auto& e = by_type[qisa::dtype_name(t.dtype)];
    e.first++;
    e.second += t.bytes;
  }
  std::printf("dtypes:     ");
  for (const auto& [name, e] : by_type) std::printf(" %s: %d tensors, %llu bytes;", name.c_str(), e.first, e.second);
  std::printf("\n");
  if (!m.metadata.empty()) {
    std::printf("metadata:\n");
    for (const auto& [k, v] : m.metadata) std::printf("  %-20s %s\n", k.c_str(), v.c_str());
  }
  for (size_t l = 0; l < m.layers.size(); ++l) {
    for (size_t h = 0; h < m.layers[l].heads.size(); ++h) {
      const auto& head = m.layers[l].heads[h];
      std::printf("layer %zu head %zu: %s", l, h, qisa_attention_kind_string(head.kind));
      if (qisa::attention_kind(head.kind).score == qisa::Score::Dot)
        std::printf(" scale %g", static_cast<double>(head.scale));
      if (head.sparsity.sparse()) std::printf(" top_k %u window %u", head.sparsity.top_k, head.sparsity.window);
      std::printf("\n");
      if (!paulis) continue;
      for (qisa::Role r : qisa::kAllRoles) {
        const auto& proj = head.qp(r);
        if (!proj) continue;
        std::printf("  %c: %s encoding, paulis", qisa::role_letter(r),
                    proj->encoding == qisa::Encoding::Normalized ? "normalized" : "raw");
        for (const auto& p : proj->paulis) std::printf(" %s", qisa::pauli_to_string(proj->n_qubits, p).c_str());
        std::printf("\n");
      }
    }
  }
  std::printf("tensors:\n");
  for (const auto& t : m.tensors) {
    std::printf("  %-36s %-6s %-18s %10llu bytes\n", t.name.c_str(), qisa::dtype_name(t.dtype), shape_of(t).c_str(),
                static_cast<unsigned long long>(t.bytes));
  }
  std::printf("verified:    ok\n");
}

void print_json(const qisa::Model& m, const char* path) {
  const auto& c = m.config;
  std::printf("{\"file\": \"%s\", \"valid\": true, \"file_bytes\": %llu, \"format\": \"%u.%u\",\n",
              json_escape(path).c_str(), static_cast<unsigned long long>(m.file_bytes), m.format_major, m.format_minor);
  std::printf(
      " \"config\": {\"vocab_size\": %u, \"n_ctx\": %u, \"n_embd\": %u, \"n_layer\": %u, \"n_head\": %u, \"n_ff\": %u, "
      "\"ln_placement\": \"%s\", \"ln_eps\": %g, \"activation\": \"%s\", \"tied_lm_head\": %s, \"attention_mask\": "
      "\"%s\", \"n_qubits\": %u},\n",
      c.vocab_size, c.n_ctx, c.n_embd, c.n_layer, c.n_head, c.n_ff, c.ln_placement == QISA_LN_PRE ? "pre" : "post",
      static_cast<double>(c.ln_eps), c.activation == QISA_ACTIVATION_RELU ? "relu" : "gelu",
      c.tied_lm_head ? "true" : "false", c.reference_transposed ? "reference-transposed" : "causal", m.n_qubits);
  std::printf(" \"heads\": [");
  bool first = true;
  for (const auto& l : m.layers) {
    for (const auto& h : l.heads) {
      std::printf("%s\"%s\"", first ? "" : ", ", qisa_attention_kind_string(h.kind));
      first = false;
    }
  }
  std::printf("],\n \"tokenizer\": {\"kind\": \"%s\", \"size\": %zu},\n",
              m.tokenizer.kind == qisa::TokenizerKind::Char ? "char" : "byte-bpe", m.tokenizer.pieces.size());
  std::printf(" \"n_params\": %llu,\n \"metadata\": {", static_cast<unsigned long long>(m.n_params));
  first = true;
  for (const auto& [k, v] : m.metadata) {
    std::printf("%s\"%s\": \"%s\"", first ? "" : ", ", json_escape(k).c_str(), json_escape(v).c_str());
    first = false;
  }
  std::printf("},\n \"tensors\": [\n");
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const auto& t = m.tensors[i];
    std::printf("  {\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": %s, \"bytes\": %llu}%s\n",
                json_escape(t.name).c_str(), qisa::dtype_name(t.dtype), shape_of(t).c_str(),
                static_cast<unsigned long long>(t.bytes), i + 1 < m.tensors.size() ? "," : "");
  }
  std::printf(" ]}\n");
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false, paulis = false, vocab = false;
  const char* path = nullptr;
  qisa_model_params params;
  qisa_model_default_params(&params);
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "--json")) {
      json = true;
    } else if (!std::strcmp(a, "--paulis")) {
      paulis = true;
    } else if (!std::strcmp(a, "--vocab")) {
      vocab = true;
    } else if (!std::strcmp(a, "--no-check-unitaries")) {
      params.check_unitaries = 0;
    } else if (!std::strcmp(a, "--check-finite")) {
      params.check_weights_finite = 1;
    } else if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!std::strcmp(a, "--version")) {
      std::printf("qisa-inspect (libqisa %s, format %d.%d)\n", qisa_version(), QISA_FORMAT_VERSION_MAJOR,
                  QISA_FORMAT_VERSION_MINOR);
      return 0;
    } else if (a[0] == '-' && a[1] != '\0') {
      std::fprintf(stderr, "qisa-inspect: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    } else if (path) {
      std::fprintf(stderr, "qisa-inspect: more than one file given\n");
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) {
    usage(stderr);
    return 2;
  }
  qisa_model* model = nullptr;
  char err[512];
  const qisa_status st = qisa_model_load_file(path, &params, &model, err, sizeof err);
  if (st != QISA_OK) {
    if (json) {
      std::printf("{\"file\": \"%s\", \"valid\": false, \"status\": \"%s\", \"status_code\": %d, \"error\": \"%s\"}\n",
                  json_escape(path).c_str(), qisa_status_string(st), static_cast<int>(st), json_escape(err).c_str());
    } else {
      std::fprintf(stderr, "qisa-inspect: %s: %s: %s\n", path, qisa_status_string(st), err);
    }
    return 1;
  }
  const qisa::Model& m = qisa::model_of(model);
  const bool bpe = m.tokenizer.kind == qisa::TokenizerKind::ByteBPE;
  if (vocab && json) {  // the tokenizer table as the file stores it (byte-level BPE: mapped pieces, merges)
    std::printf("{\"kind\": \"%s\", \"pieces\": [", bpe ? "byte-bpe" : "char");
    for (size_t t = 0; t < m.tokenizer.pieces.size(); ++t) {
      const std::string& p = m.tokenizer.pieces[t];
      std::printf("%s\"%s\"", t ? ", " : "", json_escape(bpe ? qisa::bpe::to_stored(p) : p).c_str());
    }
    std::printf("], \"merges\": [");
    for (size_t r = 0; r < m.tokenizer.merges.size(); ++r)
      std::printf("%s\"%s\"", r ? ", " : "", json_escape(m.tokenizer.merges[r]).c_str());
    std::printf("]}\n");
  } else if (vocab) {  // one token per line; pieces quoted so spaces and newlines show
    for (size_t t = 0; t < m.tokenizer.pieces.size(); ++t) {
      const std::string& p = m.tokenizer.pieces[t];
      if (bpe)  // the bytes (\xNN where they are no whole character), then the stored form
        std::printf("%zu\t\"%s\"\t%s\n", t, printable_bytes(p).c_str(), qisa::bpe::to_stored(p).c_str());
      else
        std::printf("%zu\t\"%s\"\n", t, json_escape(p).c_str());
    }
    if (bpe) std::printf("%zu merges\n", m.tokenizer.merges.size());
  } else if (json) {
    print_json(m, path);
  } else {
    print_text(m, path, paulis);
  }
  qisa_model_free(model);
  return 0;
}
