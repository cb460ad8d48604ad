// The learning rate at each step: constant, or linear warm-up then a cosine
// decay to a floor. A pure function of the step, so a resumed or
// data-parallel run uses exactly the rates of one uninterrupted process.
#pragma once

#include <cstdint>
#include <string>

namespace qisa::train {

enum class LrShape { Constant, Cosine };

struct LrSchedule {
  LrShape shape = LrShape::Constant;
  double peak = 3e-3;       // --lr
  double floor = 0;         // --min-lr (cosine: the rate at the last step)
  int64_t warmup = 0;       // steps of linear warm-up from peak / warmup
  int64_t total_steps = 1;  // the run's --steps
};

// Rate for the 0-based step `step` (the one about to be taken).
double lr_at(const LrSchedule& s, int64_t step);

// "constant" | "cosine"; throws std::invalid_argument otherwise.
LrShape parse_lr_shape(const std::string& name);
// "cosine to 0.0001, warm-up 100 steps" / "constant, warm-up 0 steps":
// for the run's banner and the model's provenance.
std::string describe(const LrSchedule& s);

}  // namespace qisa::train
