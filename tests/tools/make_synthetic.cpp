// qisa-make-synthetic: writes a valid model with random weights.
//   qisa-make-synthetic [--kind csa|qisa-v1|qisa-v2|qisa-v3|qsat] [--n-embd N] [--n-layer N]
//                       [--n-head N] [--ctx N] [--vocab N] [--observables]
//                       [--weights f32|f16|bf16|q8] [--unitaries f32|f16|bf16|q8]
//                       [--seed N] OUT.qisa
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "attention_kind.h"
#include "dtype.h"
#include "synthetic_model.h"

static bool parse_dtype(const char* s, qisa_dtype* out) {
  const auto t = qisa::dtype_from_name(s);
  if (t) *out = *t;
  return t.has_value();
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
      const qisa::AttentionKind* kind = qisa::find_attention_kind(k);
      if (!kind) {
        std::fprintf(stderr, "qisa-make-synthetic: unknown kind '%s' (%s)\n", k.c_str(),
                     qisa::attention_kind_names().c_str());
        return 2;
      }
      spec.kind = kind->kind;
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
