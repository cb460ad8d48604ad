// Writes .qisa files. Used by the trainer, the converters and the tests.
// The writer stores what it is given without judging it (tests build broken
// files with it); the loader in libqisa is the judge.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attention_kind.h"
#include "circuit.h"
#include "qisa.h"
#include "sparse_selection.h"

namespace qisa::writer {

struct TensorData {
  std::string name;
  // The values written to the file. Enums are held as their raw on-disk
  // values so that tests can write out-of-range ones.
  uint8_t dtype = QISA_DTYPE_F32;  // a qisa_dtype
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};

// Stores f32 `values` (row-major, `shape`) as `dtype`.
TensorData make_tensor(std::string name, std::vector<uint64_t> shape, const std::vector<float>& values,
                       qisa_dtype dtype = QISA_DTYPE_F32);
// The f32 values of a tensor (dequantized).
std::vector<float> tensor_values(const TensorData& t);

struct ProjectionDesc {
  uint32_t n_qubits = 0;
  uint8_t encoding = 0;  // 0 normalized, 1 raw
  uint8_t circuit = 0;   // 0 RX-RY / CNOT ring / RY, 1 dense
  std::vector<float> angles;
  std::vector<PauliString> paulis;
  bool has_observables = false;
};

// As the schema's Head table: a quantum projection per role where the
// kind's row says Source::Quantum (attention_kind.h).
struct HeadDesc {
  uint8_t kind = QISA_ATTENTION_CSA;  // a qisa_attention_kind
  float scale = 1.0f;
  Sparsity sparsity;  // QSAT's top_k and window; zero for the dense kinds
  std::optional<ProjectionDesc> q, k, v;

  std::optional<ProjectionDesc>& quantum(Role r) { return r == Role::Q ? q : r == Role::K ? k : v; }
  const std::optional<ProjectionDesc>& quantum(Role r) const { return r == Role::Q ? q : r == Role::K ? k : v; }
};

struct ConfigDesc {
  uint32_t vocab_size = 0, n_ctx = 0, n_embd = 0, n_layer = 0, n_head = 0, n_ff = 0;
  qisa_ln_placement ln_placement = QISA_LN_PRE;
  float ln_eps = 1e-5f;
  qisa_activation activation = QISA_ACTIVATION_RELU;
  bool tied_lm_head = false;
  bool reference_transposed = false;
};

struct TokenizerDesc {
  uint8_t kind = 0;  // 0 char, 1 byte BPE
  std::vector<std::string> pieces;
  std::vector<std::string> merges;
  int32_t bos_id = -1, eos_id = -1, unk_id = -1;
};

struct ModelDesc {
  uint16_t format_major = QISA_FORMAT_VERSION_MAJOR;
  uint16_t format_minor = QISA_FORMAT_VERSION_MINOR;
  ConfigDesc config;
  std::vector<std::vector<HeadDesc>> layers;
  TokenizerDesc tokenizer;
  std::vector<TensorData> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;

  TensorData* find_tensor(const std::string& name);
};

// Serializes to the bytes of a .qisa file; tensor payloads start 64-byte
// aligned relative to the start of the returned buffer.
std::vector<uint8_t> serialize(const ModelDesc& desc);

// Writes serialize(desc) to `path` (via a temporary file and rename).
// Throws std::runtime_error on I/O failure.
void write_file(const ModelDesc& desc, const std::string& path);

}  // namespace qisa::writer
