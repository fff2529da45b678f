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

TEST(RunConfig, AttributionOptionsAndTheirErrors) {
  const std::string exp = "\n[[experiment]]\nname = \"e\"\nkind = \"attribution\"\nsweep = \"attn_head_q\"\n";
  const RunConfig c = RunConfig::parse(std::string(kBase) + exp + "qk_fix = true\ngrad_drop = true\nverify_top = 5\n", "exp.toml");
  ASSERT_EQ(c.experiments.size(), 1u);
  EXPECT_EQ(c.experiments[0].kind, "attribution");
  EXPECT_TRUE(c.experiments[0].attribution.qk_fix);
  EXPECT_TRUE(c.experiments[0].attribution.grad_drop);
  EXPECT_EQ(c.experiments[0].verify_top, 5);
  EXPECT_NE(parse_error(std::string(kBase) + exp + "qk_fix = \"yes\"\n").find("experiment[0].qk_fix"), std::string::npos);
  EXPECT_NE(parse_error(std::string(kBase) + exp + "metric = \"prob\"\n").find("experiment[0].metric"), std::string::npos);
  EXPECT_NE(parse_error(std::string(kBase) + exp + "verify_top = -1\n").find("experiment[0].verify_top"), std::string::npos);
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
  // Attribution with verification writes its estimates beside true patching of the top cells.
  std::ofstream(dir / "atp.toml") << "[model]\npath = \"" << (kData / "tiny-gpt2").string()
                                  << "\"\n[data]\nfile = \"" << (kData / "tiny-gpt2-patching-pairs.jsonl").string()
                                  << "\"\n[output]\npath = \"a.h5\"\n"
                                  << "[[experiment]]\nname = \"atp\"\nkind = \"attribution\"\nsweep = \"attn_head_out\"\n"
                                  << "positions = \"each\"\nverify_top = 6\n";
  ASSERT_EQ(run_cli("run " + (dir / "atp.toml").string(), &out), 0) << out;
  {
    H5File a(dir / "a.h5", H5Mode::ReadOnly);
    EXPECT_EQ(a.read_string_attribute("/experiments/atp", "kind"), "attribution");
    const auto est = a.read_floats("/experiments/atp/verify/mean_estimate", &shape);
    EXPECT_EQ(shape, std::vector<int64_t>{6});
    const auto act = a.read_floats("/experiments/atp/verify/mean_actual");
    const auto mean = a.read_floats("/experiments/atp/mean");
    const auto cells = a.read_ints("/experiments/atp/verify/cell");
    for (size_t k = 0; k < cells.size(); ++k) EXPECT_EQ(est[k], mean[cells[k]]);
    // The strongest estimated cells really matter: their true effects are not all ~0.
    double moved = 0;
    for (float v : act) moved = std::max(moved, static_cast<double>(std::abs(v)));
    EXPECT_GT(moved, 0.05);
  }
  // Running again without --overwrite is refused.
  EXPECT_EQ(run_cli("run " + (dir / "exp.toml").string(), &out), 2);
  EXPECT_NE(out.find("--overwrite"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace causeway
