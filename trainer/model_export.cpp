#include "model_export.h"

#include <stdexcept>

#include "dtype.h"
#include "synthetic_model.h"
#include "tensor_names.h"

namespace qisa::train {

namespace {

std::vector<float> to_vector(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kFloat32).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

std::vector<uint64_t> shape_of(const torch::Tensor& t) {
  std::vector<uint64_t> s;
  for (auto d : t.sizes()) s.push_back(static_cast<uint64_t>(d));
  return s;
}

writer::ProjectionDesc export_projection(QuantumProjection& p, const std::string& prefix, bool raw,
                                         const ExportOptions& o, writer::ModelDesc& d) {
  writer::ProjectionDesc desc;
  desc.n_qubits = static_cast<uint32_t>(p->n_qubits());
  desc.encoding = raw ? 1 : 0;
  desc.angles = to_vector(p->angles);
  desc.paulis = p->paulis();
  desc.has_observables = o.observables;
  const auto [u_re, u_im] = p->unitary();
  d.tensors.push_back(
      writer::make_tensor(prefix + names::kUnitaryRe, shape_of(u_re), to_vector(u_re), o.unitary_dtype));
  d.tensors.push_back(
      writer::make_tensor(prefix + names::kUnitaryIm, shape_of(u_im), to_vector(u_im), o.unitary_dtype));
  if (o.observables) {
    const auto re = to_vector(u_re), im = to_vector(u_im);
    std::vector<cplx> u(re.size());
    for (size_t i = 0; i < u.size(); ++i) u[i] = cplx(re[i], im[i]);
    std::vector<float> ore, oim;
    writer::dense_observables(desc.n_qubits, u, desc.paulis, ore, oim);
    const uint64_t D = uint64_t{1} << desc.n_qubits, h = desc.paulis.size();
    d.tensors.push_back(writer::make_tensor(prefix + names::kObservablesRe, {h, D, D}, ore, o.unitary_dtype));
    d.tensors.push_back(writer::make_tensor(prefix + names::kObservablesIm, {h, D, D}, oim, o.unitary_dtype));
  }
  return desc;
}

}  // namespace

writer::ModelDesc export_model(Gpt& model, const ExportOptions& o) {
  torch::NoGradGuard no_grad;
  const ModelOptions& m = model->options;
  writer::ModelDesc d;
  d.config = {static_cast<uint32_t>(m.vocab_size),
              static_cast<uint32_t>(m.n_ctx),
              static_cast<uint32_t>(m.n_embd),
              static_cast<uint32_t>(m.n_layer),
              static_cast<uint32_t>(m.n_head),
              static_cast<uint32_t>(m.n_ff()),
              QISA_LN_PRE,
              1e-5f,
              QISA_ACTIVATION_RELU,
              false,
              m.reference_transpose};
  d.tokenizer = o.tokenizer;
  d.metadata = o.metadata;
  // Matrices take the chosen dtype; vectors (biases, LayerNorm) stay f32.
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    d.tensors.push_back(
        writer::make_tensor(name, shape_of(t), to_vector(t), t.dim() >= 2 ? o.weight_dtype : QISA_DTYPE_F32));
  };
  add(names::kTokEmb, model->tok_emb->weight);
  add(names::kPosEmb, model->pos_emb->weight);
  d.layers.resize(static_cast<size_t>(m.n_layer));
  for (int l = 0; l < m.n_layer; ++l) {
    auto& b = model->blocks[static_cast<size_t>(l)];
    const std::string p = names::layer(l);
    add(p + names::kLn1Weight, b->ln1->weight);
    add(p + names::kLn1Bias, b->ln1->bias);
    for (int h = 0; h < m.n_head; ++h) {
      auto head = b->heads[static_cast<size_t>(h)]->as<HeadImpl>();
      writer::HeadDesc hd;
      hd.kind = head->kind;
      hd.scale = head->scale;
      if (attention_kind(head->kind).select == Select::TopK)
        hd.sparsity = {static_cast<uint32_t>(m.qsat_top_k), static_cast<uint32_t>(m.qsat_window)};
      auto linear = [&](char role, torch::nn::Linear& lin) {
        add(names::proj(l, h, role) + names::kWeight, lin->weight);
        if (lin->options.bias()) add(names::proj(l, h, role) + names::kBias, lin->bias);
      };
      for (Role r : kAllRoles) {
        if (attention_kind(head->kind).of(r) == Source::Linear)
          linear(role_letter(r), head->linear(r));
        else
          hd.quantum(r) = export_projection(head->quantum(r), names::proj(l, h, role_letter(r)), m.raw_encoding, o, d);
      }
      d.layers[static_cast<size_t>(l)].push_back(std::move(hd));
    }
    add(p + names::kProjWeight, b->proj->weight);
    add(p + names::kProjBias, b->proj->bias);
    add(p + names::kLn2Weight, b->ln2->weight);
    add(p + names::kLn2Bias, b->ln2->bias);
    add(p + names::kUpWeight, b->up->weight);
    add(p + names::kUpBias, b->up->bias);
    add(p + names::kDownWeight, b->down->weight);
    add(p + names::kDownBias, b->down->bias);
  }
  add(names::kLnFWeight, model->ln_f->weight);
  add(names::kLnFBias, model->ln_f->bias);
  add(names::kLmHeadWeight, model->lm_head->weight);
  add(names::kLmHeadBias, model->lm_head->bias);
  return d;
}

