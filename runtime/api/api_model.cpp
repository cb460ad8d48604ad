// C API: loading, freeing and describing models.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "api_guard.h"
#include "dtype.h"
#include "model.h"
#include "model_storage.h"
#include "qisa.h"

#include "api_model.h"

namespace qisa {
const Model& model_of(const qisa_model* m) {
  return *m->impl;
}
}  // namespace qisa

namespace {

qisa::LoadOptions options_from(const qisa_model_params& p) {
  qisa::LoadOptions o;
  o.check_unitaries = p.check_unitaries != 0;
  o.check_weights_finite = p.check_weights_finite != 0;
  return o;
}

// Reads the caller's params (NULL: defaults). struct_size guards against a
// caller compiled against a different layout.
qisa_model_params resolve_params(const qisa_model_params* in) {
  qisa_model_params p;
  qisa_model_default_params(&p);
  if (in == nullptr) return p;
  if (in->struct_size != sizeof(qisa_model_params)) {
    qisa::fail(QISA_ERR_INVALID_ARGUMENT,
               "params->struct_size is %zu, expected %zu (call qisa_model_default_params first)", in->struct_size,
               sizeof(qisa_model_params));
  }
  return *in;
}

qisa_status finish_load(std::string& msg, qisa_model** out, char* errmsg, size_t errmsg_size, qisa_status status) {
  if (status != QISA_OK) {
    if (out) *out = nullptr;
    qisa::copy_message(msg, errmsg, errmsg_size);
  } else {
    qisa::copy_message("", errmsg, errmsg_size);
  }
  return status;
}

}  // namespace

