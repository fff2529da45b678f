// The circuit step (issue 19, B1, B5, C): circuit evaluations stop at a check between batches;
// a circuit whose clean and all-ablated metrics agree has no recovered share (NaN, or the run
// refuses it); a config of [[circuit]] tables alone is a whole run, and every circuit is marked
// complete in the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_support.h"
#include "io/hdf5_file.h"
#include "patching/acdc.h"
#include "patching/circuit_eval.h"
#include "patching/circuit_graph.h"
#include "patching/edge_forward.h"
#include "tiny_model.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using fixtures::run_causeway;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";

TEST(CircuitRecovery, DefinedOnlyWhenCleanAndAblatedDifferBeyondRounding) {
  EXPECT_TRUE(recovery_defined(2.5, -1.0));
  EXPECT_TRUE(recovery_defined(0.01, 0.0));
  EXPECT_FALSE(recovery_defined(2.5, 2.5));
  EXPECT_FALSE(recovery_defined(2.5, 2.5 + 1e-6));  // rounding of two fp32 paths
  EXPECT_FALSE(recovery_defined(1e-6, 0.0));
  EXPECT_FALSE(recovery_defined(NAN, 1.0));
}

TEST(CircuitRecovery, MeanAblationOfOnePairGivesNanNotNoise) {
  // The mean of one pair's clean outputs is that pair's clean run: ablating changes nothing.
  const CircuitGraph g(fixtures::tiny_model().config());
  EdgeRunner runner(fixtures::tiny_model(), g);
  CircuitRuns runs(runner, fixtures::golden_pairs(), 0, 1, EdgeAblation::Mean);
  std::vector<std::pair<int, int>> ranking;
  for (int r = 0; r < g.n_receivers(); ++r)
    for (int s = 0; s < g.senders_into(r); ++s) ranking.push_back({s, r});
  const FaithfulnessCurve c = faithfulness_curve(runs, ranking, {0, 1, 4, 110}, 16);
  EXPECT_NEAR(c.clean_metric, c.ablated_metric, 1e-4);
  ASSERT_EQ(c.recovered.size(), 4u);
  for (double x : c.recovered) EXPECT_TRUE(std::isnan(x)) << x;
  for (double m : c.metric) EXPECT_NEAR(m, c.clean_metric, 1e-4);
}

TEST(CircuitStop, AcdcStopsAtTheBatchCheck) {
  const CircuitGraph g(fixtures::tiny_model().config());
  EdgeRunner runner(fixtures::tiny_model(), g);
  CircuitRuns runs(runner, fixtures::golden_pairs(), 0, 4, EdgeAblation::Corrupted);
  struct Stop {};
  int batches = 0;
  runs.set_batch_check([&] {
    if (++batches == 3) throw Stop{};
  });
  EXPECT_THROW(acdc(runs, AcdcRequest{}), Stop);
  EXPECT_EQ(batches, 3);  // no batch ran after the one that threw
}

struct CircuitRun {
  fixtures::TempDir dir{"circuits"};
  fs::path config = dir.path() / "run.toml", out = dir.path() / "r.h5";
  // Tables after [data] / [output]; `pairs` the JSONL file.
  void write(const std::string& tables, const fs::path& pairs = kData / "tiny-gpt2-patching-pairs.jsonl") {
    std::ofstream(config) << "[model]\npath = \"" << (kData / "tiny-gpt2").string()
                          << "\"\nthreads = 1\n[data]\nfile = \"" << pairs.string() << "\"\n[output]\npath = \""
                          << out.string() << "\"\n" << tables;
  }
  fixtures::CliResult run(const std::string& flags = "") {
    return run_causeway("run " + config.string() + " " + flags);
  }
};

double attribute(const fs::path& file, const std::string& object, const char* key) {
  const H5File f(file, H5Mode::ReadOnly);
  H5Handle a(H5Aopen_by_name(f.id(), object.c_str(), key, H5P_DEFAULT, H5P_DEFAULT));
  double v = -1.0;
  if (!a || H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v) < 0) ADD_FAILURE() << object << "@" << key;
  return v;
}

