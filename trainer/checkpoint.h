// Training checkpoints: a folder with the model, the optimizer, each rank's
// torch RNG and a small text state (step, model options, vocabulary, the
// data sampler's RNG, and the world size and per-rank batch the data order
// depends on). Written by rank 0; read by rank 0 and handed to the other
// ranks as bytes, so a resume needs no shared file system.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "gpt_model.h"

namespace qisa::train {

struct CheckpointState {
  ModelOptions model;
  std::vector<std::string> vocab;  // the tokenizer's pieces (raw bytes)
  bool bpe = false;                // byte-level BPE, with `merges` (stored form)
  std::vector<std::string> merges;
  int64_t step = 0;
  std::string rng;  // std::mt19937_64 stream state of the data sampler
  std::string split, data_sha256;
  int world_size = 1;  // checkpoints before data parallelism: 1
  int64_t batch = 0;   // per rank; 0: not recorded
};

// The bytes of a checkpoint folder.
struct CheckpointFiles {
  std::string state, model, optimizer;
  std::vector<std::string> torch_rng;  // one per rank
};

// The current default CPU generator's state, serialized.
std::string torch_rng_bytes();

// Writes the folder (state.txt last, via rename: a folder with a state.txt
// is complete). `torch_rng` holds every rank's torch_rng_bytes().
void write_checkpoint(const std::string& dir, Gpt& model, torch::optim::AdamW& opt, const CheckpointState& st,
                      const std::vector<std::string>& torch_rng);

// Throws std::runtime_error when the folder or a file is missing.
CheckpointFiles read_checkpoint_files(const std::string& dir);
CheckpointState parse_checkpoint_state(const std::string& text);
inline CheckpointState read_checkpoint_state(const std::string& dir) {
  return parse_checkpoint_state(read_checkpoint_files(dir).state);
}

// Model, optimizer (if given) and this rank's torch RNG from the bytes.
void load_checkpoint(const CheckpointFiles& files, int rank, Gpt& model, torch::optim::AdamW* opt);

}  // namespace qisa::train
