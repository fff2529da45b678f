// Edge patching, EAP, EAP-IG and path patching against the Python reference
// (tests/reference/make_circuit_goldens.py: TransformerLens 3.9 with split receiver inputs,
// float64; definitions in tests/reference/CIRCUITS.md) on tiny GPT-2, Llama 3 (GQA, rotary)
// and GPT-NeoX (parallel residual) checkpoints, through the sweep engine the batch job runs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "family_goldens.h"
#include "patching/circuit_eval.h"
#include "patching/edge_sweep.h"

namespace causeway {
namespace {

using fixtures::GoldenTensors;

struct CircuitGoldens {
  std::string family;
  GoldenTensors tensors;
  nlohmann::json json;
  TransformerModel model;
  PairDataset pairs;

  explicit CircuitGoldens(const std::string& f)
      : family(f),
        tensors(dir() / (f + "-circuit-goldens.safetensors")),
        json(nlohmann::json::parse(std::ifstream(dir() / (f + "-circuit-goldens.json")))),
        model(TransformerModel::load(std::filesystem::path(CAUSEWAY_SOURCE_DIR) /
                                     json["checkpoint"].get<std::string>())) {
    const std::vector<int64_t> clean = tensors.ints("pairs/clean"), corrupted = tensors.ints("pairs/corrupted"),
                               answer = tensors.ints("pairs/answer"), wrong = tensors.ints("pairs/wrong");
    const int64_t P = static_cast<int64_t>(answer.size()), T = static_cast<int64_t>(clean.size()) / P;
    pairs.source = f + " circuit golden pairs";
    for (int64_t p = 0; p < P; ++p) {
      PromptPair pair;
      pair.clean.assign(clean.begin() + p * T, clean.begin() + (p + 1) * T);
      pair.corrupted.assign(corrupted.begin() + p * T, corrupted.begin() + (p + 1) * T);
      pair.answers = {static_cast<int32_t>(answer[static_cast<size_t>(p)])};
      pair.wrongs = {static_cast<int32_t>(wrong[static_cast<size_t>(p)])};
      pair.line = static_cast<int>(p) + 1;
      pairs.pairs.push_back(pair);
    }
  }
  static std::filesystem::path dir() {
    return std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "tests/data/circuits";
  }
  int P() const { return static_cast<int>(pairs.pairs.size()); }
};

// max |ours - golden| over the entries, failing the test beyond atol + rtol * |golden|.
void expect_close(const std::vector<float>& ours, const std::vector<float>& golden,
                  const std::string& what, double atol = 1e-4, double rtol = 1e-4) {
  ASSERT_EQ(ours.size(), golden.size()) << what;
  double worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const double excess = std::abs(ours[i] - golden[i]) - (atol + rtol * std::abs(golden[i]));
    if (i == 0 || excess > worst) worst = excess, at = i;
  }
  EXPECT_LE(worst, 0.0) << what << ": entry " << at << " is " << ours[at] << ", golden "
                        << golden[at];
}

class CircuitGoldensTest : public ::testing::TestWithParam<std::string> {};

// The sweep's [pair, sender, receiver] effects of `method` for all pairs.
std::vector<float> edge_sweep(CircuitGoldens& g, EdgeSweepRequest req, SweepBaselines& base) {
  EdgeSweep sweep(g.model, g.pairs, req);
  const int64_t cells = static_cast<int64_t>(sweep.grid().cells.size());
  std::vector<float> effect(static_cast<size_t>(g.P() * cells));
  sweep.run_block(0, g.P(), 0, static_cast<int>(cells), effect.data(), base);
  return effect;
}

TEST_P(CircuitGoldensTest, GraphEqualsTheReferences) {
  CircuitGoldens g(GetParam());
  const CircuitGraph graph(g.model.config());
  ASSERT_EQ(graph.n_senders(), static_cast<int>(g.json["senders"].size()));
  ASSERT_EQ(graph.n_receivers(), static_cast<int>(g.json["receivers"].size()));
  for (int s = 0; s < graph.n_senders(); ++s)
    EXPECT_EQ(graph.senders()[static_cast<size_t>(s)].name, g.json["senders"][static_cast<size_t>(s)]);
  for (int r = 0; r < graph.n_receivers(); ++r)
    EXPECT_EQ(graph.receivers()[static_cast<size_t>(r)].name, g.json["receivers"][static_cast<size_t>(r)]);
  EXPECT_EQ(graph.edge_count(), g.json["n_edges"].get<int64_t>());
  const std::vector<int64_t> mask = g.tensors.ints("graph/edge_mask");
  for (int s = 0; s < graph.n_senders(); ++s)
    for (int r = 0; r < graph.n_receivers(); ++r)
      EXPECT_EQ(graph.has_edge(s, r), mask[static_cast<size_t>(s * graph.n_receivers() + r)] != 0)
          << graph.edge_name(s, r);
}

TEST_P(CircuitGoldensTest, EdgePatchingAndEapBothDirections) {
  CircuitGoldens g(GetParam());
  const CircuitGraph graph(g.model.config());
  const int S = graph.n_senders(), R = graph.n_receivers();
  for (Direction dir : {Direction::Noising, Direction::Denoising}) {
    const std::string d = dir == Direction::Noising ? "noising" : "denoising";
    SweepBaselines base;
    EdgeSweepRequest req;
    req.direction = dir;
    req.method = EdgeSweepMethod::EdgePatching;
    std::vector<float> patched = edge_sweep(g, req, base);
    // The sweep stores the change from the target run; the goldens hold the patched metric.
    const std::vector<double>& target = dir == Direction::Noising ? base.clean_ld : base.corrupted_ld;
    for (int p = 0; p < g.P(); ++p)
      for (int s = 0; s < S; ++s)
        for (int r = 0; r < R; ++r)
          if (graph.has_edge(s, r)) patched[static_cast<size_t>((p * S + s) * R + r)] += static_cast<float>(target[static_cast<size_t>(p)]);
    expect_close(patched, g.tensors.floats("edge_patch/" + d), g.family + " edge_patch/" + d);
    std::vector<float> clean(base.clean_ld.begin(), base.clean_ld.end()),
        corrupted(base.corrupted_ld.begin(), base.corrupted_ld.end());
    expect_close(clean, g.tensors.floats("baseline/clean"), g.family + " baseline/clean");
    expect_close(corrupted, g.tensors.floats("baseline/corrupted"), g.family + " baseline/corrupted");

    req.method = EdgeSweepMethod::Eap;
    expect_close(edge_sweep(g, req, base), g.tensors.floats("eap/" + d), g.family + " eap/" + d);

    // Every edge patched at once, with the current run's sender outputs.
    EdgeRunner runner(g.model, graph);
    CircuitRuns runs(runner, g.pairs, 0, g.P(), EdgeAblation::Corrupted, dir);
    std::vector<float> all(static_cast<size_t>(R) * S, 0.0f);
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < graph.senders_into(r); ++s) all[static_cast<size_t>(r) * S + s] = 1.0f;
    const std::vector<double> ld = runs.run({&all}, 64);
    expect_close(std::vector<float>(ld.begin(), ld.end()), g.tensors.floats("edge_patch_all/" + d),
                 g.family + " edge_patch_all/" + d);
  }
}