namespace {

torch::Tensor to_torch(const TensorView* t) {
  if (!t) throw std::runtime_error("import: missing tensor");
  std::vector<int64_t> shape(t->shape.begin(), t->shape.end());
  auto out = torch::empty(shape, torch::kFloat32);
  for (uint64_t r = 0; r < t->rows(); ++r) {
    dequantize_row(t->dtype, t->row(r), t->cols(), out.data_ptr<float>() + r * t->cols());
  }
  return out;
}

void assign(torch::Tensor& param, const TensorView* t) {
  auto v = to_torch(t);
  if (param.sizes() != v.sizes()) throw std::runtime_error("import: shape mismatch for '" + t->name + "'");
  param.copy_(v);
}

}  // namespace

Gpt import_model(const qisa::Model& m) {
  const ModelConfig& c = m.config;
  if (c.ln_placement != QISA_LN_PRE || c.activation != QISA_ACTIVATION_RELU || c.tied_lm_head) {
    throw std::runtime_error("the trainer models pre-LN, ReLU, untied-head GPTs only");
  }
  ModelOptions o;
  o.vocab_size = c.vocab_size;
  o.n_ctx = c.n_ctx;
  o.n_embd = c.n_embd;
  o.n_layer = c.n_layer;
  o.n_head = c.n_head;
  o.attention = m.layers[0].heads[0].kind;
  o.reference_transpose = c.reference_transposed;
  o.qsat_top_k = m.layers[0].heads[0].sparsity.top_k;
  o.qsat_window = m.layers[0].heads[0].sparsity.window;
  o.dropout = 0.0;
  for (const auto& layer : m.layers) {
    for (const auto& head : layer.heads) {
      if (head.kind != o.attention) throw std::runtime_error("the trainer models one attention kind per model");
      if (head.sparsity.top_k != m.layers[0].heads[0].sparsity.top_k ||
          head.sparsity.window != m.layers[0].heads[0].sparsity.window)
        throw std::runtime_error("the trainer models one QSAT selection per model");
      for (Role r : kAllRoles)
        if (head.qp(r)) o.raw_encoding = head.qp(r)->encoding == Encoding::Raw;
    }
  }
  if (c.n_ff != 4 * c.n_embd) throw std::runtime_error("the trainer models n_ff = 4 n_embd only");
  Gpt g(o);
  torch::NoGradGuard no_grad;
  assign(g->tok_emb->weight, m.tok_emb);
  assign(g->pos_emb->weight, m.pos_emb);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const Layer& L = m.layers[l];
    auto& b = g->blocks[l];
    assign(b->ln1->weight, L.ln1_w);
    assign(b->ln1->bias, L.ln1_b);
    assign(b->ln2->weight, L.ln2_w);
    assign(b->ln2->bias, L.ln2_b);
    assign(b->proj->weight, L.proj.weight);
    assign(b->proj->bias, L.proj.bias);
    assign(b->up->weight, L.up.weight);
    assign(b->up->bias, L.up.bias);
    assign(b->down->weight, L.down.weight);
    assign(b->down->bias, L.down.bias);
    for (size_t h = 0; h < L.heads.size(); ++h) {
      const qisa::Head& src = L.heads[h];
      auto head = b->heads[h]->as<HeadImpl>();
      auto linear = [&](torch::nn::Linear& lin, const qisa::Linear& from) {
        assign(lin->weight, from.weight);
        if (lin->options.bias()) {
          if (from.bias)
            assign(lin->bias, from.bias);
          else
            lin->bias.zero_();
        }
      };
      for (Role r : kAllRoles) {
        if (head->linear(r)) linear(head->linear(r), src.lin(r));
        const std::optional<qisa::QuantumProjection>& from = src.qp(r);
        if (!from) continue;
        QuantumProjection fresh(from->n_qubits, from->paulis);
        fresh->angles.copy_(torch::tensor(from->angles));
        std::string name = "q";  // the module's name: qq, qk or qv
        name += role_letter(r);
        head->replace_module(name, fresh);
        head->quantum(r) = fresh;
      }
    }
  }
  assign(g->ln_f->weight, m.lnf_w);
  assign(g->ln_f->bias, m.lnf_b);
  assign(g->lm_head->weight, m.lm_head.weight);
  if (m.lm_head.bias)
    assign(g->lm_head->bias, m.lm_head.bias);
  else
    g->lm_head->bias.zero_();
  g->eval();
  return g;
}

}  // namespace qisa::train
