// Sums and full-vocabulary metrics over a tensor-parallel group's vocabulary blocks equal one
// rank's whole-row values. In suite Collectives so that Mpi.collectives also runs them on 3
// ranks (vocabulary blocks of 13, 13 and 11 real tokens, 2 padding rows); alone they run on 1.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/exact_sum.h"
#include "patching/metric.h"
#include "patching/sharded_metric.h"

namespace causeway {
namespace {

const Collectives& group() {
  static MpiSession session(nullptr, nullptr);
  static std::unique_ptr<Collectives> c = make_mpi_collectives(MPI_COMM_WORLD);
  return *c;
}

TEST(Collectives, ExactSumKeepsWhatFloatsWouldRoundAway) {
  const Collectives& c = group();
  const int r = c.rank(), n = c.size();
  // 1000 + r * 1e-9: a float keeps none of the 1e-9 (its spacing at 1000 is 6e-5).
  double x[2] = {1000.0 + r * 1e-9, -0.5 * r};
  allreduce_sum_exact(c, x, 2);
  EXPECT_NEAR(x[0], 1000.0 * n + 1e-9 * n * (n - 1) / 2, 1e-11);
  EXPECT_EQ(x[1], -0.25 * n * (n - 1));
}

TEST(Collectives, ShardedMetricsEqualTheWholeRowMetric) {
  const Collectives& c = group();
  constexpr int V = 37, R = 4;
  const int Vl = (V + c.size() - 1) / c.size(), vb = c.rank() * Vl;
  // The same rows on every rank (one seed), each rank keeping its block.
  std::mt19937 rng(7);
  std::normal_distribution<float> logit(0.0f, 3.0f);
  std::vector<float> whole(R * V), clean(R * V);
  for (float& x : whole) x = logit(rng);
  for (float& x : clean) x = logit(rng);
  whole[2 * V + 30] = whole[2 * V + 3] = 20.0f;  // a tie: the first token (3) is the top-1
  std::vector<PairTargets> pairs(R);
  pairs[0].answers = {1};
  pairs[1].answers = {36};
  pairs[2].answers = {3};
  pairs[3].answers = {5, 20, 33};
  std::vector<const PairTargets*> targets;
  for (int r = 0; r < R; ++r) {
    pairs[r].clean_logits = clean.data() + r * V;
    targets.push_back(&pairs[r]);
  }
  std::vector<float> local(R * Vl, 100.0f);  // padding past V must not count
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < Vl && vb + i < V; ++i) local[r * Vl + i] = whole[r * V + vb + i];
  for (MetricKind m : {MetricKind::AnswerProb, MetricKind::AnswerLogProb, MetricKind::KlFromClean,
                       MetricKind::Accuracy, MetricKind::Rank}) {
    double out[R];
    sharded_pair_metrics(m, targets, local.data(), vb, Vl, V, c, out);
    for (int r = 0; r < R; ++r) {
      const double want = pair_metric(m, pairs[r], 0.0, whole.data() + r * V, V);
      EXPECT_NEAR(out[r], want, 1e-9 * (1.0 + std::abs(want))) << metric_name(m) << " row " << r;
    }
  }
  double accuracy[R];
  sharded_pair_metrics(MetricKind::Accuracy, targets, local.data(), vb, Vl, V, c, accuracy);
  EXPECT_EQ(accuracy[2], 1.0);
}

}  // namespace
}  // namespace causeway
