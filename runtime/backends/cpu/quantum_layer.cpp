#include "quantum_layer.h"

#include <omp.h>

#include <algorithm>
#include <bit>

#include "cpu_kernels.h"
#include "dtype.h"
#include "error.h"
#include "fast_ops.h"
#include "row_split.h"

namespace qisa {

std::vector<QuantumLayer::PauliGroup> QuantumLayer::make_groups(const std::vector<PauliString>& paulis, int64_t D) {
  std::vector<PauliGroup> groups;
  for (const PauliXGroup& x : group_by_x(paulis)) {
    PauliGroup g;
    g.x_mask = x.x;
    g.imaginary = x.imaginary;
    g.strings = x.strings;
    for (int32_t k : x.strings) {
      const PauliString& p = paulis[static_cast<size_t>(k)];
      const float phase = pauli_part(p).phase;
      for (int64_t j = 0; j < D; ++j) {
        const bool odd = std::popcount(static_cast<uint64_t>(j) & p.z_mask) & 1;
        g.coef.push_back(odd ? -phase : phase);
      }
    }
    groups.push_back(std::move(g));
  }
  return groups;
}

// The Pauli sums are formed row by row (products and signed sums in L1)
// for few rows or wide states; many rows of small states go through one GEMM
// per X mask instead (measured: n_embd 128: 246 us row by row vs 290 us
// with GEMMs; n_embd 16: 19.8 vs 12.6 us; one v3 value projection, 64 rows
// per call), except where the kernel set sums small states with the strings
// in lanes (pauli_lanes; AVX-512 on a 2-vCPU Xeon VM, family 6 model 207,
// 64 rows: n_embd 16 5.0-5.5 us in lanes vs 10.7-12.9 us with GEMMs, n_embd
// 4 3.1-3.8 vs 3.7-4.7 us; AVX2 on a 2-vCPU AMD EPYC Zen 3 VM: n_embd 16
// 7.8-7.9 vs 11.3-16.9 us, n_embd 4 3.9-4.4 vs 4.1-5.8 us).
constexpr int64_t kPerRowPauliMaxRows = 8;
// From this many rows the kernel set's pauli_rows (rows in vector lanes)
// takes the Pauli sums of states wider than pauli_lanes serves (measured,
// one v3 value projection, n_embd 128: 8 rows 22-26 us in row lanes vs
// 22 us row by row, 64 rows 73 vs 121-167 us; n_embd 256, 64 rows 295-336
// vs 405-455 us).
constexpr int64_t kPauliRowsMinRows = 16;
constexpr int64_t kPerRowPauliMinStates = 64;
// Rows x states x strings from which the per-row sums use several threads.
constexpr int64_t kParallelPauli = int64_t{1} << 20;
// Auto: the circuits gate by gate (~12 n D flops per row and projection)
// instead of the stored dense U (2 D d multiply-adds, 8 D d bytes read)
// from kGatesAlwaysStates states on, and from kGatesMinStates for calls of
// at most kGatesMaxRows rows. Measured with bench_runtime's BM_ValuePath
// (one v3 value projection, 1 thread, AVX2 kernels with the vector circuit
// loops, 2-vCPU AMD EPYC; docs/benchmarks.md), gates / dense: D = 16:
// 1 row 0.134 / 0.143 us, 8 rows 0.97 / 0.93 us; D = 128: 1 row 1.34 /
// 2.35 us, 8 rows 10.5 / 13.5 us, 64 rows 88.9 / 88.6 us; D = 256: 1 row
// 3.2 / 7.9 us, 64 rows 207 / 256 us; D = 1024: 1 row 24 / 109 us, 64 rows
// 1.5 / 2.6 ms. (The dense U stays in L2 there; in a decode step it does
// not, which favours the gates further.)
constexpr int64_t kGatesAlwaysStates = 256;
constexpr int64_t kGatesMinStates = 128;
constexpr int64_t kGatesMaxRows = 8;

// Every circuit with angles: an f32 unitary is the angles' (to f32
// rounding), a coarser one stands for them (unitary_from_angles).
bool QuantumLayer::has_gates(const std::vector<const QuantumProjection*>& projections, qisa_value_path path) {
  return path != QISA_VALUE_PATH_UNITARY && path != QISA_VALUE_PATH_OBSERVABLES &&
         std::all_of(projections.begin(), projections.end(), [](const auto* q) { return circuit_has_angles(*q); });
}

bool QuantumLayer::keeps_dense_unitary(const std::vector<const QuantumProjection*>& projections, qisa_value_path path) {
  const int64_t D = int64_t{1} << projections.at(0)->n_qubits;
  return !has_gates(projections, path) || (path != QISA_VALUE_PATH_GATES && D < kGatesAlwaysStates);
}

QuantumLayer::QuantumLayer(std::vector<const QuantumProjection*> projections, int64_t d, int64_t h,
                           qisa_value_path path, ThreadPolicy threads, DnnlContext* dnnl, int64_t max_rows,
                           LinearScratch* scratch)
    : projections_(std::move(projections)), d_(d), h_(h), path_(path), threads_(threads) {
  D_ = int64_t{1} << projections_.at(0)->n_qubits;
  const int64_t D = D_;
  normalized_ = projections_[0]->encoding == Encoding::Normalized;
  for (const auto* p : projections_) {
    if ((p->encoding == Encoding::Normalized) != normalized_) {
      fail(QISA_ERR_UNSUPPORTED, "a layer mixes normalized and raw amplitude encodings");
    }
  }
  if (observables()) {
    stacked_ = stack_observables(projections_, h);
  } else {
    if (has_gates(projections_, path_)) {
      for (const auto* q : projections_) gates_.emplace_back(*q);
      gate_scratch_.resize(static_cast<size_t>(threads_.count * 2 * D));
    }
    // U as stored (or the angles', unitary_from_angles), cut to the first
    // d columns (psi is zero past them); not made where the gates take
    // every call (a copy as large as the stored U).
    if (keeps_dense_unitary(projections_, path_)) stacked_ = stack_unitaries(projections_, d_, true);
    for (const auto* q : projections_) {
      plans_.emplace_back(q->paulis, D);
      if (cpu_kernels().pauli_rows && D <= kPauliRowStates)
        row_scratch_size_ = std::max(row_scratch_size_, pauli_rows_scratch(plans_.back().view()));
      groups_.push_back(make_groups(q->paulis, D));
      for (auto& g : groups_.back())
        g.gemm.init(MatrixRef::of(g.coef.data(), D), nullptr, D, static_cast<int64_t>(g.strings.size()), threads_, dnnl,
                    scratch);
    }
  }
  for (const auto& plan : plans_) views_.push_back(plan.view());
  views_.resize(projections_.size());  // observables: empty plans
  if (!observables() && D <= kPauliLaneStates && cpu_kernels().small_value_rows && views_.at(0).lane_count > 0) {
    // U's values as the dense path multiplies them (unitary_planes).
    small_cols_.assign(projections_.size() * static_cast<size_t>(d_ * 2 * kPauliLaneStates), 0.0f);
    std::vector<float> planes[2];
    for (size_t p = 0; p < projections_.size(); ++p) {
      float* cols = small_cols_.data() + p * static_cast<size_t>(d_ * 2 * kPauliLaneStates);
      unitary_planes(*projections_[p], d_, planes[0], planes[1]);
      for (int part = 0; part < 2; ++part) {
        for (int64_t j = 0; j < D; ++j) {
          for (int64_t c = 0; c < d_; ++c)
            cols[c * 2 * kPauliLaneStates + part * kPauliLaneStates + j] =
                planes[part][static_cast<size_t>(j * d_ + c)];
        }
      }
    }
  }
  // Unitaries (and observables) multiply the f32 amplitudes whatever their type (docs/format.md).
  if (stacked_.rows > 0)
    gemm_.init(MatrixRef{stacked_.dtype, stacked_.bytes.data(), stacked_.row_bytes}, nullptr, stacked_.cols,
               stacked_.rows, threads_, dnnl, scratch, false);
  row_scratch_.resize(static_cast<size_t>(threads_.count * row_scratch_size_));
  psi_.resize(static_cast<size_t>(max_rows * D));
  out_.resize(static_cast<size_t>(max_rows * width()));
  prod_.resize(static_cast<size_t>(max_rows * D));
  sums_.resize(static_cast<size_t>(max_rows * h));
}

bool QuantumLayer::fused_rows(int64_t R) const {
  return !gates_.empty() && cpu_kernels().circuit_pauli_rows && row_scratch_size_ > 0 && R >= kPauliRowsMinRows &&
         !small_rows(R) && !unitary_rows(R);
}

// Row by row (small_value_rows, where the gates are not asked for): below
// the rows that pauli_rows takes, and for any number of rows from the
// states the kernel set measured (small_value_rows_from_states).
bool QuantumLayer::small_rows(int64_t R) const {
  const bool gates_asked = path_ == QISA_VALUE_PATH_GATES && !gates_.empty();
  const int64_t from = cpu_kernels().small_value_rows_from_states;
  return !small_cols_.empty() && !gates_asked && (R < kPauliRowsMinRows || (from > 0 && D_ >= from));
}

// Otherwise, from the rows that pauli_rows takes, small states' dense U
// with the rows in lanes (unitary_pauli_rows), where the gates are not
// asked for: at these sizes U costs fewer flops than the gates.
bool QuantumLayer::unitary_rows(int64_t R) const {
  return !small_cols_.empty() && path_ != QISA_VALUE_PATH_GATES && cpu_kernels().unitary_pauli_rows &&
         row_scratch_size_ > 0 && R >= kPauliRowsMinRows && !small_rows(R);
}

bool QuantumLayer::uses_gates(int64_t R) const {
  if (gates_.empty() || small_rows(R) || unitary_rows(R)) return false;
  return fused_rows(R) || path_ == QISA_VALUE_PATH_GATES || D_ >= kGatesAlwaysStates ||
         (D_ >= kGatesMinStates && R <= kGatesMaxRows);
}

void QuantumLayer::run(const float* u, int64_t R, float* const* dest, int64_t stride) {
  const int64_t D = D_, width = this->width(), psi_ld = this->psi_ld();
  const auto cols = static_cast<size_t>(d_ * 2 * kPauliLaneStates);  // of small_cols_ per projection
  const CpuKernels& kern = cpu_kernels();
  // f(r0, n, scratch) for the blocks of kPauliRows rows, split over the
  // threads like the per-row sums (each thread its own row scratch).
  auto row_blocks = [&](auto f) {
    split_items((R + kPauliRows - 1) / kPauliRows, R * D * h_, kParallelPauli, threads_, [&](int64_t b, int t) {
      const int64_t r0 = b * kPauliRows;
      f(r0, std::min(kPauliRows, R - r0), row_scratch_.data() + t * row_scratch_size_);
    });
  };
  if (small_rows(R)) {
    row_blocks([&](int64_t r0, int64_t n, float*) {
      for (size_t p = 0; p < projections_.size(); ++p)
        kern.small_value_rows(views_[p], small_cols_.data() + p * cols, u + r0 * d_, d_, d_, n, normalized_,
                              dest[p] + r0 * stride, stride);
    });
    return;
  }
  if (unitary_rows(R)) {
    for (size_t p = 0; p < projections_.size(); ++p) {
      const PauliPlan& plan = views_[p];
      row_blocks([&](int64_t r0, int64_t n, float* scratch) {
        kern.unitary_pauli_rows(plan, small_cols_.data() + p * cols, u + r0 * d_, d_, d_, n, normalized_,
                                dest[p] + r0 * stride, stride, scratch);
      });
    }
    return;
  }
  if (fused_rows(R)) {
    // Many rows: the encoding, the circuits and the sums kPauliRows rows at
    // a time, rows in vector lanes (psi and phi stay in the scratch).
    for (size_t p = 0; p < projections_.size(); ++p) {
      const CircuitPlan circuit = gates_[p].plan();
      const PauliPlan& plan = views_[p];
      row_blocks([&](int64_t r0, int64_t n, float* scratch) {
        kern.circuit_pauli_rows(circuit, plan, u + r0 * d_, d_, d_, n, normalized_, dest[p] + r0 * stride, stride,
                                scratch);
      });
    }
    return;
  }
  // The fast unitary path multiplies psi without its zero padding.
  split_rows(R, d_, threads_, [&](int64_t r0, int64_t n) {
    fast::encode_amplitudes(psi_.data() + r0 * psi_ld, u + r0 * d_, n, d_, psi_ld, normalized_);
  });
  if (uses_gates(R)) {  // phi of each projection, row by row
    const int64_t work = R * D * static_cast<int64_t>(gates_.size());
    split_items(R, work, kParallelPauli / 8, threads_, [&](int64_t r, int t) {
      for (size_t p = 0; p < gates_.size(); ++p) {
        float* re = out_.data() + r * width + 2 * static_cast<int64_t>(p) * D;
        gates_[p].apply(psi_.data() + r * psi_ld, d_, re, re + D, gate_scratch_.data() + t * 2 * D);
      }
    });
  } else {
    gemm_.run(psi_.data(), out_.data(), R);  // phi (or O' psi) of every projection at once
  }
  const bool unitary = !observables();
  for (size_t p = 0; p < projections_.size(); ++p) {
    const auto pi = static_cast<int64_t>(p);
    const PauliPlan& plan = views_[p];
    const bool lanes = plan.lane_count > 0 && kern.pauli_lanes;
    if (unitary && !lanes && row_scratch_size_ > 0 && R >= kPauliRowsMinRows) {  // rows in lanes
      row_blocks([&](int64_t r0, int64_t n, float* scratch) {
        kern.pauli_rows(plan, out_.data() + r0 * width + 2 * pi * D, width, n, dest[p] + r0 * stride, stride, scratch);
      });
      continue;
    }
    if (unitary && (R <= kPerRowPauliMaxRows || D >= kPerRowPauliMinStates || lanes)) {
      const PauliSumsKernel sums = lanes ? kern.pauli_lanes : kern.pauli_sums;
      // Rows split over the threads for prefills and batches (each thread
      // its own products row of prod_, which holds max_rows rows).
      split_items(R, R * D * h_, kParallelPauli, threads_, [&](int64_t r, int t) {
        const float* re = out_.data() + r * width + 2 * pi * D;
        sums(plan, re, re + D, dest[p] + r * stride, prod_.data() + t * D);
      });
      continue;
    }
    if (unitary) {
      for (auto& g : groups_[p]) {
        for (int64_t r = 0; r < R; ++r) {  // Re or Im of conj(phi[j ^ x]) phi[j]
          const float* re = out_.data() + r * width + 2 * pi * D;
          kern.pauli_products(prod_.data() + r * D, re, re + D, g.x_mask, g.imaginary, D);
        }
        const auto k = static_cast<int64_t>(g.strings.size());
        g.gemm.run(prod_.data(), sums_.data(), R);
        for (int64_t r = 0; r < R; ++r) {
          for (int64_t c = 0; c < k; ++c) dest[p][r * stride + g.strings[static_cast<size_t>(c)]] = sums_[r * k + c];
        }
      }
      continue;
    }
    for (int64_t r = 0; r < R; ++r) {  // observables: psi . (Re O'_k psi)
      float* o = dest[p] + r * stride;
      const float* y = out_.data() + r * width + pi * h_ * D;
      const float* psi = psi_.data() + r * D;
      for (int64_t k = 0; k < h_; ++k) o[k] = cpu_kernels().dot(psi, y + k * D, D);
    }
  }
}

}  // namespace qisa
