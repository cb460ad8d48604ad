// qisa-quantize: rewrites a .qisa model with other element types, per class
// of tensor (like llama.cpp's quantize).
//   qisa-quantize IN.qisa OUT.qisa [--all T] [--weights T] [--embeddings T]
//                 [--lm-head T] [--unitaries T] [--observables T]
// T is f32, f16, bf16, q8 or q4. Vectors (biases, LayerNorm) stay f32; q4
// is refused for unitaries and observables (--all q4 stores them as q8).
// The output is loaded back through libqisa's checks before the tool
// succeeds.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "api_model.h"
#include "dtype.h"
#include "model_describe.h"

namespace {

using qisa::writer::TensorClass;

bool parse_dtype(const std::string& s, qisa_dtype* out) {
  const auto t = qisa::dtype_from_name(s);  // f32, f16, bf16, q8 (q8_0) or q4 (q4_0)
  if (t) *out = *t;
  return t.has_value();
}

int usage(std::FILE* f, int rc) {
  std::fprintf(f,
               "usage: qisa-quantize IN.qisa OUT.qisa [--all T] [--weights T] [--embeddings T] [--lm-head T]\n"
               "                     [--unitaries T] [--observables T]\n"
               "T: f32 | f16 | bf16 | q8 (also q8_0: 8-bit blocks of 32 with an f16 scale) | q4 (also q4_0:\n"
               "4-bit blocks of 32 with an f16 scale; not for unitaries or observables, which --all q4 stores\n"
               "as q8). Unset classes keep their type; biases and LayerNorm vectors stay f32. OUT must not be\n"
               "IN.\n");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string in, out;
  std::map<TensorClass, qisa_dtype> want;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(stdout, 0);
    static const std::map<std::string, std::vector<TensorClass>> kFlags = {
        {"--all",
         {TensorClass::Embedding, TensorClass::Weight, TensorClass::LmHead, TensorClass::Unitary,
          TensorClass::Observable}},
        {"--weights", {TensorClass::Weight}},
        {"--embeddings", {TensorClass::Embedding}},
        {"--lm-head", {TensorClass::LmHead}},
        {"--unitaries", {TensorClass::Unitary}},
        {"--observables", {TensorClass::Observable}}};
    auto flag = kFlags.find(a);
    if (flag != kFlags.end()) {
      qisa_dtype t;
      if (i + 1 >= argc || !parse_dtype(argv[i + 1], &t)) {
        std::fprintf(stderr, "qisa-quantize: %s needs one of %s\n", a.c_str(), qisa::dtype_names().c_str());
        return 2;
      }
      ++i;
      const bool quantum_too = qisa::dtype_traits(t).holds_unitaries;
      if (!quantum_too && (a == "--unitaries" || a == "--observables")) {
        std::fprintf(stderr, "qisa-quantize: %s %s: %s is too coarse for unitaries and observables\n", a.c_str(),
                     argv[i], qisa::dtype_name(t));
        return 2;
      }
      for (TensorClass c : flag->second)  // --all q4: unitaries and observables as q8_0
        want[c] = quantum_too || (c != TensorClass::Unitary && c != TensorClass::Observable) ? t : QISA_DTYPE_Q8_0;
    } else if (a[0] == '-') {
      std::fprintf(stderr, "qisa-quantize: unknown option '%s'\n", a.c_str());
      return usage(stderr, 2);
    } else if (in.empty()) {
      in = a;
    } else if (out.empty()) {
      out = a;
    } else {
      return usage(stderr, 2);
    }
  }
  if (in.empty() || out.empty()) return usage(stderr, 2);
  std::error_code same_ec;
  if (std::filesystem::exists(out) && std::filesystem::equivalent(in, out, same_ec)) {
    std::fprintf(stderr, "qisa-quantize: '%s' is the input file; write the result to another path\n", out.c_str());
    return 2;
  }

  char err[1024];
  qisa_model* model = nullptr;
  qisa_status st = qisa_model_load_file(in.c_str(), nullptr, &model, err, sizeof err);
  if (st != QISA_OK) {
    std::fprintf(stderr, "qisa-quantize: %s: %s\n", in.c_str(), err);
    return 1;
  }
  qisa::writer::ModelDesc desc = qisa::writer::describe(qisa::model_of(model));
  qisa_model_free(model);
  std::map<std::string, std::pair<int, uint64_t>> summary;
  for (auto& t : desc.tensors) {
    auto it = want.find(qisa::writer::classify(t.name, t.shape.size()));
    if (it != want.end() && it->second != t.dtype) {
      t = qisa::writer::make_tensor(t.name, t.shape, qisa::writer::tensor_values(t), it->second);
    }
    auto& s = summary[qisa::dtype_name(static_cast<qisa_dtype>(t.dtype))];
    s.first++;
    s.second += t.bytes.size();
  }
  try {
    qisa::writer::write_file(desc, out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qisa-quantize: %s\n", e.what());
    return 1;
  }
  st = qisa_model_load_file(out.c_str(), nullptr, &model, err, sizeof err);
  if (st != QISA_OK) {
    std::fprintf(stderr, "qisa-quantize: the result fails libqisa's checks: %s\n", err);
    return 1;
  }
  qisa_model_free(model);
  const auto before = std::filesystem::file_size(in), after = std::filesystem::file_size(out);
  std::printf("%s: %ju -> %ju bytes (%.2fx smaller);", out.c_str(), static_cast<uintmax_t>(before),
              static_cast<uintmax_t>(after), static_cast<double>(before) / static_cast<double>(after));
  for (const auto& [name, s] : summary)
    std::printf(" %s: %d tensors, %ju bytes;", name.c_str(), s.first, static_cast<uintmax_t>(s.second));
  std::printf("\n");
  return 0;
}
