#include "context_budget.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "backends/cpu/quantum_layer.h"
#include "backends/quantum_stack.h"
#include "dtype.h"
#include "error.h"

namespace qisa {

namespace {

// Fixed costs the formula does not itemise: the handles, the CPU backend's matmul engine and
// stream, small vectors and allocator rounding (measured well under this).
constexpr uint64_t kBaseBytes = uint64_t{1} << 20;
// Per matmul primitive of the CPU backend (descriptor, kernel, argument maps).
constexpr uint64_t kPerPrimitiveBytes = uint64_t{8} << 10;
// Per heap block: allocator header and the rounding of small vectors.
constexpr uint64_t kPerBlockBytes = 64;

// Saturating arithmetic: a hostile configuration must give a huge estimate,
// never a wrapped small one.
uint64_t mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}
uint64_t mul(std::initializer_list<uint64_t> xs) {
  uint64_t r = 1;
  for (uint64_t x : xs) r = mul(r, x);
  return r;
}
uint64_t add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

struct Tally {
  uint64_t bytes = 0;
  void floats(uint64_t n) { bytes = add(bytes, add(mul(n, 4), kPerBlockBytes)); }
  void raw(uint64_t n) { bytes = add(bytes, add(n, kPerBlockBytes)); }
  void primitives(uint64_t n) { bytes = add(bytes, mul(n, kPerPrimitiveBytes)); }
};

// The quantum projections of a layer, as QuantumLayer groups them.
std::vector<const QuantumProjection*> layer_projections(const Layer& L) {
  std::vector<const QuantumProjection*> ps;
  for (const Head& h : L.heads) {
    for (Role r : kAllRoles)
      if (h.qp(r)) ps.push_back(&*h.qp(r));
  }
  return ps;
}

bool is_matrix(const TensorView* t) {
  return t != nullptr && t->shape.size() > 1;
}

uint64_t dense_observable_work(const Model& m) {
  uint64_t work = 0;
  const uint64_t h = m.config.head_size();
  for (const Layer& L : m.layers) {
    for (const QuantumProjection* q : layer_projections(L)) {
      if (q->observables_re) continue;
      const uint64_t D = uint64_t{1} << q->n_qubits;
      work = add(work, mul({h, D, D, D}));
    }
  }
  return work;
}

}  // namespace

int64_t context_max_rows(const ModelConfig& c, const qisa_context_params& p) {
  return std::max<int64_t>(p.max_batch, std::min<int64_t>(c.n_ctx, kMaxWindowRows));
}