TEST_P(CircuitGoldensTest, EapIgBothVariants) {
  CircuitGoldens g(GetParam());
  SweepBaselines base;
  for (int k : {1, 3})
    for (EdgeSweepMethod m : {EdgeSweepMethod::EapIgInputs, EdgeSweepMethod::EapIgActivations}) {
      EdgeSweepRequest req;
      req.method = m;
      req.steps = k;
      const std::string key = std::string(m == EdgeSweepMethod::EapIgInputs ? "eap_ig_inputs_k" : "eap_ig_acts_k") +
                              std::to_string(k) + "/noising";
      expect_close(edge_sweep(g, req, base), g.tensors.floats(key), g.family + " " + key);
    }
}

TEST_P(CircuitGoldensTest, PathPatchingHeadGrids) {
  CircuitGoldens g(GetParam());
  const CircuitGraph graph(g.model.config());
  struct Case { const char* key; const char* set; PathFreeze freeze; };
  for (const Case c : {Case{"path_heads_resid_end", "resid_end", PathFreeze::Heads},
                       Case{"path_heads_last_q", "last_q", PathFreeze::Heads},
                       Case{"path_heads_last_mlp", "last_mlp", PathFreeze::Heads},
                       Case{"path_all_resid_end", "resid_end", PathFreeze::All}})
    for (Direction dir : {Direction::Noising, Direction::Denoising}) {
      EdgeSweepRequest req;
      req.heads_grid = true;
      req.freeze = c.freeze;
      req.direction = dir;
      for (const auto& name : g.json["receiver_sets"][c.set])
        req.receivers.push_back(graph.find_receiver(name.get<std::string>()));
      SweepBaselines base;
      const std::string key =
          std::string(c.key) + (dir == Direction::Noising ? "/noising" : "/denoising");
      expect_close(edge_sweep(g, req, base), g.tensors.floats(key), g.family + " " + key);
    }
}

INSTANTIATE_TEST_SUITE_P(Families, CircuitGoldensTest,
                         ::testing::Values("gpt2", "llama3", "gpt_neox"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace causeway
