#include "attention_kind.h"

#include <iterator>

namespace qisa {

namespace {

constexpr bool in_enum_order() {
  for (size_t i = 0; i < std::size(kAttentionKinds); ++i)
    if (static_cast<size_t>(kAttentionKinds[i].kind) != i) return false;
  return true;
}
static_assert(in_enum_order(), "kAttentionKinds is indexed by qisa_attention_kind");

}  // namespace

std::span<const AttentionKind> attention_kinds() {
  return kAttentionKinds;
}

const AttentionKind* find_attention_kind(int kind) {
  if (kind < 0 || static_cast<size_t>(kind) >= std::size(kAttentionKinds)) return nullptr;
  return &kAttentionKinds[kind];
}

const AttentionKind* find_attention_kind(std::string_view name) {
  for (const AttentionKind& k : kAttentionKinds)
    if (name == k.name) return &k;
  return nullptr;
}

const AttentionKind& attention_kind(qisa_attention_kind kind) {
  const AttentionKind* k = find_attention_kind(static_cast<int>(kind));
  return k ? *k : kAttentionKinds[0];
}

std::string attention_kind_names(std::string_view separator) {
  std::string s;
  for (const AttentionKind& k : kAttentionKinds) {
    if (!s.empty()) s += separator;
    s += k.name;
  }
  return s;
}

}  // namespace qisa
