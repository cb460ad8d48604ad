// qisa-make-synthetic: writes a valid model with random weights.
//   qisa-make-synthetic [--kind csa|qisa-v1|qisa-v2|qisa-v3] [--n-embd N] [--n-layer N]
//                       [--n-head N] [--ctx N] [--vocab N] [--observables]
//                       [--weights f32|f16|bf16|q8] [--unitaries f32|f16|bf16|q8]
//                       [--seed N] OUT.qisa
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "synthetic_model.h"

static bool parse_dtype(const char* s, qisa_dtype* out) {
  const struct {
    const char* name;
    qisa_dtype t;
  } table[] = {{"f32", QISA_DTYPE_F32}, {"f16", QISA_DTYPE_F16}, {"bf16", QISA_DTYPE_BF16}, {"q8", QISA_DTYPE_Q8_0}};
  for (const auto& e : table) {
    if (!std::strcmp(s, e.name)) {
      *out = e.t;
      return true;
    }
  }
  return false;
}

int main(int argc, char** argv) {
  qisa::writer::SyntheticSpec spec;
  const char* out = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "qisa-make-synthetic: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&]() { return static_cast<uint32_t>(std::strtoul(value(), nullptr, 10)); };
    if (a == "--kind") {
      const std::string k = value();
      if (k == "csa")
        spec.kind = QISA_ATTENTION_CSA;
      else if (k == "qisa-v1")
        spec.kind = QISA_ATTENTION_QISA_V1;
      else if (k == "qisa-v2")
        spec.kind = QISA_ATTENTION_QISA_V2;
      else if (k == "qisa-v3")
        spec.kind = QISA_ATTENTION_QISA_V3;
      else {
        std::fprintf(stderr, "qisa-make-synthetic: unknown kind '%s'\n", k.c_str());
        return 2;
      }
    } else if (a == "--n-embd") {
      spec.n_embd = number();
    } else if (a == "--n-layer") {
      spec.n_layer = number();
    } else if (a == "--n-head") {
      spec.n_head = number();
    } else if (a == "--ctx") {
      spec.n_ctx = number();
    } else if (a == "--vocab") {
      spec.vocab_size = number();
    } else if (a == "--seed") {
      spec.seed = number();
    } else if (a == "--transposed") {
      spec.reference_transposed = true;
    } else if (a == "--observables") {
      spec.observables = true;
    } else if (a == "--weights" || a == "--unitaries") {
      const char* v = value();
      if (!parse_dtype(v, a == "--weights" ? &spec.weight_dtype : &spec.unitary_dtype)) {
        std::fprintf(stderr, "qisa-make-synthetic: unknown dtype '%s'\n", v);
        return 2;
      }
    } else if (a[0] == '-') {
      std::fprintf(stderr, "qisa-make-synthetic: unknown option '%s'\n", a.c_str());
      return 2;
    } else {
      out = argv[i];
    }
  }
  if (!out) {
    std::fprintf(stderr, "usage: qisa-make-synthetic [options] OUT.qisa\n");
    return 2;
  }
  try {
    qisa::writer::write_file(qisa::writer::make_synthetic_model(spec), out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qisa-make-synthetic: %s\n", e.what());
    return 1;
  }
  return 0;
}
