#include "attention_kind.h"

#include <iterator>

namespace qisa {

namespace {

constexpr Source L = Source::Linear, Q = Source::Quantum;

// One row per qisa_attention_kind, in enum order (checked below).
constexpr AttentionKind kKinds[] = {
    {QISA_ATTENTION_CSA, "csa", "CSA", {L, L, L}, Score::Dot, QkStrings::Head},
    {QISA_ATTENTION_QISA_V1, "qisa-v1", "QISA v1", {Q, Q, Q}, Score::Gaussian, QkStrings::FirstQubitZ},
    {QISA_ATTENTION_QISA_V2, "qisa-v2", "QISA v2", {Q, Q, Q}, Score::Gaussian, QkStrings::Head},
    {QISA_ATTENTION_QISA_V3, "qisa-v3", "QISA v3", {L, L, Q}, Score::Gaussian, QkStrings::Head},
};

constexpr bool in_enum_order() {
  for (size_t i = 0; i < std::size(kKinds); ++i)
    if (static_cast<size_t>(kKinds[i].kind) != i) return false;
  return true;
}
static_assert(in_enum_order(), "kKinds is indexed by qisa_attention_kind");
static_assert(std::size(kKinds) == kAttentionKindCount, "kAttentionKindCount counts the rows");

}  // namespace

std::span<const AttentionKind> attention_kinds() {
  return kKinds;
}

const AttentionKind* find_attention_kind(int kind) {
  if (kind < 0 || static_cast<size_t>(kind) >= std::size(kKinds)) return nullptr;
  return &kKinds[kind];
}

const AttentionKind* find_attention_kind(std::string_view name) {
  for (const AttentionKind& k : kKinds)
    if (name == k.name) return &k;
  return nullptr;
}

const AttentionKind& attention_kind(qisa_attention_kind kind) {
  const AttentionKind* k = find_attention_kind(static_cast<int>(kind));
  return k ? *k : kKinds[0];
}

std::string attention_kind_names() {
  std::string s;
  for (const AttentionKind& k : kKinds) s += (s.empty() ? "" : ", ") + std::string(k.name);
  return s;
}

}  // namespace qisa
