#include "pauli_measure.h"

#include <algorithm>
#include <bit>
#include <vector>

namespace qisa::train {

namespace {

float sign(uint64_t j, uint64_t z) {
  return (std::popcount(j & z) & 1) ? -1.0f : 1.0f;
}

// Columns per block: the block's rows of F, G, dF, dG (and the scratch)
// stay in the core's L2 cache while every X mask passes over them.
constexpr int64_t kBlockCols = 128;

// In place over the rows of q [D, N] (rows ld apart): row z <- sum_j s_z(j) row j.
template <class T>
void walsh_hadamard_rows(T* q, int64_t D, int64_t N, int64_t ld) {
  for (int64_t half = 1; half < D; half *= 2) {
    for (int64_t i = 0; i < D; i += 2 * half) {
      for (int64_t j = i; j < i + half; ++j) {
        T* __restrict a = q + j * ld;
        T* __restrict b = q + (j + half) * ld;
        for (int64_t n = 0; n < N; ++n) {
          const T u = a[n], v = b[n];
          a[n] = u + v;
          b[n] = u - v;
        }
      }
    }
  }
}

// The gradient through Re = fp fj + gp gj and Im = fp gj - gp fj of one
// pair (j, p), given w = d/d Re and v = d/d Im. A function of its own so
// that the compiler sees the restrict-qualified rows (inline, the loop was
// left scalar).
template <class T>
void pair_gradient(const T* __restrict fj, const T* __restrict fp, const T* __restrict gj, const T* __restrict gp,
                   const T* __restrict w, const T* __restrict v, int64_t m, T* __restrict dfj, T* __restrict dfp,
                   T* __restrict dgj, T* __restrict dgp) {
  for (int64_t n = 0; n < m; ++n) {
    dfj[n] += w[n] * fp[n] - v[n] * gp[n];
    dfp[n] += w[n] * fj[n] + v[n] * gj[n];
    dgj[n] += w[n] * gp[n] + v[n] * fp[n];
    dgp[n] += w[n] * gj[n] - v[n] * fj[n];
  }
}

}  // namespace

PauliMeasurePlan::PauliMeasurePlan(int64_t n_qubits, const std::vector<PauliString>& paulis)
    : D_(int64_t{1} << n_qubits), h_(static_cast<int64_t>(paulis.size())) {
  for (int64_t k = 0; k < h_; ++k) {
    const PauliString p = paulis[static_cast<size_t>(k)];
    if (p.x_mask == 0) {
      diagonal_.push_back({k, p.z_mask, 1.0f, false});
      continue;
    }
    // Re(i^ny S) for ny = popcount(x & z) mod 4: Re S, -Im S, -Re S, Im S.
    static constexpr float kPhase[4] = {1, -1, -1, 1};
    const int ny = std::popcount(p.x_mask & p.z_mask) & 3;
    const Term t{k, p.z_mask, 2.0f * kPhase[ny], (ny & 1) != 0};
    auto g = std::find_if(groups_.begin(), groups_.end(), [&](const Group& gr) { return gr.x == p.x_mask; });
    if (g == groups_.end()) g = groups_.insert(groups_.end(), Group{p.x_mask, {}, false, false});
    g->terms.push_back(t);
    (t.imag ? g->any_imag : g->any_real) = true;
  }
}

template <class T>
void PauliMeasurePlan::forward(const T* F, const T* G, int64_t N, T* out) const {
  std::vector<T> q(diagonal_.empty() ? 0 : static_cast<size_t>(D_ * kBlockCols)), prod(kBlockCols);
  for (int64_t n0 = 0; n0 < N; n0 += kBlockCols)
    forward_block(F + n0, G + n0, std::min(kBlockCols, N - n0), N, out + n0, q.data(), prod.data());
}

template <class T>
void PauliMeasurePlan::forward_block(const T* F, const T* G, int64_t m, int64_t ld, T* out, T* q, T* prod) const {
  for (int64_t k = 0; k < h_; ++k) std::fill(out + k * ld, out + k * ld + m, T(0));
  if (!diagonal_.empty()) {  // |phi_j|^2, transformed: every sum_j s_z(j) |phi_j|^2 at once
    for (int64_t j = 0; j < D_; ++j) {
      const T* __restrict f = F + j * ld, * __restrict g = G + j * ld;
      T* __restrict r = q + j * kBlockCols;
      for (int64_t n = 0; n < m; ++n) r[n] = f[n] * f[n] + g[n] * g[n];
    }
    walsh_hadamard_rows(q, D_, m, kBlockCols);
    for (const Term& t : diagonal_) std::copy_n(q + static_cast<int64_t>(t.z) * kBlockCols, m, out + t.k * ld);
  }
  for (const Group& g : groups_) {
    for (int64_t j = 0; j < D_; ++j) {
      const int64_t p = j ^ static_cast<int64_t>(g.x);
      if (p < j) continue;  // each pair once
      const T* __restrict fj = F + j * ld, * __restrict fp = F + p * ld;
      const T* __restrict gj = G + j * ld, * __restrict gp = G + p * ld;
      for (bool imag : {false, true}) {
        if (!(imag ? g.any_imag : g.any_real)) continue;
        T* __restrict pr = prod;
        if (imag) {  // Im conj(phi_p) phi_j
          for (int64_t n = 0; n < m; ++n) pr[n] = fp[n] * gj[n] - gp[n] * fj[n];
        } else {  // Re
          for (int64_t n = 0; n < m; ++n) pr[n] = fp[n] * fj[n] + gp[n] * gj[n];
        }
        for (const Term& t : g.terms) {
          if (t.imag != imag) continue;
          const T c = static_cast<T>(t.coef * sign(static_cast<uint64_t>(j), t.z));
          T* __restrict o = out + t.k * ld;
          for (int64_t n = 0; n < m; ++n) o[n] += c * pr[n];
        }
      }
    }
  }
}

template <class T>
void PauliMeasurePlan::backward(const T* F, const T* G, const T* dout, int64_t N, T* dF, T* dG) const {
  std::vector<T> dq(diagonal_.empty() ? 0 : static_cast<size_t>(D_ * kBlockCols)), w(kBlockCols), v(kBlockCols);
  for (int64_t n0 = 0; n0 < N; n0 += kBlockCols) {
    backward_block(F + n0, G + n0, dout + n0, std::min(kBlockCols, N - n0), N, dF + n0, dG + n0, dq.data(), w.data(),
                   v.data());
  }
}

template <class T>
void PauliMeasurePlan::backward_block(const T* F, const T* G, const T* dout, int64_t m, int64_t ld, T* dF, T* dG, T* dq,
                                      T* w, T* v) const {
  if (!diagonal_.empty()) {  // dq_j = sum_k s_zk(j) dout_k (the transform of dout placed at z_k); d|phi|^2 = 2 phi
    std::fill(dq, dq + D_ * kBlockCols, T(0));
    for (const Term& t : diagonal_) {
      T* __restrict r = dq + static_cast<int64_t>(t.z) * kBlockCols;
      const T* __restrict d = dout + t.k * ld;
      for (int64_t n = 0; n < m; ++n) r[n] += d[n];
    }
    walsh_hadamard_rows(dq, D_, m, kBlockCols);
  }
  for (int64_t j = 0; j < D_; ++j) {
    const T* __restrict f = F + j * ld, * __restrict g = G + j * ld, * __restrict r = dq + j * kBlockCols;
    T* __restrict df = dF + j * ld, * __restrict dg = dG + j * ld;
    if (diagonal_.empty()) {
      std::fill(df, df + m, T(0));
      std::fill(dg, dg + m, T(0));
    } else {
      for (int64_t n = 0; n < m; ++n) {
        df[n] = 2 * r[n] * f[n];
        dg[n] = 2 * r[n] * g[n];
      }
    }
  }
  for (const Group& gr : groups_) {
    for (int64_t j = 0; j < D_; ++j) {
      const int64_t p = j ^ static_cast<int64_t>(gr.x);
      if (p < j) continue;
      // w = d/d Re(conj(phi_p) phi_j), v = d/d Im, summed over the group's strings.
      std::fill(w, w + m, T(0));
      std::fill(v, v + m, T(0));
      for (const Term& t : gr.terms) {
        const T c = static_cast<T>(t.coef * sign(static_cast<uint64_t>(j), t.z));
        const T* __restrict d = dout + t.k * ld;
        T* __restrict acc = t.imag ? v : w;
        for (int64_t n = 0; n < m; ++n) acc[n] += c * d[n];
      }
      pair_gradient(F + j * ld, F + p * ld, G + j * ld, G + p * ld, w, v, m, dF + j * ld, dF + p * ld, dG + j * ld,
                    dG + p * ld);
    }
  }
}

template void PauliMeasurePlan::forward<float>(const float*, const float*, int64_t, float*) const;
template void PauliMeasurePlan::forward<double>(const double*, const double*, int64_t, double*) const;
template void PauliMeasurePlan::backward<float>(const float*, const float*, const float*, int64_t, float*,
                                                float*) const;
template void PauliMeasurePlan::backward<double>(const double*, const double*, const double*, int64_t, double*,
                                                 double*) const;

}  // namespace qisa::train
