// One projection's Pauli strings laid out for the pauli_sums kernels
// (cpu_kernels.h PauliPlan): grouped by X mask and Re/Im part, halved
// where whole blocks allow, Walsh-Hadamard transform for large groups.
#pragma once

#include <cstdint>
#include <vector>

#include "circuit.h"
#include "cpu_kernels.h"

namespace qisa {

// The part of S = sum_j conj(phi[j ^ x]) (-1)^popcount(j & z) phi[j] that
// a string's value Re(i^ny S) needs (ny: its number of Y), and the sign.
struct PauliPart {
  bool imaginary;
  float phase;
};
PauliPart pauli_part(const PauliString& p);

// The strings by (X mask, part): each group's string indices in order,
// groups in the order of their first string.
struct PauliXGroup {
  uint64_t x;
  bool imaginary;
  std::vector<int32_t> strings;
};
std::vector<PauliXGroup> group_by_x(const std::vector<PauliString>& paulis);

class PauliPlanData {
 public:
  PauliPlanData(const std::vector<PauliString>& paulis, int64_t D);
  // Points into this object: valid while it lives and is not moved from.
  PauliPlan view() const {
    PauliPlan p;
    p.D = D_;
    p.groups = groups_.data();
    p.n_groups = static_cast<int64_t>(groups_.size());
    p.z = z_.data();
    p.scale = scale_.data();
    p.out = out_.data();
    p.strings = static_cast<int64_t>(out_.size());
    p.coef = coef_.data();
    if (!lane_x_.empty()) {
      p.lane_count = static_cast<int64_t>(lane_x_.size());
      p.lane_x = lane_x_.data();
      p.lane_imag = lane_imag_.data();
      p.lane_scale = lane_scale_.data();
      p.lane_sign = lane_sign_.data();
      p.state_coef = state_coef_.data();
      p.state_group = state_group_.data();
      p.state_perm = state_perm_.data();
      for (int run = 0; run < 4; ++run) p.state_runs[run] = state_runs_[run];
    }
    return p;
  }

 private:
  int64_t D_;
  std::vector<PauliPlanGroup> groups_;
  std::vector<uint64_t> z_;
  std::vector<float> scale_;
  std::vector<int32_t> out_;
  std::vector<float> coef_;
  // The lane layout (PauliPlan lane_*), D <= kPauliLaneStates.
  std::vector<int32_t> lane_x_;
  std::vector<uint32_t> lane_imag_, lane_sign_;
  std::vector<float> lane_scale_;
  std::vector<float> state_coef_;     // PauliPlan::state_coef
  std::vector<int32_t> state_group_;  // PauliPlan::state_group
  std::vector<int32_t> state_perm_;   // PauliPlan::state_perm
  int64_t state_runs_[4] = {};        // PauliPlan::state_runs
};

}  // namespace qisa
