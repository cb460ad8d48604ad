#include "lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace qisa::train {

double lr_at(const LrSchedule& s, int64_t step) {
  step = std::max<int64_t>(step, 0);
  if (step < s.warmup) return s.peak * static_cast<double>(step + 1) / static_cast<double>(s.warmup);
  if (s.shape == LrShape::Constant) return s.peak;
  // Cosine over the steps after warm-up: peak at the first, floor at the last.
  const int64_t span = s.total_steps - s.warmup - 1;
  if (span <= 0) return s.peak;
  const double t = std::min(1.0, static_cast<double>(step - s.warmup) / static_cast<double>(span));
  return s.floor + 0.5 * (s.peak - s.floor) * (1 + std::cos(std::numbers::pi * t));
}

LrShape parse_lr_shape(const std::string& name) {
  if (name == "constant") return LrShape::Constant;
  if (name == "cosine") return LrShape::Cosine;
  throw std::invalid_argument("--lr-schedule must be constant or cosine, got '" + name + "'");
}

std::string describe(const LrSchedule& s) {
  const std::string shape = s.shape == LrShape::Cosine ? "cosine to " + std::to_string(s.floor) : "constant";
  return shape + ", warm-up " + std::to_string(s.warmup) + " steps";
}

}  // namespace qisa::train
