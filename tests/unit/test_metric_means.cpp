// What a sweep's `mean` is under each metric: logit_diff averages raw logit differences;
// normalized stores per-pair values normalized by each pair's own baselines and keeps
// TransformerLens' mean (the metric of the batch means).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "model/safetensors.h"
#include "patching/sweep.h"
#include "tiny_model.h"

namespace causeway {
namespace {

using fixtures::golden_pairs;
using fixtures::tiny_model;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Two pairs with different baselines; pair 1 is undefined in cell 1 (a position past its end).
SweepBaselines two_pairs() {
  SweepBaselines b;
  b.clean_ld = {3.0, 1.0};
  b.corrupted_ld = {-1.0, 0.0};
  b.clean_metric = b.clean_ld;
  b.corrupted_metric = b.corrupted_ld;
  return b;
}

TEST(MetricMeans, LogitDiffMeanIsThePlainMeanOfRawValuesOverDefinedPairs) {
  const std::vector<float> effect = {2.0f, 0.5f,   // pair 0: cells 0, 1
                                     1.0f, kNaN};  // pair 1
  const std::vector<float> mean = sweep_mean(MetricKind::LogitDiff, effect, two_pairs(), 2, 2);
  EXPECT_FLOAT_EQ(mean[0], 1.5f);  // not the normalized (1.5 + 0.5) / (2 + 0.5) = 0.8
  EXPECT_FLOAT_EQ(mean[1], 0.5f);
}

TEST(MetricMeans, NormalizedMeanIsTheMetricOfTheBatchMeans) {
  // Per pair: (ld - corrupted_p) / (clean_p - corrupted_p) of raw 2.0, 1.0 and 0.5.
  const std::vector<float> effect = {0.75f, 0.375f, 1.0f, kNaN};
  const std::vector<float> mean = sweep_mean(MetricKind::Normalized, effect, two_pairs(), 2, 2);
  EXPECT_FLOAT_EQ(mean[0], 0.8f);    // (1.5 - -0.5) / (2 - -0.5), not the pairs' mean 0.875
  EXPECT_FLOAT_EQ(mean[1], 0.375f);  // only pair 0's baselines where only pair 0 is defined
}

TEST(MetricMeans, OtherMetricsAverageTheirPerPairValues) {
  const std::vector<float> effect = {0.25f, 0.5f, 0.75f, kNaN};
  const std::vector<float> mean = sweep_mean(MetricKind::AnswerProb, effect, two_pairs(), 2, 2);
  EXPECT_FLOAT_EQ(mean[0], 0.5f);
  EXPECT_FLOAT_EQ(mean[1], 0.5f);
}

std::vector<float> golden(const std::string& name) {
  static const SafetensorsFile file =
      SafetensorsFile::open(fixtures::kDataDir / "tiny-gpt2-patching-goldens.safetensors");
  const TensorInfo* info = file.find(name);
  if (!info) return {};
  std::vector<float> out((info->end - info->begin) / 4);
  std::memcpy(out.data(), file.data(*info), info->end - info->begin);
  return out;
}

SweepResult heads(MetricKind metric, Direction direction) {
  SweepRequest req;
  req.spec.kind = SweepKind::HeadOut;
  req.spec.by_pos = false;
  req.metric = metric;
  req.direction = direction;
  return SweepRunner(tiny_model(), golden_pairs(), req).run();
}

// TransformerLens' normalized batch mean g undone with the batch baselines is the batch mean of
// the raw logit differences: what metric = "logit_diff" stores as `mean`.
TEST(MetricMeans, LogitDiffSweepMeanIsTheRawBatchMeanOfTransformerLens) {
  const std::vector<float> g = golden("get_act_patch_attn_head_out_all_pos.denoising.mean");
  const std::vector<float> clean = golden("baseline.clean_logit_diff");
  const std::vector<float> corrupted = golden("baseline.corrupted_logit_diff");
  ASSERT_FALSE(g.empty() || clean.empty() || corrupted.empty());
  double mc = 0.0, mx = 0.0;
  for (size_t p = 0; p < clean.size(); ++p) mc += clean[p] / clean.size(), mx += corrupted[p] / clean.size();

  const SweepResult r = heads(MetricKind::LogitDiff, Direction::Denoising);
  ASSERT_EQ(r.mean.size(), g.size());
  const size_t cells = r.grid.cells.size();
  for (size_t c = 0; c < cells; ++c) {
    EXPECT_NEAR(r.mean[c], mx + g[c] * (mc - mx), 1e-4) << "cell " << c;
    double s = 0.0;
    for (int p = 0; p < r.n_pairs; ++p) s += r.effect[p * cells + c];
    EXPECT_NEAR(r.mean[c], s / r.n_pairs, 1e-5) << "cell " << c;
  }
}

TEST(MetricMeans, NormalizedPerPairValuesUseEachPairsOwnBaselines) {
  const SweepResult raw = heads(MetricKind::LogitDiff, Direction::Noising);
  const SweepResult norm = heads(MetricKind::Normalized, Direction::Noising);
  const size_t cells = raw.grid.cells.size();
  bool pairs_differ = false;
  for (int p = 0; p < raw.n_pairs; ++p) {
    const double c = raw.baselines.clean_ld[p], x = raw.baselines.corrupted_ld[p];
    pairs_differ |= std::abs(c - raw.baselines.clean_ld[0]) > 1e-3;
    for (size_t k = 0; k < cells; ++k)
      EXPECT_NEAR(norm.effect[p * cells + k], (raw.effect[p * cells + k] - x) / (c - x), 1e-4)
          << "pair " << p << " cell " << k;
  }
  EXPECT_TRUE(pairs_differ) << "the golden pairs should have different baselines";
}

}  // namespace
}  // namespace causeway
