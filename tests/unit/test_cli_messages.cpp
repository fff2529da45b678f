// Messages that name what the user typed (issue 19, B14): a --tp given on the command line is
// blamed as --tp, not as a config key; numeric options say what they need; an empty --text is
// [BOS] where the tokenizer puts BOS first. And the dry run (B12, C): the busiest rank's FLOPs
// and the idle ranks, and --tp alone sizes one replica.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "cli_support.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";
const fs::path kTiny = kData / "tiny-gpt2";
using fixtures::run_causeway;

// A run config on the tiny model and its six pairs; `experiment` is one [[experiment]] table.
fs::path write_config(const fs::path& dir, const std::string& experiment, const std::string& parallel = "") {
  const fs::path p = dir / "run.toml";
  std::ofstream(p) << "[model]\npath = \"" << kTiny.string() << "\"\nthreads = 1\n[data]\nfile = \""
                   << (kData / "tiny-gpt2-patching-pairs.jsonl").string() << "\"\n[output]\npath = \""
                   << (dir / "r.h5").string() << "\"\n[parallel]\npairs_per_item = 1\n"
                   << parallel << "\n[[experiment]]\n" << experiment;
  return p;
}
const char* kLayers = "name = \"layers\"\nsweep = \"resid_pre\"\npositions = \"all\"\n";
const char* kEdges = "name = \"eap\"\nkind = \"edges\"\nmethod = \"eap\"\n";

TEST(CliMessages, LogitsTpIsNamedAsTheFlag) {
  const auto r = run_causeway("logits --model " + kTiny.string() + " --tokens 1 --tp 4");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("causeway: error: --tp: 4 does not divide the 1 ranks of the job"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("parallel.tp"), std::string::npos) << r.output;
}

TEST(CliMessages, RunBlamesTpWhereItCameFrom) {
  fixtures::TempDir tmp("messages");
  const fs::path config = write_config(tmp.path(), kEdges);
  for (const char* dry : {"", " --dry-run"}) {
    const auto r = run_causeway("run " + config.string() + " --quiet --tp 2" + dry);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("causeway: error: --tp: 2: edge experiments and circuits run with tp = 1"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("parallel.tp"), std::string::npos) << r.output;
  }
  const fs::path in_config = write_config(tmp.path(), kEdges, "tp = 2\n");
  const auto r = run_causeway("run " + in_config.string() + " --quiet --dry-run --ranks 2");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(in_config.string() + ": parallel.tp: 2: edge experiments"), std::string::npos) << r.output;
}

TEST(CliMessages, EmptyTextIsBosWhereTheTokenizerPutsItFirst) {
  fixtures::TempDir tmp("messages");
  const fs::path m = tmp.path() / "model";
  fs::create_directories(m);
  for (const auto& e : fs::directory_iterator(kTiny)) fs::copy(e.path(), m / e.path().filename());
  std::ofstream(m / "tokenizer_config.json") << R"({"add_bos_token": true, "bos_token": "<|endoftext|>"})";
  auto r = run_causeway("logits --model " + m.string() + " --text \"\" --top 1");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("input: 1 tokens: 999:'<|endoftext|>'"), std::string::npos) << r.output;
  r = run_causeway("logits --model " + kTiny.string() + " --text \"\" --prepend-bos --top 1");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("input: 1 tokens: 999:'<|endoftext|>'"), std::string::npos) << r.output;
  // GPT-2's tokenizer puts no BOS first: an empty text is nothing to run, and --text says so.
  r = run_causeway("logits --model " + kTiny.string() + " --text \"\"");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("causeway: error: --text: is empty, and this tokenizer puts no BOS first"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("--tokens"), std::string::npos) << r.output;
}

