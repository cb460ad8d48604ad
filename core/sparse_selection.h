// QSAT's choice of the positions a query attends to (docs/math.md, "Sparse
// attention"), the one rule the trainer, the reference and every backend
// implement: of positions 0..n-1 (the query is at n-1), keep the top_k with
// the highest pre-softmax score, ties to the later position, and the
// `window` most recent positions; all n when n <= top_k or top_k is 0.
#pragma once

#include <cstdint>
#include <cstring>

namespace qisa {

// A head's stored selection; top_k 0 is dense attention (every other kind).
struct Sparsity {
  uint32_t top_k = 0;
  uint32_t window = 0;

  bool sparse() const { return top_k > 0; }
  // The most positions a query can keep.
  uint64_t bound() const { return uint64_t{top_k} + window; }
};

// How one head scores its keys and which it keeps, as the attention
// kernels of every backend take it: the pre-softmax score of key k is
// -|q-k|^2 exponentiated (gaussian: exp(-|q-k|^2)) or scale * q.k.
struct ScoreRule {
  bool gaussian = false;
  float scale = 1.0f;
  Sparsity sparsity;
};

// An unsigned key ordered as the selection score `p` (-|q-k|^2 for the
// Gaussian score, whose exp() is monotone, so the largest key is the
// nearest key; scale * q.k otherwise); NaN ranks lowest, below
// -inf, so a broken score is never preferred; -0 equals +0.
inline uint32_t selection_key(float p) {
  if (p != p) return 0;
  if (p == 0.0f) p = 0.0f;  // -0 ranks as +0
  uint32_t b;
  std::memcpy(&b, &p, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// keep[j] = 1 for the positions a query at n-1 attends to, 0 for the rest,
// from the selection scores pre[0..n): the readable statement of the rule
// (a sort), which the fast selections are tested against.
void select_positions_reference(const float* pre, int64_t n, Sparsity s, uint8_t* keep);

}  // namespace qisa
