// The learning-rate schedule: its closed form at the points that define it,
// and that qisa-train really applies it (a last step at rate 0 changes
// nothing).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "lr_schedule.h"
#include "trainer_cli.h"

namespace qisa::train {
namespace {

TEST(TrainerLrSchedule, WarmupThenCosineToTheFloor) {
  const LrSchedule s{LrShape::Cosine, 1e-3, 1e-4, 10, 110};
  EXPECT_DOUBLE_EQ(lr_at(s, 0), 1e-4);  // 1/10 of the peak on the first step
  EXPECT_DOUBLE_EQ(lr_at(s, 4), 5e-4);
  EXPECT_DOUBLE_EQ(lr_at(s, 9), 1e-3);
  EXPECT_DOUBLE_EQ(lr_at(s, 10), 1e-3);     // decay starts at the peak
  EXPECT_NEAR(lr_at(s, 109), 1e-4, 1e-15);  // and ends at the floor on the last step
  // Steps 10..109 span 99 intervals: at a third of them, cos(pi/3) = 1/2.
  EXPECT_NEAR(lr_at(s, 43), 1e-4 + 0.5 * 9e-4 * 1.5, 1e-15);
  for (int64_t t = 10; t < 109; ++t) EXPECT_GT(lr_at(s, t), lr_at(s, t + 1)) << t;
  EXPECT_NEAR(lr_at(s, 500), 1e-4, 1e-15);  // past the end: the floor, never a rise
}

TEST(TrainerLrSchedule, ConstantAndDegenerateRuns) {
  const LrSchedule c{LrShape::Constant, 2e-3, 0, 4, 100};
  EXPECT_DOUBLE_EQ(lr_at(c, 0), 5e-4);
  EXPECT_DOUBLE_EQ(lr_at(c, 3), 2e-3);
  EXPECT_DOUBLE_EQ(lr_at(c, 99), 2e-3);
  const LrSchedule one{LrShape::Cosine, 1e-3, 0, 0, 1};  // one step: the peak
  EXPECT_DOUBLE_EQ(lr_at(one, 0), 1e-3);
  EXPECT_EQ(parse_lr_shape("cosine"), LrShape::Cosine);
  EXPECT_THROW(parse_lr_shape("linear"), std::invalid_argument);
}

// Cosine to 0 over two steps: the second step runs at rate 0 (AdamW's decay
// is scaled by the rate too), so the model equals a one-step constant run.
TEST(TrainerLrSchedule, QisaTrainAppliesTheRateOfEachStep) {
  TempDir dir;
  const std::string common = std::string("--data ") + QISA_TEST_DATA +
                             " --n-embd 16 --n-layer 1 --ctx 16 --batch 8 --threads 1 --eval-every 100"
                             " --eval-batch 8 --quiet --lr 1e-2 ";
  ASSERT_EQ(train_cli(common + "--steps 1 --out " + dir / "one.qisa", dir.str()).rc, 0);
  auto r = train_cli(common + "--steps 2 --lr-schedule cosine --min-lr 0 --out " + dir / "cos.qisa", dir.str());
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_EQ(train_cli(common + "--steps 2 --out " + dir / "two.qisa", dir.str()).rc, 0);
  const std::vector<int32_t> tokens = {20, 43, 50, 50, 53, 1, 61, 53, 56, 50, 42, 2};
  const auto one = libqisa_logits(dir / "one.qisa", tokens);
  const auto cos = libqisa_logits(dir / "cos.qisa", tokens);
  const auto two = libqisa_logits(dir / "two.qisa", tokens);
  ASSERT_EQ(one.size(), cos.size());
  double same = 0, moved = 0;
  for (size_t i = 0; i < one.size(); ++i) {
    same = std::max(same, static_cast<double>(std::fabs(one[i] - cos[i])));
    moved = std::max(moved, static_cast<double>(std::fabs(one[i] - two[i])));
  }
  EXPECT_LT(same, 1e-6);
  EXPECT_GT(moved, 1e-3);  // a second step at the peak rate does change the model
  // Refused before training.
  EXPECT_EQ(train_cli(common + "--steps 2 --lr-schedule linear --out " + dir / "x.qisa", dir.str()).rc, 2);
  EXPECT_EQ(train_cli(common + "--steps 2 --min-lr 1e-3 --out " + dir / "x.qisa", dir.str()).rc, 2);
  EXPECT_EQ(train_cli(common + "--steps 2 --lr-schedule cosine --min-lr 1 --out " + dir / "x.qisa", dir.str()).rc, 2);
}

}  // namespace
}  // namespace qisa::train
