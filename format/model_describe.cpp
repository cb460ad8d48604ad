#include "model_describe.h"

#include "tensor_names.h"

namespace qisa::writer {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

ProjectionDesc describe(const QuantumProjection& p) {
  ProjectionDesc d;
  d.n_qubits = p.n_qubits;
  d.encoding = static_cast<uint8_t>(p.encoding);
  d.circuit = static_cast<uint8_t>(p.circuit);
  d.angles = p.angles;
  d.paulis = p.paulis;
  d.has_observables = p.observables_re != nullptr;
  return d;
}

}  // namespace

TensorClass classify(const std::string& name, uint64_t rank) {
  if (ends_with(name, names::kUnitaryRe) || ends_with(name, names::kUnitaryIm)) return TensorClass::Unitary;
  if (ends_with(name, names::kObservablesRe) || ends_with(name, names::kObservablesIm)) return TensorClass::Observable;
  if (rank < 2) return TensorClass::Vector;
  if (name == names::kTokEmb || name == names::kPosEmb) return TensorClass::Embedding;
  if (name == names::kLmHeadWeight) return TensorClass::LmHead;
  return TensorClass::Weight;
}

ModelDesc describe(const Model& m) {
  ModelDesc d;
  d.format_major = m.format_major;
  d.format_minor = m.format_minor;
  const ModelConfig& c = m.config;
  d.config = {c.vocab_size,
              c.n_ctx,
              c.n_embd,
              c.n_layer,
              c.n_head,
              c.n_ff,
              c.ln_placement,
              c.ln_eps,
              c.activation,
              c.tied_lm_head,
              c.reference_transposed};
  for (const Layer& layer : m.layers) {
    std::vector<HeadDesc> heads;
    for (const Head& h : layer.heads) {
      HeadDesc hd;
      hd.kind = static_cast<uint8_t>(h.kind);
      hd.scale = h.scale;
      hd.sparsity = h.sparsity;
      for (Role r : kAllRoles)
        if (h.qp(r)) hd.quantum(r) = describe(*h.qp(r));
      heads.push_back(std::move(hd));
    }
    d.layers.push_back(std::move(heads));
  }
  d.tokenizer.kind = static_cast<uint8_t>(m.tokenizer.kind);
  d.tokenizer.pieces = m.tokenizer.pieces;
  if (m.tokenizer.kind == TokenizerKind::ByteBPE)  // the file stores mapped pieces
    for (auto& p : d.tokenizer.pieces) p = bpe::to_stored(p);
  d.tokenizer.merges = m.tokenizer.merges;
  d.tokenizer.bos_id = m.tokenizer.bos_id;
  d.tokenizer.eos_id = m.tokenizer.eos_id;
  d.tokenizer.unk_id = m.tokenizer.unk_id;
  for (const auto& [k, v] : m.metadata) d.metadata.emplace_back(k, v);
  for (const TensorView& t : m.tensors) {
    d.tensors.push_back({t.name, static_cast<uint8_t>(t.dtype), t.shape, {t.data, t.data + t.bytes}});
  }
  return d;
}

}  // namespace qisa::writer
