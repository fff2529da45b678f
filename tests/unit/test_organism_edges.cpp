// Edge methods on the trained toy IOI model (models/ioi-toy): the circuits EAP-IG and ACDC find
// recover most of the logit difference with a small share of the edges, and agree on their
// strongest edges.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "data/ioi.h"
#include "model/tokenizer.h"
#include "patching/acdc.h"
#include "patching/circuit_eval.h"
#include "patching/edge_attribution.h"

namespace causeway {
namespace {

TEST(OrganismEdges, EapIgAndAcdcCircuitsOfToyIoiRecoverTheLogitDifferenceAndOverlap) {
  const auto dir = std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "models/ioi-toy";
  TransformerModel model = TransformerModel::load(dir);
  const Tokenizer tok = Tokenizer::from_model_dir(dir);
  IoiOptions opt;
  opt.n = 16;
  opt.seed = 1;
  opt.corruption = IoiOptions::Corruption::ThirdName;
  PairDataset data;
  data.pairs = generate_ioi(tok, opt);
  data.source = "ioi generator";
  const int P = static_cast<int>(data.pairs.size());
  const CircuitGraph g(model.config());
  const int S = g.n_senders(), R = g.n_receivers();
  EdgeRunner runner(model, g);

  // EAP-IG (inputs, k = 5): edges ranked by |mean score| over the pairs.
  std::vector<float> scores(static_cast<size_t>(P) * S * R);
  EdgeAttributionRequest req;
  req.method = EdgeMethod::EapIgInputs;
  req.steps = 5;
  edge_attribution(runner, data, 0, P, req, scores.data());
  std::vector<std::pair<int, int>> ranking;
  std::vector<double> mean(static_cast<size_t>(S) * R, 0.0);
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < g.senders_into(r); ++s) {
      for (int p = 0; p < P; ++p) mean[static_cast<size_t>(s) * R + r] += scores[(static_cast<size_t>(p) * S + s) * R + r] / P;
      ranking.push_back({s, r});
    }
  std::stable_sort(ranking.begin(), ranking.end(), [&](auto a, auto b) {
    return std::abs(mean[static_cast<size_t>(a.first) * R + a.second]) > std::abs(mean[static_cast<size_t>(b.first) * R + b.second]);
  });

  CircuitRuns runs(runner, data, 0, P, EdgeAblation::Corrupted);
  const int64_t top = 40;
  const FaithfulnessCurve eap_ig = faithfulness_curve(runs, ranking, {top});

  AcdcRequest acdc_req;
  acdc_req.metric = AcdcMetric::LogitDiff;
  acdc_req.threshold = 0.05;
  const AcdcResult acdc_res = acdc(runs, acdc_req);
  const FaithfulnessCurve acdc_curve = faithfulness_curve(
      runs, acdc_res.kept, {static_cast<int64_t>(acdc_res.kept.size())});

  // Overlap of the two methods' 20 strongest edges.
  const size_t k = 20;
  ASSERT_GE(acdc_res.kept.size(), k);
  size_t overlap = 0;
  for (size_t i = 0; i < k; ++i)
    overlap += std::find(ranking.begin(), ranking.begin() + k, acdc_res.kept[i]) != ranking.begin() + k;
  std::printf("toy IOI, %d pairs, %lld edges: EAP-IG top %lld recovers %.3f; ACDC keeps %zu, "
              "recovers %.3f; top-%zu overlap %zu\n",
              P, static_cast<long long>(g.edge_count()), static_cast<long long>(top),
              eap_ig.recovered[0], acdc_res.kept.size(), acdc_curve.recovered[0], k, overlap);
  EXPECT_GT(eap_ig.clean_metric - eap_ig.ablated_metric, 2.0) << "the model does not solve IOI";
  EXPECT_GE(eap_ig.recovered[0], 0.8);
  EXPECT_GE(acdc_curve.recovered[0], 0.8);
  EXPECT_LT(static_cast<int64_t>(acdc_res.kept.size()), g.edge_count() / 4);
  EXPECT_GE(overlap, k / 2);
}

}  // namespace
}  // namespace causeway
