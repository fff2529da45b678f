// On the trained induction model, activation patching finds the heads its attention patterns
// name: the induction head (highest induction score) carries the prediction on a repeat, and
// the previous-token head (highest previous-token score) is the earlier-layer head it needs.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "model/transformer_model.h"
#include "patching/sweep.h"
#include "train/head_scores.h"
#include "induction_pairs.h"
#include "train/induction_task.h"

namespace causeway {
namespace {

TEST(OrganismCircuits, PatchingFindsTheInductionAndPreviousTokenHeads) {
  const auto dir = std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "models/induction-2l";
  TransformerModel model = TransformerModel::load(dir);
  const train::InductionTask task(train::InductionOptions{});
  const std::vector<int32_t>& symbols = task.symbol_ids();
  const train::HeadScores scores = train::head_scores(model, task.bos(), symbols, 12, 40, 7);

  // Clean: [BOS] A A[0..k]; the answer A[k+1] is predictable only by induction. Corrupted: the
  // first copy replaced by other symbols, so the same position has nothing to copy.
  const PairDataset data = fixtures::induction_pairs(24, 12, 5, 11);
  SweepRequest req;
  req.spec.kind = SweepKind::HeadOut;
  req.spec.by_pos = false;
  req.metric = MetricKind::Normalized;
  const SweepResult r = SweepRunner(model, data, req).run();
  EXPECT_GT(r.baselines.clean_ld[0], r.baselines.corrupted_ld[0]) << "the model does not use the repeat";
  const int H = model.config().n_head;
  auto strongest_in = [&](int layer_begin, int layer_end) {
    int best = layer_begin * H;
    for (int c = layer_begin * H; c < layer_end * H; ++c)
      if (r.mean[c] > r.mean[best]) best = c;
    return std::pair{best / H, best % H};
  };
  const auto induction = strongest_in(0, model.config().n_layer);
  EXPECT_EQ(induction, scores.best_induction()) << "patching's strongest head vs the induction score";
  EXPECT_GT(r.mean[induction.first * H + induction.second], 0.5);
  // The previous-token head sits before the induction head and is needed by it.
  const auto previous = strongest_in(0, induction.first);
  EXPECT_EQ(previous, scores.best_prev()) << "patching's strongest earlier head vs the previous-token score";
  EXPECT_GT(r.mean[previous.first * H + previous.second], 0.1);
}

}  // namespace
}  // namespace causeway
