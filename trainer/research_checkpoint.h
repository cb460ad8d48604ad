// Reading the research code's checkpoints (Nikait/QISA: a torch.save'd
// state_dict of its GPT with QSA heads, or nanoGPT-style CSA heads) into the
// trainer's model, so that they export to .qisa like any trained model.
// docs/format.md, "Converting the research code's checkpoints", lists the
// keys read, the keys ignored and every refusal.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "circuit.h"
#include "gpt_model.h"
#include "qisa.h"

namespace qisa::train::research {

using StateDict = std::map<std::string, torch::Tensor>;

// A torch.save'd state_dict (PyTorch >= 1.6 zip format), no Python
// (torch_pickle.h). A dict holding the state_dict under "state_dict" /
// "model_state_dict" / "model" is unwrapped. Throws std::runtime_error.
StateDict read_state_dict(const std::string& path);
// A dict of str -> tensor as LibTorch's torch::pickle_save writes it (what
// torch.load reads), for tests and tools.
void write_state_dict(const StateDict& sd, const std::string& path);

// Pauli strings per (layer, head), from the research code's training log
// ("Generated Pauli strings for layer 0 head 0:  ['IXII', ...]") or lines
// "layer 0 head 0: IXII ZIII". Throws on a head listed twice differently.
using PauliTable = std::map<std::pair<int64_t, int64_t>, std::vector<std::string>>;
PauliTable parse_pauli_log(const std::string& text);

// The Pauli string whose matrix M is (row-major D x D, D = 2^n), or nullopt
// when M is no Pauli string (largest entry error above `tol`).
std::optional<PauliString> pauli_from_matrix(uint32_t n, const std::vector<cplx>& m, double tol = 1e-3);

struct ConvertOptions {
  std::optional<qisa_attention_kind> attention;  // inferred from the keys when absent
  std::vector<std::string> vocab;                // one piece per embedding row
  std::optional<PauliTable> paulis;              // --paulis
  std::optional<bool> transposed;                // default: QSA kinds yes, CSA no
  bool ignore_stored_unitary = false;            // convert although a stored U disagrees
};

struct Converted {
  Gpt model{nullptr};               // eval mode, dropout 0
  std::string pauli_source;         // "observables", "file", "both", "none"
  std::vector<std::string> report;  // what was checked and what was ignored
};

// Maps every tensor; throws std::runtime_error explaining any refusal
// (missing or unexpected key, shape, ambiguous version, no Pauli strings,
// stored unitary or observable that contradicts the angles).
Converted convert(const StateDict& sd, const ConvertOptions& o);

}  // namespace qisa::train::research
