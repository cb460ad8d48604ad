// Between the LibTorch model and the .qisa format: export (with the
// precomputed unitaries, optional dense observables, tokenizer and
// provenance) and import (a stored model back into LibTorch, e.g. to
// evaluate a quantized file).
#pragma once

#include <map>
#include <string>

#include "gpt_model.h"
#include "model.h"
#include "model_writer.h"

namespace qisa::train {

struct ExportOptions {
  qisa_dtype weight_dtype = QISA_DTYPE_F32;   // 2-D weights and embeddings
  qisa_dtype unitary_dtype = QISA_DTYPE_F32;  // U planes and observables
  bool observables = false;                   // also store O'_k = U^dag P_k U
  writer::TokenizerDesc tokenizer;            // kind, pieces (as stored), merges
  std::vector<std::pair<std::string, std::string>> metadata;
};

writer::ModelDesc export_model(Gpt& model, const ExportOptions& options);

// Builds a LibTorch model holding a loaded model's (dequantized) weights.
Gpt import_model(const qisa::Model& model);

}  // namespace qisa::train
