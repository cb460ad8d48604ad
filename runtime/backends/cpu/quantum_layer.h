// All quantum-inspired projections of one layer, evaluated together: the
// rows' amplitude encodings psi go through one GEMM against every
// projection's stacked [Re U; Im U] (unitary path) or dense Re O' (the
// observables path), or through each projection's circuit gate by gate
// (gates path), then each projection's Pauli values are formed.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/quantum_stack.h"
#include "circuit_gates.h"
#include "linear_op.h"
#include "model.h"
#include "pauli_plan.h"

namespace qisa {

class QuantumLayer {
 public:
  // All projections share the input width d and produce h values each.
  // The unitary path multiplies by U as the engines use it (the stored
  // one, in its dtype when the layer's projections share one; the angles'
  // in f32 where unitary_from_angles); O' is expanded to f32 here. The
  // gates path needs every projection's angles (RX-RY / CNOT ring / RY
  // circuits) and a U that is theirs: f32 as stored (to f32 rounding) or
  // unitary_from_angles; otherwise it is the unitary path. Auto takes the
  // gates where they were measured faster (quantum_layer.cpp).
  QuantumLayer(std::vector<const QuantumProjection*> projections, int64_t d, int64_t h, qisa_value_path path,
               ThreadPolicy threads, DnnlContext* dnnl, int64_t max_rows, LinearScratch* scratch);

  // The rules the constructor follows, for the memory estimate too
  // (context_budget.cpp), on the unitary and gates paths: whether the
  // layer applies the circuits gate by gate for some calls, and whether it
  // keeps the dense stacked U (not where the gates take every call).
  static bool has_gates(const std::vector<const QuantumProjection*>& projections, qisa_value_path path);
  static bool keeps_dense_unitary(const std::vector<const QuantumProjection*>& projections, qisa_value_path path);

  size_t size() const { return projections_.size(); }
  // u [R, d] -> projection p's values of row r at dest[p] + r * stride.
  void run(const float* u, int64_t R, float* const* dest, int64_t stride);
  // Whether a call of R rows applies the circuits gate by gate.
  bool uses_gates(int64_t R) const;
  // Whether it does so with the sums, kPauliRows rows at a time in vector
  // lanes (the kernel set's circuit_pauli_rows; states up to kPauliRowStates).
  bool fused_rows(int64_t R) const;
  // Whether it runs small states' dense U row by row (small_value_rows),
  // or with the rows in vector lanes (unitary_pauli_rows).
  bool small_rows(int64_t R) const;
  bool unitary_rows(int64_t R) const;

 private:
  std::vector<const QuantumProjection*> projections_;
  int64_t d_, h_, D_;
  qisa_value_path path_;
  ThreadPolicy threads_;
  bool normalized_;
  StackedMatrix stacked_;  // the GEMM's weight; empty where the gates take every call
  LinearOp gemm_;
  bool observables() const { return path_ == QISA_VALUE_PATH_OBSERVABLES; }
  // Values per row of out_: 2 D per projection (phi), or h D (O' psi).
  int64_t width() const { return static_cast<int64_t>(projections_.size()) * (observables() ? h_ : 2) * D_; }
  // Values per row of psi_: d (the dense U's columns), or D (observables).
  int64_t psi_ld() const { return observables() ? D_ : d_; }
  // Few rows or wide states: per row and projection one pauli_sums call
  // on the projection's plan (products and sums in L1); where the kernel
  // set has pauli_rows, blocks of kPauliRows rows per call.
  std::vector<PauliPlanData> plans_;
  // Their views, made once plans_ is complete (a view is a few hundred
  // bytes to fill: made per call, it cost a one-row call at n_embd 16 a
  // tenth of its time).
  std::vector<PauliPlan> views_;
  // Many rows of small states: the strings grouped by (X mask, Re or Im
  // part); a group's signed sums over j are one product [rows, D] x
  // coef^T [D, strings] of the rows' products conj(phi[j ^ x]) phi[j].
  struct PauliGroup {
    uint64_t x_mask = 0;
    bool imaginary = false;        // Re(i^ny S) needs Im S when ny is odd
    std::vector<int32_t> strings;  // output column of each row of coef
    std::vector<float> coef;       // [strings, D]: phase sign * (-1)^popcount(j & z)
    LinearOp gemm;
  };
  static std::vector<PauliGroup> make_groups(const std::vector<PauliString>& paulis, int64_t D);
  std::vector<std::vector<PauliGroup>> groups_;  // per projection (unitary and gates paths)
  std::vector<CircuitGates> gates_;              // per projection, where the gates path is possible
  std::vector<float> psi_, out_, prod_, sums_, gate_scratch_;
  std::vector<float> row_scratch_;  // per thread: pauli_rows' scratch (where the kernel set has it)
  // Small states (D <= kPauliLaneStates) where the kernel set has
  // small_value_rows: each projection's stored U as f32 columns [d][32]
  // for few-row calls and unitary_pauli_rows; empty otherwise.
  std::vector<float> small_cols_;
  int64_t row_scratch_size_ = 0;
};

}  // namespace qisa