TEST(CliCircuits, ConfigOfCircuitsAloneRuns) {
  CircuitRun r;
  r.write("[[circuit]]\nname = \"acdc\"\nmethod = \"acdc\"\nthreshold = 0.02\n");
  const auto res = r.run();
  ASSERT_EQ(res.code, 0) << res.output;
  EXPECT_NE(res.output.find("circuit acdc: 8 of 110 edges kept"), std::string::npos) << res.output;
  EXPECT_EQ(attribute(r.out, "/circuits/acdc", "complete"), 1.0);
  {
    const H5File f(r.out, H5Mode::ReadOnly);
    EXPECT_EQ(f.read_floats("/circuits/acdc/scores").size(), 8u);
    EXPECT_FALSE(f.exists("/experiments/acdc"));
  }
  const auto resumed = r.run("--resume");
  EXPECT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("circuit acdc: complete in the file, kept"), std::string::npos) << resumed.output;
  // No work items, yet no rank is idle in a way `run` would refuse.
  const auto dry = r.run("--dry-run");
  EXPECT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("circuit acdc"), std::string::npos) << dry.output;
  EXPECT_EQ(dry.output.find("idle:"), std::string::npos) << dry.output;
}

TEST(CliCircuits, ConfigOfNoTablesIsRefused) {
  CircuitRun r;
  r.write("");
  const auto res = r.run();
  EXPECT_EQ(res.code, 2) << res.output;
  EXPECT_NE(res.output.find("at least one experiment or circuit table is required"), std::string::npos) << res.output;
}

TEST(CliCircuits, MeanAblationOfOnePairIsRefusedBeforeAnyWork) {
  CircuitRun r;
  r.write("[[circuit]]\nname = \"c\"\nablation = \"mean\"\npairs = 1\n");
  const auto res = r.run();
  EXPECT_EQ(res.code, 2) << res.output;
  EXPECT_NE(res.output.find("circuit[0].pairs: mean ablation over one pair ablates every edge to the clean run"),
            std::string::npos) << res.output;
  EXPECT_EQ(std::count(res.output.begin(), res.output.end(), '\n'), 1) << res.output;
  EXPECT_FALSE(fs::exists(r.out));
}

TEST(CliCircuits, CorruptedAblationOfIdenticalPromptsIsRefused) {
  CircuitRun r;
  const fs::path pairs = r.dir.path() / "same.jsonl";
  std::ofstream(pairs) << "{\"clean\": [763, 890, 970], \"corrupted\": [763, 890, 970], \"answer\": 657, \"wrong\": 355}\n"
                       << "{\"clean\": [308, 984, 715], \"corrupted\": [308, 984, 715], \"answer\": 766, \"wrong\": 677}\n";
  r.write("[[circuit]]\nname = \"c\"\n", pairs);
  const auto res = r.run();
  EXPECT_EQ(res.code, 2) << res.output;
  EXPECT_NE(res.output.find("circuit[0].ablation: every pair's clean and corrupted prompts are the same tokens"),
            std::string::npos) << res.output;
}

TEST(CliCircuits, UndefinedRecoveryIsStoredAsNanUnderAllowNonfinite) {
  CircuitRun r;
  r.write("[[circuit]]\nname = \"c\"\nablation = \"mean\"\npairs = 1\n");
  const auto res = r.run("--allow-nonfinite");
  ASSERT_EQ(res.code, 0) << res.output;
  EXPECT_NE(res.output.find("recovered undefined, stored as NaN: the clean and all-ablated logit differences agree"),
            std::string::npos) << res.output;
  EXPECT_EQ(res.output.find("recover 0%"), std::string::npos) << res.output;
  EXPECT_TRUE(std::isnan(attribute(r.out, "/circuits/c", "recovered")));
  const H5File f(r.out, H5Mode::ReadOnly);
  for (float x : f.read_floats("/circuits/c/faithfulness/recovered")) EXPECT_TRUE(std::isnan(x)) << x;
}

}  // namespace
}  // namespace causeway
