// Reads the str -> tensor dict of a torch.save zip archive (PyTorch >= 1.6)
// without Python. LibTorch's own torch::pickle_load turns the
// collections.OrderedDict that every nn.Module.state_dict() is into None
// (1.13: it expects OrderedDicts only as tensors' backward hooks), so real
// checkpoints need this small unpickler of the opcodes torch.save emits
// (protocol 2): dicts, OrderedDicts, tuples, lists, scalars, strings and
// tensors rebuilt from the archive's storages. Anything else (arbitrary
// classes, other globals) is refused: nothing in the file runs code.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace qisa::train {

// Top-level dict (or its "state_dict" / "model_state_dict" / "model" entry)
// as name -> tensor. Throws std::runtime_error saying what is wrong.
std::map<std::string, torch::Tensor> load_torch_state_dict(const std::string& path);

}  // namespace qisa::train
