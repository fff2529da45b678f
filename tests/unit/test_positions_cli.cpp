// `causeway run` and positions (issue 10, A10 and C): clean and corrupted prompts of different
// lengths are refused with the line (they used to overrun the token table: "malloc():
// corrupted top size"), per-position sweeps over prompts of different lengths are refused
// before any file is made, and a named-position run labels its axis with the names.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_support.h"
#include "core/utf8.h"
#include "io/hdf5_file.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using fixtures::read_strings;
using fixtures::TempDir;
const fs::path kTiny = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2";

// Writes the pairs and a config with `experiments`; returns the config path.
fs::path write_job(const TempDir& dir, const std::string& pairs, const std::string& experiments) {
  std::ofstream(dir.path() / "pairs.jsonl") << pairs;
  const fs::path config = dir.path() / "run.toml";
  std::ofstream(config) << "[model]\npath = \"" << kTiny.string() << "\"\nthreads = 1\n"
                        << "[data]\nfile = \"pairs.jsonl\"\n[output]\npath = \"out.h5\"\n"
                        << experiments;
  return config;
}

const std::string kHeads = "[[experiment]]\nname = \"heads\"\nsweep = \"attn_head_out\"\npositions = \"all\"\n";
const std::string kResid = "[[experiment]]\nname = \"resid\"\nsweep = \"resid_pre\"\npositions = \"each\"\n";

TEST(PositionsCli, CleanAndCorruptedOfDifferentLengthsAreRefusedWithTheLine) {
  TempDir dir("a10");
  // The corrupted prompt is longer than every clean one: the case that overran the heap.
  const fs::path config = write_job(
      dir,
      R"({"clean": [763, 890, 970, 680, 446, 444, 548, 898], "corrupted": [828, 890, 970, 680, 446, 444, 548, 898], "answer": 657, "wrong": 355})"
      "\n"
      R"({"clean": [308, 984, 715, 601, 950], "corrupted": [308, 984, 715, 356, 950, 974, 329, 643, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], "answer": 766, "wrong": 677})"
      "\n",
      kHeads);
  const fixtures::CliResult r = fixtures::run_causeway("run " + config.string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("causeway: error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pairs.jsonl: line 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("clean has 5 tokens but corrupted has 18"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "out.h5"));
}

TEST(PositionsCli, PerPositionSweepOverPromptsOfDifferentLengthsIsRefused) {
  TempDir dir("ragged");
  const std::string pairs =
      R"({"clean": [763, 890, 970, 680, 446], "corrupted": [828, 890, 970, 680, 446], "answer": 657, "wrong": 355})"
      "\n"
      R"({"clean": [308, 984, 715, 601, 950, 972, 329, 643], "corrupted": [308, 984, 715, 356, 950, 974, 329, 643], "answer": 766, "wrong": 677})"
      "\n";
  const fs::path config = write_job(dir, pairs, kHeads + kResid);
  const fixtures::CliResult r = fixtures::run_causeway("run " + config.string());
  EXPECT_EQ(r.code, 2) << r.output;
  for (const char* part : {"experiment[1].positions", "different lengths", "line 1: 5 tokens",
                           "line 2: 8 tokens", "positions = \"named\"", "one length"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << " not in: " << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "out.h5"));
  // Without the per-position experiment the same data runs.
  const fs::path heads_only = write_job(dir, pairs, kHeads);
  const fixtures::CliResult ok = fixtures::run_causeway("run " + heads_only.string() + " --quiet");
  EXPECT_EQ(ok.code, 0) << ok.output;
}

TEST(PositionsCli, NamedRunLabelsItsAxisWithTheNames) {
  TempDir dir("named");
  const fs::path config = write_job(
      dir,
      R"({"clean": [763, 890, 970, 680, 446], "corrupted": [828, 890, 970, 680, 446], "answer": 657, "wrong": 355, "positions": {"X": 0, "END": -1}})"
      "\n"
      R"({"clean": [308, 984, 715, 601, 950, 972, 329, 643], "corrupted": [308, 984, 715, 356, 950, 974, 329, 643], "answer": 766, "wrong": 677, "positions": {"X": 3, "END": 7}})"
      "\n",
      "[[experiment]]\nname = \"resid\"\nsweep = \"resid_pre\"\npositions = \"named\"\n");
  const fixtures::CliResult r = fixtures::run_causeway("run " + config.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("pos END"), std::string::npos) << "summary names the position: " << r.output;
  const fs::path out = dir.path() / "out.h5";
  EXPECT_EQ(read_strings(out, "/experiments/resid/axes/pos"), (std::vector<std::string>{"X", "END"}));
  EXPECT_EQ(read_strings(out, "/data/position_names"), (std::vector<std::string>{"X", "END"}));
  H5File f(out, H5Mode::ReadOnly);
  EXPECT_EQ(f.read_ints("/data/named_positions"), (std::vector<int32_t>{0, 4, 3, 7}));
  std::vector<int64_t> shape;
  const std::vector<float> effect = f.read_floats("/experiments/resid/effect", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 2, 2}));
  for (float v : effect) EXPECT_FALSE(std::isnan(v));
  EXPECT_EQ(f.read_string_attribute("/experiments/resid", "positions"), "named");
  // Token labels: the two prompts share no token at any position, so position numbers.
  const std::vector<std::string> labels = read_strings(out, "/data/position_labels");
  ASSERT_EQ(labels.size(), 8u);
  EXPECT_EQ(labels[0], "pos 0");
  EXPECT_EQ(labels[7], "pos 7");
  for (const std::string& l : labels) EXPECT_TRUE(is_valid_utf8(l)) << l;
}

}  // namespace
}  // namespace causeway
