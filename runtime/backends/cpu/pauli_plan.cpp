#include "pauli_plan.h"

#include <algorithm>
#include <bit>

namespace qisa {

namespace {

// Bits of z above `bit` moved down by one (bit itself dropped).
uint64_t compress(uint64_t z, int bit) {
  const uint64_t low = (uint64_t{1} << bit) - 1;
  return (z & low) | ((z >> (bit + 1)) << bit);
}

}  // namespace

PauliPart pauli_part(const PauliString& p) {
  // ny % 4 = 0 -> +Re S, 1 -> -Im S, 2 -> -Re S, 3 -> +Im S.
  const int ny = std::popcount(p.x_mask & p.z_mask) & 3;
  return {(ny & 1) != 0, (ny == 1 || ny == 2) ? -1.0f : 1.0f};
}

std::vector<PauliXGroup> group_by_x(const std::vector<PauliString>& paulis) {
  std::vector<PauliXGroup> groups;
  for (size_t k = 0; k < paulis.size(); ++k) {
    const uint64_t x = paulis[k].x_mask;
    const bool imaginary = pauli_part(paulis[k]).imaginary;
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const PauliXGroup& g) { return g.x == x && g.imaginary == imaginary; });
    if (it == groups.end()) it = groups.insert(groups.end(), PauliXGroup{x, imaginary, {}});
    it->strings.push_back(static_cast<int32_t>(k));
  }
  return groups;
}

PauliPlanData::PauliPlanData(const std::vector<PauliString>& paulis, int64_t D) : D_(D) {
  for (const PauliXGroup& g : group_by_x(paulis)) {
    PauliPlanGroup pg;
    pg.x = g.x;
    pg.imaginary = g.imaginary;
    pg.first = static_cast<int32_t>(z_.size());
    pg.count = static_cast<int32_t>(g.strings.size());
    const int top = g.x ? 63 - std::countl_zero(g.x) : -1;
    pg.bit = top >= 3 ? top : -1;  // whole blocks of 8 on both sides
    const int64_t n = pg.bit < 0 ? D : D / 2;
    // log2 n strings cost about what one transform does (log2 n passes
    // over n values); from there on the transform is cheaper.
    pg.walsh = pg.count > 1 && pg.count >= std::countr_zero(static_cast<uint64_t>(n));
    if (D <= kPauliRowStates && pg.count > kPauliDirectStrings) pg.walsh = true;  // (never: count < log2 n <= 8)
    for (int32_t k : g.strings) {
      const PauliString& p = paulis[static_cast<size_t>(k)];
      const float phase = pauli_part(p).phase;
      z_.push_back(pg.bit < 0 ? p.z_mask : compress(p.z_mask, pg.bit));
      scale_.push_back(pg.bit < 0 ? phase : 2.0f * phase);
      out_.push_back(k);
    }
    if (!pg.walsh && D <= kPauliRowStates) {
      pg.coef = static_cast<int64_t>(coef_.size());
      for (int64_t t = 0; t < n; ++t)
        for (int32_t c = pg.first; c < pg.first + pg.count; ++c) {
          const bool odd = std::popcount(static_cast<uint64_t>(t) & z_[static_cast<size_t>(c)]) & 1;
          coef_.push_back(odd ? -scale_[static_cast<size_t>(c)] : scale_[static_cast<size_t>(c)]);
        }
    }
    groups_.push_back(pg);
  }
  const auto strings = static_cast<int64_t>(paulis.size());
  if (D <= kPauliLaneStates && strings > 0) {
    const int64_t n = (strings + kPauliLanes - 1) / kPauliLanes * kPauliLanes;
    lane_x_.assign(static_cast<size_t>(n), 0);
    lane_imag_.assign(static_cast<size_t>(n), 0);
    lane_scale_.assign(static_cast<size_t>(n), 0.0f);
    lane_sign_.assign(static_cast<size_t>(D * n), 0);
    for (int64_t k = 0; k < strings; ++k) {
      const PauliString p = paulis[static_cast<size_t>(k)];
      const PauliPart part = pauli_part(p);
      lane_x_[static_cast<size_t>(k)] = static_cast<int32_t>(p.x_mask);
      lane_imag_[static_cast<size_t>(k)] = part.imaginary ? ~0u : 0u;
      lane_scale_[static_cast<size_t>(k)] = part.phase;
      for (int64_t j = 0; j < D; ++j)
        if (std::popcount(static_cast<uint64_t>(j) & p.z_mask) & 1)
          lane_sign_[static_cast<size_t>(j * n + k)] = 0x80000000u;
    }
    // The states in lanes (state_*): the groups again, in runs by (x >= 8,
    // part), each with its lane permutation; per output column its string's
    // group and signs. A string with x >= 8 (D = 16) takes twice its terms
    // over the states below 8 and none above (the halving above).
    std::vector<int32_t> order, position(groups_.size());
    for (int run = 0; run < 4; ++run) {
      for (size_t g = 0; g < groups_.size(); ++g) {
        if ((groups_[g].x >= 8 ? 2 : 0) + (groups_[g].imaginary ? 1 : 0) != run) continue;
        position[g] = static_cast<int32_t>(order.size());
        order.push_back(static_cast<int32_t>(g));
        ++state_runs_[run];
      }
    }
    for (int32_t g : order)
      for (uint64_t lane = 0; lane < 8; ++lane)
        state_perm_.push_back(static_cast<int32_t>(lane ^ (groups_[static_cast<size_t>(g)].x & 7)));
    state_coef_.assign(static_cast<size_t>(n * kPauliLaneStates), 0.0f);
    state_group_.assign(static_cast<size_t>(n), 0);
    for (size_t g = 0; g < groups_.size(); ++g) {
      const PauliPlanGroup& pg = groups_[g];
      for (int32_t c = pg.first; c < pg.first + pg.count; ++c)
        state_group_[static_cast<size_t>(out_[static_cast<size_t>(c)])] = position[g];
    }
    for (int64_t k = 0; k < strings; ++k) {
      const PauliString p = paulis[static_cast<size_t>(k)];
      const float phase = pauli_part(p).phase;
      const bool halved = p.x_mask >= 8;
      for (int64_t j = 0; j < (halved ? 8 : D); ++j) {
        const float c = std::popcount(static_cast<uint64_t>(j) & p.z_mask) & 1 ? -phase : phase;
        state_coef_[static_cast<size_t>(k * kPauliLaneStates + j)] = halved ? 2.0f * c : c;
      }
    }
  }
}

}  // namespace qisa
