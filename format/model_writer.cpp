#include "model_writer.h"

#include <cstdio>
#include <stdexcept>

#include "dtype.h"
#include "qisa_generated.h"

namespace qisa::writer {

namespace fb = qisa::fb;

TensorData make_tensor(std::string name, std::vector<uint64_t> shape, const std::vector<float>& values,
                       qisa_dtype dtype) {
  uint64_t elements = 1;
  for (auto d : shape) elements *= d;
  if (elements != values.size()) throw std::invalid_argument("make_tensor: '" + name + "' shape does not match values");
  const uint64_t cols = shape.empty() ? 1 : shape.back();
  const uint64_t rows = elements / cols;
  const uint64_t rb = *row_bytes(dtype, cols);
  TensorData t{std::move(name), static_cast<uint8_t>(dtype), std::move(shape), std::vector<uint8_t>(rows * rb)};
  for (uint64_t r = 0; r < rows; ++r) quantize_row(dtype, values.data() + r * cols, cols, t.bytes.data() + r * rb);
  return t;
}

std::vector<float> tensor_values(const TensorData& t) {
  uint64_t elements = 1;
  for (auto d : t.shape) elements *= d;
  const uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
  const uint64_t rows = elements / cols;
  const uint64_t rb = *row_bytes(static_cast<qisa_dtype>(t.dtype), cols);
  std::vector<float> out(elements);
  for (uint64_t r = 0; r < rows; ++r)
    dequantize_row(static_cast<qisa_dtype>(t.dtype), t.bytes.data() + r * rb, cols, out.data() + r * cols);
  return out;
}

TensorData* ModelDesc::find_tensor(const std::string& name) {
  for (auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

flatbuffers::Offset<fb::QuantumProjection> write_projection(flatbuffers::FlatBufferBuilder& b,
                                                            const ProjectionDesc& p) {
  std::vector<fb::Pauli> paulis;
  paulis.reserve(p.paulis.size());
  for (const auto& s : p.paulis) paulis.emplace_back(s.x_mask, s.z_mask);
  auto angles = b.CreateVector(p.angles);
  auto ps = b.CreateVectorOfStructs(paulis);
  return fb::CreateQuantumProjection(b, p.n_qubits, static_cast<fb::Encoding>(p.encoding),
                                     static_cast<fb::CircuitKind>(p.circuit), angles, ps, p.has_observables);
}

}  // namespace

std::vector<uint8_t> serialize(const ModelDesc& d) {
  flatbuffers::FlatBufferBuilder b(1024);
  // Tensor payloads first (they end up last in the buffer), each forced to
  // 64-byte alignment; the finished buffer's size is a multiple of 64, so
  // offsets from the start stay aligned.
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  tensors.reserve(d.tensors.size());
  for (const auto& t : d.tensors) {
    // PreAlign is what ForceVectorAlignment does, without its assertion
    // that alignments stay <= 32 (FLATBUFFERS_MAX_ALIGNMENT).
    b.PreAlign(t.bytes.size(), 64);
    auto data = b.CreateVector(t.bytes);
    auto shape = b.CreateVector(t.shape);
    auto name = b.CreateString(t.name);
    tensors.push_back(fb::CreateTensor(b, name, static_cast<fb::DType>(t.dtype), shape, data));
  }
  auto tensor_vec = b.CreateVector(tensors);

  std::vector<flatbuffers::Offset<fb::Layer>> layers;
  for (const auto& heads : d.layers) {
    std::vector<flatbuffers::Offset<fb::Head>> hs;
    for (const auto& h : heads) {
      flatbuffers::Offset<fb::QuantumProjection> q, k, v;
      if (h.q) q = write_projection(b, *h.q);
      if (h.k) k = write_projection(b, *h.k);
      if (h.v) v = write_projection(b, *h.v);
      hs.push_back(fb::CreateHead(b, static_cast<fb::AttentionKind>(h.kind), h.scale, q, k, v, h.sparsity.top_k,
                                  h.sparsity.window));
    }
    layers.push_back(fb::CreateLayer(b, b.CreateVector(hs)));
  }
  auto layer_vec = b.CreateVector(layers);

  const ConfigDesc& c = d.config;
  auto config = fb::CreateConfig(
      b, c.vocab_size, c.n_ctx, c.n_embd, c.n_layer, c.n_head, c.n_ff,
      static_cast<fb::LayerNormPlacement>(c.ln_placement), c.ln_eps, static_cast<fb::Activation>(c.activation),
      c.tied_lm_head, c.reference_transposed ? fb::AttentionMask::ReferenceTransposed : fb::AttentionMask::Causal);

  const TokenizerDesc& t = d.tokenizer;
  auto pieces = b.CreateVectorOfStrings(t.pieces);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> merges;
  if (!t.merges.empty()) merges = b.CreateVectorOfStrings(t.merges);
  auto tokenizer =
      fb::CreateTokenizer(b, static_cast<fb::TokenizerKind>(t.kind), pieces, merges, t.bos_id, t.eos_id, t.unk_id);

  std::vector<flatbuffers::Offset<fb::KeyValue>> md;
  for (const auto& [key, value] : d.metadata)
    md.push_back(fb::CreateKeyValue(b, b.CreateString(key), b.CreateString(value)));
  auto md_vec = b.CreateVector(md);

  auto model = fb::CreateModel(b, d.format_major, d.format_minor, config, layer_vec, tokenizer, tensor_vec, md_vec);
  fb::FinishModelBuffer(b, model);
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

void write_file(const ModelDesc& desc, const std::string& path) {
  const std::vector<uint8_t> bytes = serialize(desc);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot create '" + tmp + "'");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write '" + path + "'");
  }
}

}  // namespace qisa::writer
