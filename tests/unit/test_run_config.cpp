// `causeway run` configs: errors name the table and key; a run on the tiny model writes the
// result layout of DESIGN.md section 6.
#include <gtest/gtest.h>
#include <hdf5_hl.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cli/run_config.h"
#include "core/error.h"
#include "io/hdf5_file.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";

const char* kBase = R"([model]
path = "m"
[data]
file = "pairs.jsonl"
[output]
path = "out.h5"
)";

std::string parse_error(const std::string& text) {
  try {
    RunConfig::parse(text, "exp.toml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, ParsesExperimentsWithDefaults) {
  const RunConfig c = RunConfig::parse(std::string(kBase) + R"(
[[experiment]]
name = "heads"
sweep = "attn_head_out"
positions = "all"
direction = "noising"
metric = "kl"
[[experiment]]
name = "abl"
kind = "ablation"
ablation = "resample"
samples = 3
sweep = "mlp_out"
)", "dir/exp.toml");
  ASSERT_EQ(c.experiments.size(), 2u);
  EXPECT_EQ(c.model, fs::path("dir/m"));
  EXPECT_EQ(c.experiments[0].request.spec.kind, SweepKind::HeadOut);
  EXPECT_FALSE(c.experiments[0].request.spec.by_pos);
  EXPECT_EQ(c.experiments[0].request.direction, Direction::Noising);
  EXPECT_EQ(c.experiments[0].request.metric, MetricKind::KlFromClean);
  EXPECT_EQ(c.experiments[1].request.source, PatchSource::Resample);
  EXPECT_EQ(c.experiments[1].request.resample_samples, 3);
}

TEST(RunConfig, ErrorsNameTableAndKey) {
  const std::string exp = "\n[[experiment]]\nname = \"e\"\n";
  EXPECT_NE(parse_error(std::string(kBase) + exp + "sweep = \"heads\"\n").find("experiment[0].sweep"), std::string::npos);
  EXPECT_NE(parse_error(std::string(kBase) + exp + "sweep = \"resid_pre\"\nmetric = \"acc\"\n").find("experiment[0].metric"), std::string::npos);
  EXPECT_NE(parse_error(std::string(kBase) + exp + "sweep = \"resid_pre\"\ndirection = \"up\"\n").find("experiment[0].direction"), std::string::npos);
  EXPECT_NE(parse_error(std::string(kBase) + exp + "sweep = \"resid_pre\"\ncolour = 1\n").find("experiment[0].colour"), std::string::npos);
  EXPECT_NE(parse_error(std::string(kBase) + exp + "sweep = 3\n").find("experiment[0].sweep"), std::string::npos);
  EXPECT_NE(parse_error(std::string(kBase)).find("[[experiment]]"), std::string::npos);
  EXPECT_NE(parse_error("[model]\npath = \"m\"\n").find("[data]"), std::string::npos);
  EXPECT_NE(parse_error("[model\n").find("exp.toml"), std::string::npos);
  EXPECT_NE(parse_error(std::string(kBase) + exp + "sweep = \"resid_pre\"\n" + exp + "sweep = \"resid_pre\"\n").find("used twice"),
            std::string::npos);
}

int run_cli(const std::string& args, std::string* output = nullptr) {
  const std::string cmd = std::string(CAUSEWAY_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  std::string out;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(RunCommand, WritesTheResultLayoutWithDimensionScales) {
  const fs::path dir = fs::temp_directory_path() / ("causeway-run-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "exp.toml") << "[model]\npath = \"" << (kData / "tiny-gpt2").string()
                                  << "\"\n[data]\nfile = \"" << (kData / "tiny-gpt2-patching-pairs.jsonl").string()
                                  << "\"\n[output]\npath = \"r.h5\"\n"
                                  << "[[experiment]]\nname = \"heads\"\nsweep = \"attn_head_out\"\npositions = \"each\"\n"
                                  << "[[experiment]]\nname = \"abl\"\nkind = \"ablation\"\nablation = \"zero\"\nsweep = \"mlp_out\"\n";
  std::string out;
  ASSERT_EQ(run_cli("run " + (dir / "exp.toml").string(), &out), 0) << out;
  H5File f(dir / "r.h5", H5Mode::ReadOnly);
  std::vector<int64_t> shape;
  const auto effect = f.read_floats("/experiments/heads/effect", &shape);
  ASSERT_EQ(shape.size(), 4u);  // [pair, layer, pos, head]
  EXPECT_EQ(shape[1], 2);
  EXPECT_EQ(shape[3], 4);
  f.read_floats("/experiments/heads/mean", &shape);
  EXPECT_EQ(shape.size(), 3u);
  EXPECT_EQ(f.read_string_attribute("/experiments/heads", "kind"), "activation");
  EXPECT_EQ(f.read_string_attribute("/experiments/heads", "direction"), "denoising");
  EXPECT_EQ(f.read_string_attribute("/experiments/heads", "metric"), "logit_diff");
  EXPECT_EQ(f.read_string_attribute("/experiments/abl", "ablation"), "zero");
  EXPECT_NE(f.read_string_attribute("/meta", "config").find("attn_head_out"), std::string::npos);
  // Each axis of effect has a dimension scale named after it.
  H5Handle ds(H5Dopen2(f.id(), "/experiments/heads/effect", H5P_DEFAULT));
  const char* expected[] = {"pair", "layer", "pos", "head"};
  for (unsigned d = 0; d < 4; ++d) {
    int n = H5DSget_num_scales(ds.get(), d);
    EXPECT_EQ(n, 1) << "axis " << d;
    H5Handle scale(H5Dopen2(f.id(), (std::string("/experiments/heads/axes/") + expected[d]).c_str(), H5P_DEFAULT));
    EXPECT_GT(H5DSis_attached(ds.get(), scale.get(), d), 0) << expected[d];
  }
  // Running again without --overwrite is refused.
  EXPECT_EQ(run_cli("run " + (dir / "exp.toml").string(), &out), 2);
  EXPECT_NE(out.find("--overwrite"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace causeway
