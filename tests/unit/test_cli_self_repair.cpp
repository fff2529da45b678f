// `causeway run` with the kinds of issue 24: direct_logit, logit_lens and self_repair run as
// work items and write one dataset per self-repair quantity with its axes; the summary ranks
// components by self-repair; the dry run sizes them; bad keys are refused naming the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli_support.h"
#include "io/hdf5_file.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using fixtures::TempDir;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";

fs::path write_job(const TempDir& dir, const std::string& experiments) {
  const fs::path config = dir.path() / "run.toml";
  std::ofstream(config) << "[model]\npath = \"" << (kData / "tiny-gpt2").string() << "\"\nthreads = 1\n"
                        << "[data]\nfile = \"" << (kData / "tiny-gpt2-patching-pairs.jsonl").string()
                        << "\"\n[output]\npath = \"out.h5\"\n" << experiments;
  return config;
}

const char* kAllKinds = R"(
[[experiment]]
name = "dla"
kind = "direct_logit"
sweep = "attn_head_out"

[[experiment]]
name = "lens"
kind = "logit_lens"
positions = "each"

[[experiment]]
name = "repair"
kind = "self_repair"
sweep = "attn_head_out"
positions = "all"
ablation = "zero"
)";

TEST(SelfRepairCli, RunsEveryKindAndWritesEachQuantity) {
  TempDir dir("self-repair-cli");
  const fs::path config = write_job(dir, kAllKinds);
  const fixtures::CliResult r = fixtures::run_causeway("run " + config.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("repair (self_repair, attn_head_out, zero ablation): ranked by |self_repair|"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("lens (logit_lens, accumulated_resid, logit_diff)"), std::string::npos) << r.output;
  H5File f(dir.path() / "out.h5", H5Mode::ReadOnly);
  for (const char* q : {"total", "direct", "ln_share", "self_repair", "repair_rest"}) {
    std::vector<int64_t> shape;
    const auto v = f.read_floats(std::string("/experiments/repair/") + q, &shape);
    EXPECT_EQ(shape, (std::vector<int64_t>{6, 2, 4})) << q;
    std::vector<int64_t> mean_shape;
    f.read_floats(std::string("/experiments/repair/") + q + "_mean", &mean_shape);
    EXPECT_EQ(mean_shape, (std::vector<int64_t>{2, 4})) << q;
  }
  // self_repair = total - direct, cell by cell, as the split datasets hold them.
  const auto total = f.read_floats("/experiments/repair/total"), direct = f.read_floats("/experiments/repair/direct"),
             repair = f.read_floats("/experiments/repair/self_repair");
  for (size_t i = 0; i < total.size(); ++i) EXPECT_NEAR(repair[i], total[i] - direct[i], 1e-6);
  std::vector<int64_t> lens_shape;
  f.read_floats("/experiments/lens/effect", &lens_shape);
  EXPECT_EQ(lens_shape, (std::vector<int64_t>{6, 3, 8}));
  EXPECT_EQ(f.read_string_attribute("/experiments/repair", "ablation"), "zero");
  EXPECT_EQ(f.read_string_attribute("/experiments/dla", "run"), "clean");
}

TEST(SelfRepairCli, LensTopTokensAreWrittenAndRefusedUnderTensorParallelism) {
  TempDir dir("self-repair-topk");
  const fs::path config = write_job(dir, "[[experiment]]\nname = \"lens\"\nkind = \"logit_lens\"\n"
                                         "positions = \"each\"\ntop_k = 3\n");
  const fixtures::CliResult r = fixtures::run_causeway("run " + config.string());
  ASSERT_EQ(r.code, 0) << r.output;
  H5File f(dir.path() / "out.h5", H5Mode::ReadOnly);
  std::vector<int64_t> shape;
  const auto logits = f.read_floats("/experiments/lens/top_logits", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{6, 3, 8, 3}));
  const auto ids = f.read_ints("/experiments/lens/top_tokens");
  ASSERT_EQ(ids.size(), logits.size());
  for (size_t i = 0; i < ids.size(); i += 3) {
    EXPECT_GE(ids[i], 0);
    EXPECT_GE(logits[i], logits[i + 1]);  // highest first
    EXPECT_GE(logits[i + 1], logits[i + 2]);
  }
  const fixtures::CliResult tp = fixtures::run_causeway("run " + config.string() + " --tp 2 --overwrite");
  EXPECT_NE(tp.code, 0);
  EXPECT_NE(tp.output.find("lists the lens's top_k tokens"), std::string::npos) << tp.output;
}

TEST(SelfRepairCli, DryRunSizesTheNewKinds) {
  TempDir dir("self-repair-dry");
  const fixtures::CliResult r = fixtures::run_causeway("run " + write_job(dir, kAllKinds).string() + " --dry-run");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("[layer 2, head 4, quantity 5]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[resid 3, pos 8]"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "out.h5"));
}

TEST(SelfRepairCli, BadKeysAreRefusedNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"kind = \"logit_lens\"\nsweep = \"resid_pre\"", "experiment[0].sweep"},
      {"kind = \"direct_logit\"\nsweep = \"resid_pre\"", "direct_logit attributes attn_head_out"},
      {"kind = \"direct_logit\"\nsweep = \"mlp_out\"\nmetric = \"kl\"", "experiment[0].metric"},
      {"kind = \"direct_logit\"\nsweep = \"mlp_out\"\nrun = \"both\"", "experiment[0].run"},
      {"kind = \"self_repair\"\nsweep = \"resid_pre\"", "self_repair measures attn_head_out"},
      {"kind = \"self_repair\"\nsweep = \"mlp_out\"\nwindow = 2", "experiment[0].window"},
      {"kind = \"direct_logit\"\nsweep = \"mlp_out\"\ntop_k = 3", "only the logit lens lists top tokens"},
      {"kind = \"logit_lens\"\ntop_k = 0", "experiment[0].top_k"},
  };
  for (const auto& [body, expected] : cases) {
    TempDir dir("self-repair-bad");
    const fs::path config = write_job(dir, std::string("[[experiment]]\nname = \"x\"\n") + body + "\n");
    const fixtures::CliResult r = fixtures::run_causeway("run " + config.string());
    EXPECT_NE(r.code, 0) << body;
    EXPECT_NE(r.output.find(expected), std::string::npos) << body << "\n" << r.output;
    EXPECT_FALSE(fs::exists(dir.path() / "out.h5"));
  }
}

}  // namespace
}  // namespace causeway
