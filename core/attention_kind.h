// The attention kinds, one row each: where a head's q, k and v come from
// (a linear map or a quantum-inspired projection), which Pauli strings a
// quantum q/k measures, and how a query scores a key. The loader, the
// writers, the trainer, the tools and every backend read this table, so a
// kind that recombines these parts is one new row (docs/architecture.md).
#pragma once

#include <array>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>

#include "qisa.h"

namespace qisa {

// A head's three projections, in this order everywhere (tensor names use
// role_letter()).
enum class Role : uint8_t { Q = 0, K = 1, V = 2 };
inline constexpr int kRoles = 3;
inline constexpr std::array<Role, kRoles> kAllRoles = {Role::Q, Role::K, Role::V};
inline char role_letter(Role r) {
  return "qkv"[static_cast<int>(r)];
}

enum class Source : uint8_t { Linear, Quantum };

// Score of query q against key k before the softmax over positions 0..pos:
// Dot: scale * q.k (scale stored per head); Gaussian: exp(-|q - k|^2).
enum class Score : uint8_t { Dot, Gaussian };

// Which Pauli strings a quantum q/k projection measures: the head's own
// strings, or Z on the first qubit for every output (QISA v1).
enum class QkStrings : uint8_t { Head, FirstQubitZ };

// Which earlier positions a query attends to: all of them, or (QSAT) its
// top_k nearest keys and its `window` most recent positions, both stored
// per head (sparse_selection.h, docs/math.md).
enum class Select : uint8_t { All, TopK };

struct AttentionKind {
  qisa_attention_kind kind;
  const char* name;   // as the tools and the trainer spell it: "qisa-v3"
  const char* label;  // in messages: "QISA v3"
  std::array<Source, kRoles> source;
  Score score;
  QkStrings qk_strings;
  Select select;

  Source of(Role r) const { return source[static_cast<size_t>(r)]; }
  bool any_quantum() const {
    return source[0] == Source::Quantum || source[1] == Source::Quantum || source[2] == Source::Quantum;
  }
};

// One row per qisa_attention_kind, in enum order (checked in
// attention_kind.cpp): a kind that recombines these parts is one more row.
inline constexpr Source kLin = Source::Linear, kQua = Source::Quantum;
inline constexpr AttentionKind kAttentionKinds[] = {
    {QISA_ATTENTION_CSA, "csa", "CSA", {kLin, kLin, kLin}, Score::Dot, QkStrings::Head, Select::All},
    {QISA_ATTENTION_QISA_V1,
     "qisa-v1",
     "QISA v1",
     {kQua, kQua, kQua},
     Score::Gaussian,
     QkStrings::FirstQubitZ,
     Select::All},
    {QISA_ATTENTION_QISA_V2, "qisa-v2", "QISA v2", {kQua, kQua, kQua}, Score::Gaussian, QkStrings::Head, Select::All},
    {QISA_ATTENTION_QISA_V3, "qisa-v3", "QISA v3", {kLin, kLin, kQua}, Score::Gaussian, QkStrings::Head, Select::All},
    {QISA_ATTENTION_QSAT, "qsat", "QSAT", {kLin, kLin, kQua}, Score::Gaussian, QkStrings::Head, Select::TopK},
};
inline constexpr int kAttentionKindCount = static_cast<int>(std::size(kAttentionKinds));

// Every kind, in enum order.
std::span<const AttentionKind> attention_kinds();
// The row of a kind; nullptr for a value outside the enum (a file's byte).
const AttentionKind* find_attention_kind(int kind);
const AttentionKind* find_attention_kind(std::string_view name);
// The row of a kind known to be valid.
const AttentionKind& attention_kind(qisa_attention_kind kind);
// "csa, qisa-v1, ...": for usage lines and messages.
std::string attention_kind_names(std::string_view separator = ", ");

}  // namespace qisa