uint64_t context_memory_bytes(const Model& m, const qisa_context_params& p, int32_t threads) {
  const ModelConfig& c = m.config;
  const uint64_t R = static_cast<uint64_t>(context_max_rows(c, p)), S = static_cast<uint64_t>(p.max_sequences),
                 B = static_cast<uint64_t>(p.max_batch), N = c.n_ctx, d = c.n_embd, V = c.vocab_size, L = c.n_layer,
                 H = c.n_head, hs = c.head_size(), T = static_cast<uint64_t>(std::max(threads, 1));
  const bool reference = p.engine == QISA_ENGINE_REFERENCE;
  const bool observables = p.value_path == QISA_VALUE_PATH_OBSERVABLES;
  Tally t;
  t.raw(kBaseBytes);
  // The context: logits, argmax, flags, pending rows, per-sequence windows.
  t.floats(mul(B, V));
  t.floats(B);
  t.raw(B + 3 * S);
  t.raw(mul(R, 16));
  t.raw(mul(S, add(mul(N, 4), 24 + kPerBlockBytes)));
  // The KV cache: keys, values, |k|^2 per head, tokens per sequence.
  t.floats(mul({2, L, S, N, d}));
  t.floats(mul({L, S, N, H}));
  t.raw(mul(S, add(mul(N, 4), 24 + kPerBlockBytes)));
  // Dequantized copies: every non-f32 tensor for the reference engine,
  // vectors only for the fast one.
  uint64_t tensors = 0, widened = 0, rounded = 0, work = 0;
  for (const TensorView& tv : m.tensors) {
    ++tensors;
    if (tv.dtype == QISA_DTYPE_F32) continue;
    if (reference || tv.shape.size() == 1) t.floats(tv.elements);
    if (!reference && tv.shape.size() > 1) widened = std::max(widened, tv.elements);
    // Rows rounded for a type whose products round them: up to 256 at a
    // time on the fast engine (linear_op.cpp), all R on the reference.
    // The fast engine may instead pack them for a batch kernel (at most
    // 2.2 bytes per value, within this), with per thread a work area of
    // at most 20 bytes per input (the VNNI kernel's 16 outputs as int8 and
    // their scales; the AVX2 kernel reads the weight as stored).
    if (tv.shape.size() > 1 && dtype_traits(tv.dtype).rounds_activations) {
      rounded = std::max(rounded, mul(reference ? R : 256 + 80, tv.cols() + 32));
      if (!reference) work = std::max(work, mul(T, mul(20, tv.cols() + 32)));
    }
  }
  t.floats(rounded);
  t.raw(work);
  t.raw(mul(tensors, 96));  // the map of copies
  // Engine scratch: x, u, q, k, v, att, tmp, logit rows; the MLP's hidden
  // rows; attention scores and kept positions per thread; slots.
  t.floats(mul(8, mul(R, d)));
  t.floats(mul(R, c.n_ff));
  t.floats(mul(2, mul(N, T)));
  t.floats(R);
  // Linear operations: one primitive each (fast engine).
  uint64_t linears = 1;  // the LM head
  for (const Layer& layer : m.layers) {
    linears += 4;  // proj, up (plain and with the activation fused), down
    for (const Head& h : layer.heads)
      for (Role r : kAllRoles) linears += is_matrix(h.lin(r).weight);
    t.raw(mul(H, 512));  // the layer's plans
  }
  // With more than one thread every product also has a one-thread twin (linear_op.h).
  const uint64_t twins = T > 1 ? 2 : 1;
  if (!reference) t.primitives(mul(twins, linears));
  // Quantum layers.
  for (const Layer& layer : m.layers) {
    const auto ps = layer_projections(layer);
    if (ps.empty()) continue;
    const uint64_t P = ps.size(), D = uint64_t{1} << ps[0]->n_qubits;
    uint64_t width = 0;
    if (observables) {
      width = mul({P, hs, D});
      t.floats(mul(width, D));  // dense Re O' of every projection
      // Building one projection's O' from U: U as complex doubles, then
      // Re and Im of h observables, one row of each plane, two columns.
      t.raw(add(mul({D, D, 16}), mul({2, hs, D, D, 4})));
      t.floats(4 * D);
      t.raw(mul(D, 64));
    } else {
      width = mul(2, mul(P, D));
      const uint64_t cols = reference ? D : std::min(d, D);
      qisa_dtype dt = ps[0]->unitary_re->dtype;
      bool same = !reference;
      bool angles = false;  // some U built from its angles, column by column into f32 planes
      for (const auto* q : ps) {
        same = same && q->unitary_re->dtype == dt && q->unitary_im->dtype == dt;
        angles = angles || unitary_from_angles(*q);
      }
      if (!same || angles) dt = QISA_DTYPE_F32;
      // The stacked U and, while it is built from angles, one U's planes;
      // neither where the fast engine's gates take every call. (Its small
      // states' columns, small_cols, fit the base allowance.)
      if (reference || QuantumLayer::keeps_dense_unitary(ps, p.value_path)) {
        if (angles) t.raw(add(mul(D, 16), mul({2, D, cols, 4})));
        t.raw(mul(width, *row_bytes(dt, cols)));
        if (dt != QISA_DTYPE_F32) widened = std::max(widened, mul(width, cols));
      }
      // The gates' scratch: two state rows per thread.
      if (!reference && QuantumLayer::has_gates(ps, p.value_path)) t.floats(mul({T, 2, D}));
      // Pauli groups: coefficients [strings, D] and per-string data; one
      // primitive per group (at most one group per string).
      for (size_t i = 0; i < ps.size(); ++i) {
        t.floats(mul(hs, D));
        t.raw(mul(hs, 256));
      }
      if (!reference) t.primitives(mul(twins, mul(P, hs)));
    }
    if (!reference) t.primitives(twins);
    t.floats(mul(R, D));      // psi
    t.floats(mul(R, width));  // U psi or O' psi
    t.floats(mul(R, D));      // products
    t.floats(mul(R, hs));     // sums
  }
  t.floats(widened);  // the shared expansion scratch
  return t.bytes;
}

uint64_t context_memory_limit(const qisa_context_params& p) {
  uint64_t limit = p.max_memory_bytes;
  if (limit == 0) {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    limit = pages > 0 && page > 0 ? mul(static_cast<uint64_t>(pages), static_cast<uint64_t>(page)) : UINT64_MAX;
  }
  rlimit as{};
  if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
    limit = std::min<uint64_t>(limit, static_cast<uint64_t>(as.rlim_cur));
  return limit;
}

void check_context_budget(const Model& m, const qisa_context_params& p, int32_t threads) {
  if (p.value_path == QISA_VALUE_PATH_OBSERVABLES) {
    const uint64_t work = dense_observable_work(m);
    if (work > kMaxDenseObservableWork) {
      fail(QISA_ERR_UNSUPPORTED,
           "the observables value path would build U^dag P U densely for this model (%llu complex multiply-adds, "
           "limit %llu): use the unitary path, or store the observables in the file (qisa-train --observables)",
           static_cast<unsigned long long>(work), static_cast<unsigned long long>(kMaxDenseObservableWork));
    }
  }
  const uint64_t need = context_memory_bytes(m, p, threads), limit = context_memory_limit(p);
  if (need > limit) {
    fail(QISA_ERR_OUT_OF_MEMORY,
         "the context needs about %llu MiB (KV cache for %d sequences of %u tokens, scratch), more than the limit of "
         "%llu MiB (%s); lower max_sequences or max_batch",
         static_cast<unsigned long long>(need >> 20), p.max_sequences, m.config.n_ctx,
         static_cast<unsigned long long>(limit >> 20),
         p.max_memory_bytes ? "params.max_memory_bytes" : "physical memory or RLIMIT_AS");
  }
}

}  // namespace qisa
