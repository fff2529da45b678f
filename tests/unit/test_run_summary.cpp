// The summary `causeway run` prints: each experiment's header names the chosen metric's
// baselines and the no-effect value its list is ranked from, and the list is the cells
// furthest from that value, as an in-process sweep of the same request computes them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "cli_support.h"
#include "patching/sweep.h"
#include "tiny_model.h"

namespace causeway {
namespace {

using fixtures::golden_pairs;
using fixtures::tiny_model;

struct Printed {
  std::string header;
  std::vector<double> values;  // the listed means, in printed order
};

// The header line starting "NAME (" and the indented lines after it.
Printed section(const std::string& output, const std::string& name) {
  Printed p;
  std::istringstream in(output);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (!inside && line.rfind(name + " (", 0) == 0) {
      p.header = line;
      inside = true;
    } else if (inside && line.rfind("  ", 0) == 0) {
      p.values.push_back(std::stod(line.substr(line.find_last_of(' ') + 1)));
    } else if (inside) {
      break;
    }
  }
  return p;
}

std::string fixed3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  return buf;
}

double average(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

SweepResult heads(MetricKind metric, Direction direction) {
  SweepRequest req;
  req.spec.kind = SweepKind::HeadOut;
  req.spec.by_pos = true;
  req.metric = metric;
  req.direction = direction;
  return SweepRunner(tiny_model(), golden_pairs(), req).run();
}

// The k means furthest from `reference`, strongest first.
std::vector<double> furthest(const std::vector<float>& mean, double reference, size_t k) {
  std::vector<double> v;
  for (float m : mean)
    if (!std::isnan(m)) v.push_back(m);
  std::sort(v.begin(), v.end(), [&](double a, double b) { return std::abs(a - reference) > std::abs(b - reference); });
  v.resize(std::min(k, v.size()));
  return v;
}

void expect_listed(const Printed& p, const std::vector<float>& mean, double reference) {
  const std::vector<double> want = furthest(mean, reference, 8);
  ASSERT_EQ(p.values.size(), want.size()) << p.header;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(p.values[i], want[i], 1.5e-4) << p.header << " row " << i;
}

class RunSummary : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fixtures::TempDir("summary");
    const auto config = dir_->path() / "run.toml";
    std::ofstream(config) << "[model]\npath = \"" << (fixtures::kDataDir / "tiny-gpt2").string()
                          << "\"\nthreads = 1\n[data]\nfile = \""
                          << (fixtures::kDataDir / "tiny-gpt2-patching-pairs.jsonl").string()
                          << "\"\n[output]\npath = \"" << (dir_->path() / "run.h5").string() << "\"\n"
                          << "[[experiment]]\nname = \"noising_normalized\"\nsweep = \"attn_head_out\"\n"
                             "positions = \"each\"\ndirection = \"noising\"\nmetric = \"normalized\"\n"
                          << "[[experiment]]\nname = \"noising_ld\"\nsweep = \"attn_head_out\"\n"
                             "positions = \"each\"\ndirection = \"noising\"\n"
                          << "[[experiment]]\nname = \"denoising_prob\"\nsweep = \"attn_head_out\"\n"
                             "positions = \"each\"\nmetric = \"prob\"\n";
    result_ = new fixtures::CliResult(fixtures::run_causeway("run " + config.string()));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete dir_;
  }
  static inline fixtures::TempDir* dir_ = nullptr;
  static inline fixtures::CliResult* result_ = nullptr;
};

// A noising run's no-effect value is 1 (normalized): its strongest cells are those far below
// 1, and a ranking by |mean| would list cells near 1 first.
TEST_F(RunSummary, NormalizedNoisingIsRankedByDistanceFromOne) {
  ASSERT_EQ(result_->code, 0) << result_->output;
  const Printed p = section(result_->output, "noising_normalized");
  const SweepResult r = heads(MetricKind::Normalized, Direction::Noising);
  EXPECT_NE(p.header.find("ranked by |mean - no effect| where no effect = 1.000"), std::string::npos) << p.header;
  EXPECT_NE(p.header.find("clean normalized 1.000, corrupted normalized 0.000 (logit_diff: clean " +
                          fixed3(average(r.baselines.clean_ld)) + ", corrupted " +
                          fixed3(average(r.baselines.corrupted_ld)) + ")"),
            std::string::npos)
      << p.header;
  expect_listed(p, r.mean, 1.0);
}

// Raw logit differences: the mean is the plain mean over pairs and no effect is the clean run's
// own logit difference.
TEST_F(RunSummary, LogitDiffNoisingSummarizesRawLogitDifferences) {
  ASSERT_EQ(result_->code, 0) << result_->output;
  const Printed p = section(result_->output, "noising_ld");
  const SweepResult r = heads(MetricKind::LogitDiff, Direction::Noising);
  const double clean = average(r.baselines.clean_ld), corrupted = average(r.baselines.corrupted_ld);
  EXPECT_NE(p.header.find("clean logit_diff " + fixed3(clean) + ", corrupted logit_diff " + fixed3(corrupted)),
            std::string::npos)
      << p.header;
  EXPECT_NE(p.header.find("where no effect = " + fixed3(clean)), std::string::npos) << p.header;
  expect_listed(p, r.mean, clean);
}

TEST_F(RunSummary, ProbHeaderPrintsProbabilityBaselines) {
  ASSERT_EQ(result_->code, 0) << result_->output;
  const Printed p = section(result_->output, "denoising_prob");
  const SweepResult r = heads(MetricKind::AnswerProb, Direction::Denoising);
  const double clean = average(r.baselines.clean_metric), corrupted = average(r.baselines.corrupted_metric);
  EXPECT_NE(p.header.find("clean prob " + fixed3(clean) + ", corrupted prob " + fixed3(corrupted)),
            std::string::npos)
      << p.header;
  EXPECT_NE(p.header.find("where no effect = " + fixed3(corrupted)), std::string::npos) << p.header;
  expect_listed(p, r.mean, corrupted);
}

}  // namespace
}  // namespace causeway
