// Tensor names of the .qisa format (docs/format.md, "Tensors"). The writer
// and the loader both use these, so the convention lives in one place.
#pragma once

#include <string>

namespace qisa::names {

inline std::string layer(int l) {
  return "blk." + std::to_string(l) + ".";
}
inline std::string head(int l, int h) {
  return layer(l) + "head." + std::to_string(h) + ".";
}
// A projection of a head: role is 'q', 'k' or 'v'.
inline std::string proj(int l, int h, char role) {
  return head(l, h) + role;
}

inline constexpr const char* kTokEmb = "tok_emb";
inline constexpr const char* kPosEmb = "pos_emb";
inline constexpr const char* kLnFWeight = "ln_f.weight";
inline constexpr const char* kLnFBias = "ln_f.bias";
inline constexpr const char* kLmHeadWeight = "lm_head.weight";
inline constexpr const char* kLmHeadBias = "lm_head.bias";

// Suffixes after layer(l): ln1/ln2 weight+bias, attention output projection,
// and the MLP.
inline constexpr const char* kLn1Weight = "ln1.weight";
inline constexpr const char* kLn1Bias = "ln1.bias";
inline constexpr const char* kLn2Weight = "ln2.weight";
inline constexpr const char* kLn2Bias = "ln2.bias";
inline constexpr const char* kProjWeight = "attn.proj.weight";
inline constexpr const char* kProjBias = "attn.proj.bias";
inline constexpr const char* kUpWeight = "ffn.up.weight";
inline constexpr const char* kUpBias = "ffn.up.bias";
inline constexpr const char* kDownWeight = "ffn.down.weight";
inline constexpr const char* kDownBias = "ffn.down.bias";

// Suffixes after proj(l, h, role).
inline constexpr const char* kWeight = ".weight";
inline constexpr const char* kBias = ".bias";
inline constexpr const char* kUnitaryRe = ".unitary_re";
inline constexpr const char* kUnitaryIm = ".unitary_im";
inline constexpr const char* kObservablesRe = ".observables_re";
inline constexpr const char* kObservablesIm = ".observables_im";

}  // namespace qisa::names
