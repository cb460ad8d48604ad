// Valid models with random weights of the right shapes, for tests and
// benchmarks: real circuits (U built from random angles), Pauli strings drawn
// the research code's way, a char tokenizer.
#pragma once

#include <cstdint>

#include "bpe.h"
#include "model_writer.h"

namespace qisa::writer {

struct SyntheticSpec {
  uint32_t vocab_size = 65, n_ctx = 16, n_embd = 16, n_layer = 2, n_head = 1;
  uint32_t n_ff = 0;  // 0: 4 * n_embd
  qisa_attention_kind kind = QISA_ATTENTION_QISA_V3;
  Sparsity sparsity = {4, 2};  // for a QSAT kind: at most 6 of 16 positions
  uint8_t encoding = 0;        // normalized
  bool observables = false;
  bool tied_lm_head = false;
  bool reference_transposed = false;
  qisa_ln_placement ln_placement = QISA_LN_PRE;
  qisa_activation activation = QISA_ACTIVATION_RELU;
  qisa_dtype weight_dtype = QISA_DTYPE_F32;
  qisa_dtype unitary_dtype = QISA_DTYPE_F32;  // one that cannot hold unitaries (q4_0): q8_0
  uint64_t seed = 1;
};

ModelDesc make_synthetic_model(const SyntheticSpec& spec);

// A tokenizer table from learned byte-level BPE (pieces and merges in their
// stored form); the model's vocab_size must be l.pieces.size().
TokenizerDesc bpe_tokenizer(const bpe::Learned& l);
// A small model (CSA, n_embd 8, 1 layer) with that tokenizer: tokenizer
// tests, fuzzing and benchmarks.
ModelDesc synthetic_bpe_model(const bpe::Learned& l);

// Pauli strings as the research code draws them: each qubit I with
// probability 0.9, else X, Y or Z uniformly; an all-identity draw is redrawn.
std::vector<PauliString> draw_paulis(uint32_t n_qubits, uint32_t count, uint64_t seed);

// O'_k = U^dag P_k U (runtime/circuit.h), used when writing observables.
using qisa::dense_observables;

}  // namespace qisa::writer