extern "C" {

void qisa_model_default_params(qisa_model_params* params) {
  if (params == nullptr) return;
  std::memset(params, 0, sizeof(*params));
  params->struct_size = sizeof(*params);
  params->use_mmap = 1;
  params->copy_buffer = 1;
  params->check_unitaries = 1;
  params->check_weights_finite = 0;
}

qisa_status qisa_model_load_file(const char* path, const qisa_model_params* params, qisa_model** out_model,
                                 char* errmsg, size_t errmsg_size) {
  std::string msg;
  const qisa_status st = qisa::guarded(msg, [&] {
    if (out_model == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "out_model is NULL");
    *out_model = nullptr;
    if (path == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "path is NULL");
    const qisa_model_params p = resolve_params(params);
    auto storage = p.use_mmap ? qisa::map_file(path) : qisa::read_file(path);
    auto model = std::make_unique<qisa_model>();
    model->impl = qisa::load_model(std::move(storage), options_from(p));
    *out_model = model.release();
  });
  return finish_load(msg, out_model, errmsg, errmsg_size, st);
}

qisa_status qisa_model_load_buffer(const void* data, size_t size, const qisa_model_params* params,
                                   qisa_model** out_model, char* errmsg, size_t errmsg_size) {
  std::string msg;
  const qisa_status st = qisa::guarded(msg, [&] {
    if (out_model == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "out_model is NULL");
    *out_model = nullptr;
    if (data == nullptr) qisa::fail(QISA_ERR_INVALID_ARGUMENT, "data is NULL");
    const qisa_model_params p = resolve_params(params);
    // Tensors are read in place only from 64-byte aligned memory; other
    // buffers are copied whatever copy_buffer says.
    const bool aligned = reinterpret_cast<uintptr_t>(data) % 64 == 0;
    auto storage = (p.copy_buffer || !aligned) ? qisa::copy_buffer(data, size) : qisa::borrow_buffer(data, size);
    auto model = std::make_unique<qisa_model>();
    model->impl = qisa::load_model(std::move(storage), options_from(p));
    *out_model = model.release();
  });
  return finish_load(msg, out_model, errmsg, errmsg_size, st);
}

void qisa_model_free(qisa_model* model) {
  // unique_ptr's destructor runs no code that throws.
  std::unique_ptr<qisa_model> owned(model);
}

qisa_status qisa_model_get_info(const qisa_model* model, qisa_model_info* info) {
  if (model == nullptr || info == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  // 0.3's struct ended at file_bytes; later fields are only appended.
  constexpr size_t kSize03 = offsetof(qisa_model_info, bos_token);
  constexpr size_t kSize04 = offsetof(qisa_model_info, tokenizer);
  if (info->struct_size != sizeof(qisa_model_info) && info->struct_size != kSize03 && info->struct_size != kSize04)
    return QISA_ERR_INVALID_ARGUMENT;
  const qisa::Model& m = *model->impl;
  const qisa::ModelConfig& c = m.config;
  qisa_model_info out;
  std::memset(&out, 0, sizeof(out));
  out.struct_size = sizeof(out);
  out.vocab_size = static_cast<int32_t>(c.vocab_size);
  out.n_ctx = static_cast<int32_t>(c.n_ctx);
  out.n_embd = static_cast<int32_t>(c.n_embd);
  out.n_layer = static_cast<int32_t>(c.n_layer);
  out.n_head = static_cast<int32_t>(c.n_head);
  out.n_ff = static_cast<int32_t>(c.n_ff);
  out.n_qubits = static_cast<int32_t>(m.n_qubits);
  out.format_major = m.format_major;
  out.format_minor = m.format_minor;
  out.ln_placement = c.ln_placement;
  out.activation = c.activation;
  out.ln_eps = c.ln_eps;
  out.tied_lm_head = c.tied_lm_head ? 1 : 0;
  out.reference_transposed = c.reference_transposed ? 1 : 0;
  out.n_params = m.n_params;
  out.n_tensors = m.tensors.size();
  out.file_bytes = m.file_bytes;
  out.bos_token = m.tokenizer.bos_id;
  out.eos_token = m.tokenizer.eos_id;
  out.unk_token = m.tokenizer.unk_id;
  out.tokenizer = m.tokenizer.kind == qisa::TokenizerKind::ByteBPE ? QISA_TOKENIZER_BYTE_BPE : QISA_TOKENIZER_CHAR;
  const size_t size = info->struct_size;
  out.struct_size = size;
  std::memcpy(info, &out, size);
  return QISA_OK;
}

qisa_status qisa_model_head_kind(const qisa_model* model, int32_t layer, int32_t head, qisa_attention_kind* out_kind) {
  if (model == nullptr || out_kind == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  const qisa::Model& m = *model->impl;
  if (layer < 0 || static_cast<uint32_t>(layer) >= m.config.n_layer || head < 0 ||
      static_cast<uint32_t>(head) >= m.config.n_head) {
    return QISA_ERR_OUT_OF_RANGE;
  }
  *out_kind = m.layers[static_cast<size_t>(layer)].heads[static_cast<size_t>(head)].kind;
  return QISA_OK;
}

qisa_status qisa_model_head_sparsity(const qisa_model* model, int32_t layer, int32_t head, int32_t* out_top_k,
                                     int32_t* out_window) {
  if (model == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  const qisa::Model& m = *model->impl;
  if (layer < 0 || static_cast<uint32_t>(layer) >= m.config.n_layer || head < 0 ||
      static_cast<uint32_t>(head) >= m.config.n_head) {
    return QISA_ERR_OUT_OF_RANGE;
  }
  // Both at most n_ctx (checked at load), so they fit.
  const qisa::Sparsity& s = m.layers[static_cast<size_t>(layer)].heads[static_cast<size_t>(head)].sparsity;
  if (out_top_k) *out_top_k = static_cast<int32_t>(s.top_k);
  if (out_window) *out_window = static_cast<int32_t>(s.window);
  return QISA_OK;
}

qisa_status qisa_model_tensor_info(const qisa_model* model, uint64_t index, const char** out_name,
                                   qisa_dtype* out_dtype, uint64_t* out_elements) {
  if (model == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  const qisa::Model& m = *model->impl;
  if (index >= m.tensors.size()) return QISA_ERR_OUT_OF_RANGE;
  const qisa::TensorView& t = m.tensors[index];
  if (out_name) *out_name = t.name.c_str();
  if (out_dtype) *out_dtype = t.dtype;
  if (out_elements) *out_elements = t.elements;
  return QISA_OK;
}

qisa_status qisa_model_metadata(const qisa_model* model, const char* key, const char** out_value) {
  if (model == nullptr || key == nullptr || out_value == nullptr) return QISA_ERR_INVALID_ARGUMENT;
  const auto& md = model->impl->metadata;
  auto it = md.find(key);
  if (it == md.end()) {
    *out_value = nullptr;
    return QISA_ERR_OUT_OF_RANGE;
  }
  *out_value = it->second.c_str();
  return QISA_OK;
}

}  // extern "C"
