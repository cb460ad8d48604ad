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

// Products of one pair (j, p) accumulated into an output row, o += c * Re
// or o += c * Im of conj(phi_p) phi_j: functions of their own so that the
// compiler sees the restrict-qualified rows and vectorizes the loops.
template <class T>
void add_real_product(const T* __restrict fj, const T* __restrict fp, const T* __restrict gj, const T* __restrict gp,
                      T c, int64_t m, T* __restrict o) {
  for (int64_t n = 0; n < m; ++n) o[n] += c * (fp[n] * fj[n] + gp[n] * gj[n]);
}
template <class T>
void add_imag_product(const T* __restrict fj, const T* __restrict fp, const T* __restrict gj, const T* __restrict gp,
                      T c, int64_t m, T* __restrict o) {
  for (int64_t n = 0; n < m; ++n) o[n] += c * (fp[n] * gj[n] - gp[n] * fj[n]);
}

// The gradient through Re = fp fj + gp gj of one pair (j, p), given
// c * w = d/d Re; and through Im = fp gj - gp fj given c * v = d/d Im.
template <class T>
void real_pair_gradient(const T* __restrict fj, const T* __restrict fp, const T* __restrict gj, const T* __restrict gp,
                        const T* __restrict w, T c, int64_t m, T* __restrict dfj, T* __restrict dfp, T* __restrict dgj,
                        T* __restrict dgp) {
  for (int64_t n = 0; n < m; ++n) {
    const T cw = c * w[n];
    dfj[n] += cw * fp[n];
    dfp[n] += cw * fj[n];
    dgj[n] += cw * gp[n];
    dgp[n] += cw * gj[n];
  }
}
template <class T>
void imag_pair_gradient(const T* __restrict fj, const T* __restrict fp, const T* __restrict gj, const T* __restrict gp,
                        const T* __restrict v, T c, int64_t m, T* __restrict dfj, T* __restrict dfp, T* __restrict dgj,
                        T* __restrict dgp) {
  for (int64_t n = 0; n < m; ++n) {
    const T cv = c * v[n];
    dfj[n] -= cv * gp[n];
    dfp[n] += cv * gj[n];
    dgj[n] += cv * fp[n];
    dgp[n] -= cv * fj[n];
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
    if (g == groups_.end()) g = groups_.insert(groups_.end(), Group{p.x_mask, {}, 0, 0});
    g->terms.push_back(t);
    ++(t.imag ? g->n_imag : g->n_real);
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
      const T *fj = F + j * ld, *fp = F + p * ld;
      const T *gj = G + j * ld, *gp = G + p * ld;
      for (bool imag : {false, true}) {
        const int count = imag ? g.n_imag : g.n_real;
        if (count == 0) continue;
        if (count == 1) {  // the usual case: the product straight into the one output
          for (const Term& t : g.terms) {
            if (t.imag != imag) continue;
            const T c = static_cast<T>(t.coef * sign(static_cast<uint64_t>(j), t.z));
            (imag ? add_imag_product<T> : add_real_product<T>)(fj, fp, gj, gp, c, m, out + t.k * ld);
          }
          continue;
        }
        std::fill(prod, prod + m, T(0));  // the product once, then into each output
        (imag ? add_imag_product<T> : add_real_product<T>)(fj, fp, gj, gp, T(1), m, prod);
        for (const Term& t : g.terms) {
          if (t.imag != imag) continue;
          const T c = static_cast<T>(t.coef * sign(static_cast<uint64_t>(j), t.z));
          T* __restrict o = out + t.k * ld;
          const T* __restrict pr = prod;
          for (int64_t n = 0; n < m; ++n) o[n] += c * pr[n];
        }
      }
    }
  }
}

template <class T>
void PauliMeasurePlan::backward(const T* F, const T* G, const T* dout, int64_t N, T* dF, T* dG) const {
  std::vector<T> dq(diagonal_.empty() ? 0 : static_cast<size_t>(D_ * kBlockCols)), w(kBlockCols);
  for (int64_t n0 = 0; n0 < N; n0 += kBlockCols) {
    backward_block(F + n0, G + n0, dout + n0, std::min(kBlockCols, N - n0), N, dF + n0, dG + n0, dq.data(), w.data());
  }
}

template <class T>
void PauliMeasurePlan::backward_block(const T* F, const T* G, const T* dout, int64_t m, int64_t ld, T* dF, T* dG, T* dq,
                                      T* w) const {
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
      for (bool imag : {false, true}) {
        const int count = imag ? gr.n_imag : gr.n_real;
        if (count == 0) continue;
        // d/d Re(conj(phi_p) phi_j) (or Im) = c * d: one string's dout row
        // read in place, or several summed into w.
        const T* d = nullptr;
        T c = 1;
        if (count == 1) {
          for (const Term& t : gr.terms) {
            if (t.imag != imag) continue;
            d = dout + t.k * ld;
            c = static_cast<T>(t.coef * sign(static_cast<uint64_t>(j), t.z));
          }
        } else {
          std::fill(w, w + m, T(0));
          for (const Term& t : gr.terms) {
            if (t.imag != imag) continue;
            const T ct = static_cast<T>(t.coef * sign(static_cast<uint64_t>(j), t.z));
            const T* __restrict dk = dout + t.k * ld;
            T* __restrict acc = w;
            for (int64_t n = 0; n < m; ++n) acc[n] += ct * dk[n];
          }
          d = w;
        }
        (imag ? imag_pair_gradient<T> : real_pair_gradient<T>)(F + j * ld, F + p * ld, G + j * ld, G + p * ld, d, c, m,
                                                               dF + j * ld, dF + p * ld, dG + j * ld, dG + p * ld);
      }
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
