// Edges and circuits: the graph, the split-input forward, edge patching, EAP / EAP-IG and path
// patching checked against invariants that hold by definition (goldens from the Python
// reference are in test_circuit_goldens.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <algorithm>
#include <filesystem>

#include "patching/acdc.h"
#include "patching/circuit_eval.h"
#include "patching/circuit_graph.h"
#include "patching/edge_attribution.h"
#include "patching/edge_forward.h"
#include "patching/metric_gradient.h"
#include "patching/path_patching.h"
#include "tiny_model.h"
#include "induction_pairs.h"

namespace causeway {
namespace {

using fixtures::golden_pairs;
using fixtures::tiny_model;

TEST(CircuitGraph, CountsAndNamesOfTinyGpt2) {
  const CircuitGraph g(tiny_model().config());  // 2 layers, 4 heads
  EXPECT_EQ(g.n_senders(), 1 + 2 * 5);
  EXPECT_EQ(g.n_receivers(), 2 * (4 + 4 + 4 + 1) + 1);
  // Layer 0: 12 q/k/v receivers read Resid Start, MLP 0 also reads A0.*: 12 + 5; layer 1:
  // 12 x 6 + 10; Resid End: 11.
  EXPECT_EQ(g.edge_count(), 17 + 82 + 11);
  EXPECT_EQ(g.edge_name(g.head_sender(0, 1), g.query_receiver(1, 2)), "A0.1->A1.2.Q");
  EXPECT_EQ(g.edge_name(0, g.resid_end()), "Resid Start->Resid End");
  EXPECT_EQ(g.receivers()[static_cast<size_t>(g.mlp_receiver(1))].name, "MLP 1");
  EXPECT_EQ(g.parse_edge("MLP 0->A1.3.V", "test"),
            std::make_pair(g.mlp_sender(0), g.value_receiver(1, 3)));
  EXPECT_THROW(g.parse_edge("A1.0->A0.0.Q", "test"), InputError);
  EXPECT_THROW(g.parse_edge("A9.0->Resid End", "test"), InputError);
}

// Logits at the read positions of a plain forward.
std::vector<float> logits_of(TransformerModel& m, const TokenBatch& batch, HookPlan& plan,
                             const std::vector<int>& read) {
  ForwardOptions o;
  o.rows = LogitRows::Last;
  o.read_pos = &read;
  const Tensor t = m.forward(batch, plan, o);
  return std::vector<float>(t.data, t.data + t.numel());
}

TEST(SplitInputs, UneditedSplitInputsGiveTheSameForward) {
  TransformerModel& m = tiny_model();
  const EdgePairs ep = edge_pairs(golden_pairs(), 0, 4);
  HookPlan plain(2), split(2);
  for (int L = 0; L < 2; ++L)
    for (HookKind k : {HookKind::QInput, HookKind::KInput, HookKind::VInput, HookKind::MlpIn})
      split.cache({k, L});
  const std::vector<float> a = logits_of(m, ep.clean, plain, ep.read);
  const std::vector<float> b = logits_of(m, ep.clean, split, ep.read);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4) << i;
  // Each head's copy of the input is resid_pre.
  const Tensor qin = split.activations().at("blocks.1.hook_q_input");
  HookPlan pre(2);
  pre.cache({HookKind::ResidPre, 1});
  logits_of(m, ep.clean, pre, ep.read);
  const Tensor rp = pre.activations().at("blocks.1.hook_resid_pre");
  const int64_t C = m.config().n_embd, H = m.config().n_head;
  // Two forwards by different paths (layer 0's output summed per sender in the split one), so
  // equal up to fp32 rounding of O(1) residual values: bit equality holds on one CPU only.
  for (int64_t n = 0; n < rp.numel() / C; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t c = 0; c < C; ++c)
        ASSERT_NEAR(qin.data[(n * H + h) * C + c], rp.data[n * C + c], 1e-5) << n << " " << h << " " << c;
}

struct EdgeRun {
  EdgePairs ep;
  CircuitGraph g;
  EdgeRunner runner;
  int64_t S, R, TC;
  std::vector<float> source;  // corrupted sender outputs (P, S, T, C)
  explicit EdgeRun(int pairs)
      : ep(edge_pairs(golden_pairs(), 0, pairs)),
        g(tiny_model().config()),
        runner(tiny_model(), g),
        S(g.n_senders()),
        R(g.n_receivers()),
        TC(static_cast<int64_t>(ep.clean.T) * tiny_model().config().n_embd) {
    source.resize(static_cast<size_t>(pairs * S * TC));
    HookPlan plan(2);
    runner.run_recording(ep.corrupted, ep.read, plan, source.data());
  }
  int P() const { return static_cast<int>(ep.pairs.size()); }
  // Logit differences of the clean run with edge coefficients coef (P, R, S).
  std::vector<double> patched(const std::vector<float>& coef) {
    const Tensor logits = runner.run_patched(ep.clean, ep.read, source.data(), coef.data());
    return logit_diffs(tiny_model(), ep.pairs, logits.data);
  }
  std::vector<float> no_edges() const { return std::vector<float>(static_cast<size_t>(P() * R * S), 0.0f); }
  void set(std::vector<float>& coef, int s, int r, float v) const {
    for (int p = 0; p < P(); ++p) coef[static_cast<size_t>((p * R + r) * S + s)] = v;
  }
};

TEST(EdgePatching, NoEdgePatchedIsTheTargetRunAndEveryEdgeIsTheSourceRun) {
  EdgeRun e(4);
  HookPlan plan(2);
  std::vector<float> unused(e.source.size());
  const std::vector<double> clean = logit_diffs(
      tiny_model(), e.ep.pairs, e.runner.run_recording(e.ep.clean, e.ep.read, plan, unused.data()).data);
  HookPlan plan2(2);
  const std::vector<double> corrupted = logit_diffs(
      tiny_model(), e.ep.pairs, e.runner.run_recording(e.ep.corrupted, e.ep.read, plan2, unused.data()).data);
  std::vector<float> coef = e.no_edges();
  // A zero coefficient on an edge adds nothing.
  e.set(coef, 0, e.g.query_receiver(0, 0), 0.0f);
  const std::vector<double> none = e.patched(coef);
  for (int r = 0; r < e.R; ++r)
    for (int s = 0; s < e.g.senders_into(r); ++s) e.set(coef, s, r, 1.0f);
  const std::vector<double> all = e.patched(coef);
  for (int p = 0; p < e.P(); ++p) {
    EXPECT_NEAR(none[p], clean[p], 1e-5);
    EXPECT_NEAR(all[p], corrupted[p], 1e-4);
    EXPECT_GT(std::abs(clean[p] - corrupted[p]), 1e-2);  // the check can fail
  }
}

TEST(EdgePatching, PatchingAllEdgesIntoResidEndIsPatchingTheFinalResidual) {
  // Resid End reads every sender, so patching all its edges gives the source's final
  // residual while every other receiver keeps the target's inputs.
  EdgeRun e(3);
  std::vector<float> coef = e.no_edges();
  for (int s = 0; s < e.S; ++s) e.set(coef, s, e.g.resid_end(), 1.0f);
  const std::vector<double> end = e.patched(coef);
  HookPlan plan(2);
  std::vector<float> unused(e.source.size());
  const std::vector<double> corrupted = logit_diffs(
      tiny_model(), e.ep.pairs, e.runner.run_recording(e.ep.corrupted, e.ep.read, plan, unused.data()).data);
  for (int p = 0; p < e.P(); ++p) EXPECT_NEAR(end[p], corrupted[p], 1e-4);
}

TEST(EdgeAttribution, EapIsTheDirectionalDerivativeOfEachEdgesPatch) {
  EdgeRun e(3);
  std::vector<float> scores(static_cast<size_t>(e.P() * e.S * e.R));
  edge_attribution(e.runner, golden_pairs(), 0, e.P(), {}, scores.data());
  const float eps = 1e-2f;
  int checked = 0;
  for (int r = 0; r < e.R; ++r)
    for (int s = 0; s < e.g.senders_into(r); ++s) {
      std::vector<float> coef = e.no_edges();
      e.set(coef, s, r, eps);
      const std::vector<double> up = e.patched(coef);
      e.set(coef, s, r, -eps);
      const std::vector<double> down = e.patched(coef);
      for (int p = 0; p < e.P(); ++p) {
        const double fd = (up[p] - down[p]) / (2 * eps);
        const float eap = scores[static_cast<size_t>((p * e.S + s) * e.R + r)];
        ASSERT_NEAR(eap, fd, 2e-3 + 2e-3 * std::abs(fd)) << e.g.edge_name(s, r) << " pair " << p;
      }
      ++checked;
    }
  EXPECT_EQ(checked, e.g.edge_count());
  for (int p = 0; p < e.P(); ++p)  // non-edges are zero
    EXPECT_EQ(scores[static_cast<size_t>((p * e.S + e.g.mlp_sender(1)) * e.R + e.g.query_receiver(0, 0))], 0.0f);
}

TEST(EdgeAttribution, EapIgWithOneStepIsEap) {
  EdgeRun e(3);
  const size_t n = static_cast<size_t>(e.P() * e.S * e.R);
  std::vector<float> eap(n), inputs(n), acts(n);
  edge_attribution(e.runner, golden_pairs(), 0, e.P(), {}, eap.data());
  edge_attribution(e.runner, golden_pairs(), 0, e.P(), {EdgeMethod::EapIgInputs, 1}, inputs.data());
  edge_attribution(e.runner, golden_pairs(), 0, e.P(), {EdgeMethod::EapIgActivations, 1}, acts.data());
  for (size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(inputs[i], eap[i], 1e-5) << i;
    ASSERT_NEAR(acts[i], eap[i], 1e-5) << i;
  }
}

TEST(PathPatching, FreezingEverythingLeavesTheDirectEdges) {
  // Receivers of one set must not read each other (a set's recorded values come from one run).
  EdgeRun e(3);
  for (const std::vector<int>& receivers :
       {std::vector<int>{e.g.query_receiver(1, 0), e.g.value_receiver(1, 2), e.g.key_receiver(1, 3)},
        std::vector<int>{e.g.mlp_receiver(1)}, std::vector<int>{e.g.resid_end()}}) {
    PathPatchRequest req;
    req.freeze = PathFreeze::All;
    req.receivers = receivers;
    std::vector<float> heads(static_cast<size_t>(e.P() * 2 * 4));
    path_patching_heads(tiny_model(), e.g, golden_pairs(), 0, e.P(), req, heads.data());
    for (int h = 0; h < 4; ++h) {
      const int s = e.g.head_sender(0, h);
      std::vector<float> coef = e.no_edges();
      for (int r : req.receivers) e.set(coef, s, r, 1.0f);
      const std::vector<double> edges = e.patched(coef);
      for (int p = 0; p < e.P(); ++p)
        EXPECT_NEAR(heads[static_cast<size_t>(p * 8 + h)], edges[p], 1e-4) << "A0." << h;
    }
  }
}

TEST(Faithfulness, EveryEdgeKeptIsTheCleanRunAndNoneIsTheAblatedRun) {
  EdgeRun e(4);
  for (EdgeAblation ab : {EdgeAblation::Corrupted, EdgeAblation::Mean}) {
    CircuitRuns runs(e.runner, golden_pairs(), 0, e.P(), ab);
    std::vector<std::pair<int, int>> ranking;
    for (int r = 0; r < e.R; ++r)
      for (int s = 0; s < e.g.senders_into(r); ++s) ranking.push_back({s, r});
    const FaithfulnessCurve c =
        faithfulness_curve(runs, ranking, doubling_sizes(static_cast<int64_t>(ranking.size())), 16);
    ASSERT_EQ(c.edges.front(), 0);
    ASSERT_EQ(c.edges.back(), e.g.edge_count());
    EXPECT_NEAR(c.metric.back(), c.clean_metric, 1e-4);
    EXPECT_NEAR(c.recovered.back(), 1.0, 1e-4);
    // The empty circuit's metric comes from the edge-patched forward, the ablated metric from
    // the ablated run: equal up to rounding (1e-6 on a difference of > 1e-2, so 1e-4).
    EXPECT_NEAR(c.recovered.front(), 0.0, 1e-4);
    EXPECT_GT(std::abs(c.clean_metric - c.ablated_metric), 1e-2);
    if (ab == EdgeAblation::Corrupted) {  // every edge ablated to the corrupted run is that run
      HookPlan plan(2);
      std::vector<float> unused(e.source.size());
      const std::vector<double> corrupted = logit_diffs(
          tiny_model(), e.ep.pairs, e.runner.run_recording(e.ep.corrupted, e.ep.read, plan, unused.data()).data);
      double mean = 0.0;
      for (double x : corrupted) mean += x / e.P();
      EXPECT_NEAR(c.ablated_metric, mean, 1e-4);
    }
  }
}

TEST(Acdc, KeepsThePreviousTokenToInductionKeyEdgeOfTheInductionOrganism) {
  TransformerModel model =
      TransformerModel::load(std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "models/induction-2l");
  const CircuitGraph g(model.config());
  EdgeRunner runner(model, g);
  const PairDataset data = fixtures::induction_pairs(12, 10, 4, 5);
  CircuitRuns runs(runner, data, 0, 12, EdgeAblation::Corrupted);
  AcdcRequest req;
  req.threshold = 0.05;
  const AcdcResult res = acdc(runs, req);
  const std::pair<int, int> prev_to_key{g.head_sender(0, 0), g.key_receiver(1, 0)};
  EXPECT_NE(std::find(res.kept.begin(), res.kept.end(), prev_to_key), res.kept.end());
  EXPECT_LT(static_cast<int64_t>(res.kept.size()), g.edge_count() / 2)
      << "kept " << res.kept.size() << " of " << g.edge_count();
  EXPECT_LT(res.metric, 0.5);
  // Every edge removed: an infinite threshold keeps nothing.
  req.threshold = 1e30;
  EXPECT_TRUE(acdc(runs, req).kept.empty());
}

// Issue 21: a batch whose rows patch only receivers of layer 1 and Resid End starts at block 1
// from the target run's residual stream; it gives the full forward's values.
TEST(CircuitRuns, PrefixReuseEqualsTheFullForward) {
  const CircuitGraph g(tiny_model().config());
  EdgeRunner runner(tiny_model(), g);
  CircuitRuns runs(runner, golden_pairs(), 0, 4, EdgeAblation::Corrupted);
  const int S = g.n_senders();
  std::vector<std::vector<float>> masks(3, std::vector<float>(static_cast<size_t>(g.n_receivers()) * S, 0.0f));
  for (int s = 0; s < g.senders_into(g.resid_end()); ++s) masks[0][static_cast<size_t>(g.resid_end()) * S + s] = 1.0f;
  for (int r = g.receiver_begin(1); r < g.resid_end(); ++r)
    for (int s = 0; s < g.senders_into(r); ++s) masks[1][static_cast<size_t>(r) * S + s] = 1.0f;
  masks[2][static_cast<size_t>(g.query_receiver(1, 2)) * S + g.head_sender(0, 1)] = 1.0f;
  const std::vector<const std::vector<float>*> variants = {&masks[0], &masks[1], &masks[2]};
  std::vector<double> kl_prefix, kl_full;
  const std::vector<double> prefix = runs.run(variants, 5, &kl_prefix);
  runs.set_prefix_reuse(false);
  const std::vector<double> full = runs.run(variants, 5, &kl_full);
  ASSERT_EQ(prefix.size(), 12u);
  double moved = 0.0;
  for (size_t i = 0; i < prefix.size(); ++i) {
    EXPECT_NEAR(prefix[i], full[i], 1e-4) << "row " << i;
    EXPECT_NEAR(kl_prefix[i], kl_full[i], 1e-5) << "row " << i;
    moved = std::max(moved, std::abs(full[i] - runs.clean_ld()[i % 4]));
  }
  EXPECT_GT(moved, 1e-2) << "the ablations change nothing: the comparison proves nothing";
}

// A search stopped after some receivers continues from its state to exactly the circuit of
// one that never stopped: same edges, scores, metric and row count.
TEST(Acdc, ContinuesFromItsStateToTheUninterruptedCircuit) {
  struct Stop {};
  const CircuitGraph g(tiny_model().config());
  EdgeRunner runner(tiny_model(), g);
  CircuitRuns runs(runner, golden_pairs(), 0, 4, EdgeAblation::Corrupted);
  AcdcRequest req;
  req.threshold = 0.02;
  const AcdcResult whole = acdc(runs, req);
  AcdcState state;
  EXPECT_THROW(acdc(runs, req, state, [](int done, int) { if (done == 7) throw Stop{}; }), Stop);
  EXPECT_EQ(state.next, g.n_receivers() - 8);
  const AcdcResult resumed = acdc(runs, req, state);
  EXPECT_EQ(resumed.kept, whole.kept);
  EXPECT_EQ(resumed.kept_scores, whole.kept_scores);
  EXPECT_EQ(resumed.scores, whole.scores);
  EXPECT_EQ(resumed.metric, whole.metric);
  EXPECT_EQ(resumed.forwards, whole.forwards);
  EXPECT_EQ(state.next, -1);
}

// Mean ablation over one pair ablates each sender to its own output: no cut can change the
// output, so ACDC removes every edge after the one row of its starting metric.
TEST(Acdc, RunsNoRowForAnEdgeWhoseCutCannotChangeTheOutput) {
  const CircuitGraph g(tiny_model().config());
  EdgeRunner runner(tiny_model(), g);
  CircuitRuns runs(runner, golden_pairs(), 0, 1, EdgeAblation::Mean);
  for (int s = 0; s < g.n_senders(); ++s) EXPECT_TRUE(runs.sender_unchanged(s)) << s;
  AcdcRequest req;
  req.metric = AcdcMetric::LogitDiff;
  const AcdcResult res = acdc(runs, req);
  EXPECT_EQ(res.forwards, 1);
  EXPECT_TRUE(res.kept.empty());
  CircuitRuns corrupted(runner, golden_pairs(), 0, 4, EdgeAblation::Corrupted);
  EXPECT_FALSE(corrupted.sender_unchanged(0));
}

}  // namespace
}  // namespace causeway