TEST(CliMessages, NumericOptionsSayWhatTheyNeed) {
  fixtures::TempDir tmp("messages");
  const std::string config = write_config(tmp.path(), kLayers).string();
  const std::string logits = "logits --model " + kTiny.string() + " --tokens 1 ";
  const std::string ioi =
      "data ioi --tokenizer " + kTiny.string() + " --out " + (tmp.path() / "p.jsonl").string() + " ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"run " + config + " --dry-run --ranks 0", "--ranks: must be a positive integer, got 0"},
      {"run " + config + " --dry-run --tp 0", "--tp: must be a positive integer, got 0"},
      {"run " + config + " --dry-run --tp -2", "--tp: must be a positive integer, got -2"},
      {"run " + config + " --dry-run --ranks 3000000000", "--ranks: must be at most 2147483647, got 3000000000"},
      {"run " + config + " --dry-run --threads -1", "--threads: must be a non-negative integer, got -1"},
      {"run " + config + " --dry-run --top x", "--top: must be a non-negative integer, got x"},
      {logits + "--tp 0", "--tp: must be a positive integer, got 0"},
      {logits + "--top 0", "--top: must be a positive integer, got 0"},
      {logits + "--threads 1.5", "--threads: must be a non-negative integer, got 1.5"},
      {ioi + "--n 0", "--n: must be a positive integer, got 0"},
      {ioi + "--template 99", "--template: must be an integer from -1 to "},
      {ioi + "--seed -1", "--seed: must be an integer from 0 to 18446744073709551615, got -1"},
      {ioi + "--seed 18446744073709551616",
       "--seed: must be an integer from 0 to 18446744073709551615, got 18446744073709551616"},
      {ioi + "--seed 1e3", "--seed: must be an integer from 0 to 18446744073709551615, got 1e3"},
      {"train " + config + " --threads -3", "--threads: must be a non-negative integer, got -3"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = run_causeway(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << ": " << r.output;
    EXPECT_EQ(r.output.find("not in range"), std::string::npos) << args << ": " << r.output;
  }
  EXPECT_FALSE(fs::exists(tmp.path() / "p.jsonl"));
}

TEST(CliMessages, SeedsTakeTheWholeUnsignedRange) {
  if (!fixtures::gpt2_tokenizer()) GTEST_SKIP() << "no GPT-2 tokenizer in " << fixtures::kGpt2TokenizerDir;
  fixtures::TempDir tmp("messages");
  const auto r = run_causeway("data ioi --n 2 --seed 18446744073709551615 --tokenizer " +
                              fixtures::kGpt2TokenizerDir.string() + " --out " + (tmp.path() / "p.jsonl").string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("seed 18446744073709551615,"), std::string::npos) << r.output;
}

// "compute: X FLOP in all, Y on the busiest rank" as (X, Y); the work item count from "N work items".
struct DryRunNumbers {
  double all = 0, busiest = 0;
  long long items = 0;
};
DryRunNumbers numbers_of(const std::string& out) {
  DryRunNumbers n;
  std::smatch m;
  if (std::regex_search(out, m, std::regex("compute: ([0-9.e+]+) FLOP in all, ([0-9.e+]+) on the busiest rank")))
    n.all = std::atof(m[1].str().c_str()), n.busiest = std::atof(m[2].str().c_str());
  if (std::regex_search(out, m, std::regex("; ([0-9]+) work items,"))) n.items = std::atoll(m[1].str().c_str());
  return n;
}

TEST(CliDryRun, ReportsTheBusiestRankAndTheIdleOnes) {
  fixtures::TempDir tmp("dry-run");
  const std::string config = write_config(tmp.path(), kLayers).string();
  // Six pairs x two layer slabs: 12 equal items.
  const auto four = run_causeway("run " + config + " --dry-run --ranks 4");
  ASSERT_EQ(four.code, 0) << four.output;
  const DryRunNumbers a = numbers_of(four.output);
  ASSERT_EQ(a.items, 12) << four.output;
  ASSERT_GT(a.all, 0.0) << four.output;
  EXPECT_NEAR(a.busiest / (a.all / 4), 1.0, 0.01) << four.output;
  EXPECT_EQ(four.output.find("idle:"), std::string::npos) << four.output;
  // 24 ranks for 12 items: half are idle, and the busiest runs one item, 1/12 of the job.
  const auto many = run_causeway("run " + config + " --dry-run --ranks 24");
  ASSERT_EQ(many.code, 0) << many.output;
  const DryRunNumbers b = numbers_of(many.output);
  EXPECT_NEAR(b.busiest / (b.all / 12), 1.0, 0.01) << many.output;
  EXPECT_NE(many.output.find("idle: 12 of the 24 ranks would get no work item (12 work items for 24 replicas)"),
            std::string::npos)
      << many.output;
  // Five ranks: contiguous shares of 2, 2, 3, 2, 3 items.
  const auto five = run_causeway("run " + config + " --dry-run --ranks 5");
  const DryRunNumbers c = numbers_of(five.output);
  EXPECT_NEAR(c.busiest / (c.all * 3 / 12), 1.0, 0.01) << five.output;
  // Under tp the two ranks of a replica share its items.
  const auto tp = run_causeway("run " + config + " --dry-run --ranks 8 --tp 2");
  const DryRunNumbers d = numbers_of(tp.output);
  EXPECT_NEAR(d.busiest / (d.all * 3 / 12 / 2), 1.0, 0.01) << tp.output;
}

TEST(CliDryRun, TpAloneSizesOneReplica) {
  fixtures::TempDir tmp("dry-run");
  const std::string config = write_config(tmp.path(), kLayers).string();
  const auto r = run_causeway("run " + config + " --dry-run --tp 2");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("ranks: 2 = 1 replica x 2 tensor-parallel shards"), std::string::npos) << r.output;
  const auto four = run_causeway("run " + config + " --dry-run --tp 4");
  EXPECT_NE(four.output.find("ranks: 4 = 1 replica x 4 tensor-parallel shards"), std::string::npos) << four.output;
}

}  // namespace
}  // namespace causeway
