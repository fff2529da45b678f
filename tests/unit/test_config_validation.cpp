// Every run-config value is validated before any work starts (issue 10, A7): each bad value is
// one case here, with the file, experiment index and key its message must name. Values that
// need the model or the pairs are checked by RunConfig::check_against on the tiny model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/run_config.h"
#include "cli_support.h"
#include "core/error.h"
#include "tiny_model.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;

const char* kBase = R"([model]
path = "m"
[data]
file = "pairs.jsonl"
[output]
path = "out.h5"
)";

// A config with one valid experiment first, so a bad second one must be named experiment[1].
std::string with_experiment(const std::string& body, const std::string& name = "e") {
  return std::string(kBase) + "[[experiment]]\nname = \"ok\"\nsweep = \"resid_pre\"\n" +
         "[[experiment]]\nname = \"" + name + "\"\n" + body;
}

std::string parse_error(const std::string& text) {
  try {
    RunConfig::parse(text, "configs/x.toml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(accepted)";
}

struct Case {
  const char* what;
  std::string config;
  std::vector<std::string> must_mention;
};

TEST(ConfigValidation, EveryBadValueIsRefusedWhenTheFileIsRead) {
  const std::vector<Case> cases = {
      {"window 0", with_experiment("sweep = \"resid_pre\"\nwindow = 0\n"), {"configs/x.toml: experiment[1].window", "out of range"}},
      {"window past 32 bits", with_experiment("sweep = \"resid_pre\"\nwindow = 4294967297\n"), {"experiment[1].window", "4294967297"}},
      {"batch_rows past 32 bits", with_experiment("sweep = \"resid_pre\"\nbatch_rows = 4294967297\n"), {"experiment[1].batch_rows"}},
      {"negative seed", with_experiment("sweep = \"resid_pre\"\nseed = -1\n"), {"experiment[1].seed"}},
      {"window on attribution", with_experiment("kind = \"attribution\"\nsweep = \"resid_pre\"\nwindow = 2\n"), {"experiment[1].window", "attribution"}},
      {"verify_top past 32 bits", with_experiment("kind = \"attribution\"\nsweep = \"resid_pre\"\nverify_top = 4294967296\n"), {"experiment[1].verify_top"}},
      {"samples 0", with_experiment("kind = \"ablation\"\nablation = \"resample\"\nsweep = \"resid_pre\"\nsamples = 0\n"), {"experiment[1].samples"}},
      {"samples without resample", with_experiment("kind = \"ablation\"\nablation = \"zero\"\nsweep = \"resid_pre\"\nsamples = 3\n"), {"experiment[1].samples", "resample"}},
      {"mean_over without mean", with_experiment("kind = \"ablation\"\nablation = \"zero\"\nsweep = \"resid_pre\"\nmean_over = \"all\"\n"), {"experiment[1].mean_over"}},
      {"mean_over all with patterns", with_experiment("kind = \"ablation\"\nablation = \"mean\"\nsweep = \"attn_head_pattern\"\nmean_over = \"all\"\n"), {"experiment[1].mean_over", "pattern"}},
      {"mean_over all with every head hook", with_experiment("kind = \"ablation\"\nsweep = \"attn_head_every\"\nmean_over = \"all\"\n"), {"experiment[1].mean_over"}},
      {"noise_samples 0", with_experiment("kind = \"noise\"\nsweep = \"resid_pre\"\nnoise_samples = 0\n"), {"experiment[1].noise_samples"}},
      {"noise_scale nan", with_experiment("kind = \"noise\"\nsweep = \"resid_pre\"\nnoise_scale = nan\n"), {"experiment[1].noise_scale", "nan"}},
      {"noise_scale inf", with_experiment("kind = \"noise\"\nsweep = \"resid_pre\"\nnoise_scale = inf\n"), {"experiment[1].noise_scale", "inf"}},
      {"noise_scale 0", with_experiment("kind = \"noise\"\nsweep = \"resid_pre\"\nnoise_scale = 0.0\n"), {"experiment[1].noise_scale"}},
      {"negative noise position", with_experiment("kind = \"noise\"\nsweep = \"resid_pre\"\nnoise_positions = [1, -2]\n"), {"experiment[1].noise_positions", "-2"}},
      {"noise position past 32 bits", with_experiment("kind = \"noise\"\nsweep = \"resid_pre\"\nnoise_positions = [4294967296]\n"), {"experiment[1].noise_positions"}},
      {"noise position twice", with_experiment("kind = \"noise\"\nsweep = \"resid_pre\"\nnoise_positions = [1, 1]\n"), {"experiment[1].noise_positions", "twice"}},
      {"positions = true", with_experiment("sweep = \"mlp_neuron\"\npositions = true\n"), {"experiment[1].positions"}},
      {"positions as a float", with_experiment("sweep = \"mlp_neuron\"\npositions = 2.0\n"), {"experiment[1].positions"}},
      {"negative position", with_experiment("sweep = \"mlp_neuron\"\npositions = -1\n"), {"experiment[1].positions", "outside the prompt"}},
      {"position number on a grid sweep", with_experiment("sweep = \"resid_pre\"\npositions = 3\n"), {"experiment[1].positions", "mlp_neuron"}},
      {"each on mlp_neuron", with_experiment("sweep = \"mlp_neuron\"\npositions = \"each\"\n"), {"experiment[1].positions"}},
      {"all on block_every", with_experiment("sweep = \"block_every\"\npositions = \"all\"\n"), {"experiment[1].positions"}},
      {"name of the activation cache", with_experiment("sweep = \"resid_pre\"\n", "activations"), {"experiment[1].name", "reserved"}},
      {"name '.'", with_experiment("sweep = \"resid_pre\"\n", "."), {"experiment[1].name"}},
      {"name used twice", with_experiment("sweep = \"resid_pre\"\n", "ok"), {"experiment[1].name", "twice"}},
      {"cache hook twice", std::string(kBase) + "cache = [\"blocks.0.attn.hook_z\", \"blocks.0.attn.hook_z\"]\n[[experiment]]\nname = \"e\"\nsweep = \"resid_pre\"\n", {"output.cache", "twice"}},
      {"pairs_per_item past 32 bits", with_experiment("sweep = \"resid_pre\"\n") + "[parallel]\npairs_per_item = 4294967297\n", {"parallel.pairs_per_item"}},
      {"tp past 32 bits", with_experiment("sweep = \"resid_pre\"\n") + "[parallel]\ntp = 4294967297\n", {"parallel.tp"}},
      {"negative threads", "[model]\npath = \"m\"\nthreads = -1\n" + with_experiment("sweep = \"resid_pre\"\n").substr(std::string("[model]\npath = \"m\"\n").size()), {"model.threads"}},
      {"unknown weight dtype", "[model]\npath = \"m\"\ndtype = \"q4\"\n" + with_experiment("sweep = \"resid_pre\"\n").substr(std::string("[model]\npath = \"m\"\n").size()), {"model.dtype", "q4", "bf16"}},
      {"ioi n past 32 bits", "[model]\npath = \"m\"\n[data]\ngenerator = \"ioi\"\nn = 4294967297\n[output]\npath = \"o.h5\"\n[[experiment]]\nname = \"e\"\nsweep = \"resid_pre\"\n", {"data.n"}},
      {"negative ioi seed", "[model]\npath = \"m\"\n[data]\ngenerator = \"ioi\"\nseed = -3\n[output]\npath = \"o.h5\"\n[[experiment]]\nname = \"e\"\nsweep = \"resid_pre\"\n", {"data.seed"}},
  };
  for (const Case& c : cases) {
    const std::string error = parse_error(c.config);
    for (const std::string& m : c.must_mention)
      EXPECT_NE(error.find(m), std::string::npos) << c.what << ": '" << m << "' not in: " << error;
  }
}

TEST(ConfigValidation, GoodValuesStillParse) {
  const RunConfig c = RunConfig::parse(std::string(kBase) + R"(cache = ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
[[experiment]]
name = "neurons"
sweep = "mlp_neuron"
positions = 5
[[experiment]]
name = "trace"
kind = "noise"
sweep = "mlp_out"
window = 2
noise_positions = [0, 2]
noise_scale = 1.5
[[experiment]]
name = "mean"
kind = "ablation"
sweep = "resid_pre"
mean_over = "all"
)", "x.toml");
  EXPECT_EQ(c.experiments[0].request.spec.position, 5);
  EXPECT_EQ(c.experiments[1].request.window, 2);
  EXPECT_EQ(c.experiments[1].request.noise.positions, (std::vector<int>{0, 2}));
  EXPECT_FALSE(c.experiments[2].request.mean_per_position);
}

// The checks that need the model (n_layer = 2) and the pairs (6 pairs of 8 tokens).
std::string check_error(const std::string& experiments, const PairDataset& data = fixtures::golden_pairs()) {
  try {
    RunConfig::parse(std::string(kBase) + experiments, "configs/x.toml").check_against(fixtures::tiny_model().config(), data);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ConfigValidation, ValuesAreCheckedAgainstTheModelAndThePairs) {
  const std::string ok = "[[experiment]]\nname = \"ok\"\nsweep = \"resid_pre\"\n[[experiment]]\nname = \"e\"\n";
  EXPECT_EQ(check_error(ok + "sweep = \"resid_pre\"\nwindow = 2\n"), "(accepted)");
  EXPECT_EQ(check_error(ok + "sweep = \"resid_pre\"\nwindow = 7\n"),
            "configs/x.toml: experiment[1].window: must be between 1 and n_layer (2), got 7");
  const std::string pos = check_error(ok + "sweep = \"mlp_neuron\"\npositions = 8\n");
  EXPECT_NE(pos.find("configs/x.toml: experiment[1].positions: position 8 is outside the prompt"), std::string::npos) << pos;
  EXPECT_EQ(check_error(ok + "sweep = \"mlp_neuron\"\npositions = 7\n"), "(accepted)");
  const std::string noise = check_error(ok + "kind = \"noise\"\nsweep = \"resid_pre\"\nnoise_positions = [1, 8]\n");
  EXPECT_NE(noise.find("experiment[1].noise_positions: position 8 is outside the prompt"), std::string::npos) << noise;
  EXPECT_NE(check_error("[[experiment]]\nname = \"e\"\nsweep = \"resid_pre\"\n").find("(accepted)"), std::string::npos);

  PairDataset one = fixtures::golden_pairs();
  one.pairs.resize(1);
  const std::string resample = check_error(ok + "kind = \"ablation\"\nablation = \"resample\"\nsweep = \"resid_pre\"\n", one);
  EXPECT_NE(resample.find("experiment[1].ablation"), std::string::npos) << resample;
  EXPECT_NE(resample.find("only one pair"), std::string::npos) << resample;

  PairDataset uneven = fixtures::golden_pairs();
  uneven.pairs[2].clean.pop_back();
  uneven.pairs[2].corrupted.pop_back();
  const std::string mean = check_error(ok + "kind = \"ablation\"\nablation = \"mean\"\nsweep = \"resid_pre\"\n", uneven);
  EXPECT_NE(mean.find("experiment[1].ablation: mean ablation needs prompts of one length"), std::string::npos) << mean;
  EXPECT_NE(mean.find("pair 2"), std::string::npos) << mean;

  auto cache = [&](const std::string& hooks) {
    return check_error("cache = [" + hooks + "]\n[[experiment]]\nname = \"e\"\nsweep = \"resid_pre\"\n");
  };
  EXPECT_NE(cache("\"blocks.1.attn.hook_z\", \"blocks.01.attn.hook_z\"").find("output.cache"), std::string::npos);
  EXPECT_NE(cache("\"blocks.1.attn.hook_z\", \"blocks.01.attn.hook_z\"").find("twice"), std::string::npos);
  EXPECT_NE(cache("\"blocks.2.attn.hook_z\"").find("output.cache"), std::string::npos);
  EXPECT_EQ(cache("\"blocks.1.attn.hook_z\", \"hook_embed\""), "(accepted)");
}

// End to end: a value that only the model can refute stops the job before the file exists.
TEST(ConfigValidation, BadValuesStopTheRunBeforeTheFileIsLaidOut) {
  fixtures::TempDir tmp("config-validation");
  const fs::path data = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";
  std::ofstream(tmp.path() / "x.toml") << "[model]\npath = \"" << (data / "tiny-gpt2").string() << "\"\n[data]\nfile = \""
                                       << (data / "tiny-gpt2-patching-pairs.jsonl").string()
                                       << "\"\n[output]\npath = \"r.h5\"\n[[experiment]]\nname = \"ok\"\nsweep = \"resid_pre\"\n"
                                       << "[[experiment]]\nname = \"trace\"\nkind = \"noise\"\nsweep = \"mlp_out\"\n"
                                       << "window = 3\n";
  const auto r = fixtures::run_causeway("run " + (tmp.path() / "x.toml").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("causeway: error: " + (tmp.path() / "x.toml").string() +
                          ": experiment[1].window: must be between 1 and n_layer (2), got 3"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "r.h5"));
}

TEST(ConfigValidation, VerifyTopMustFitTheGrid) {
  fixtures::TempDir tmp("config-validation");
  const fs::path data = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";
  std::ofstream(tmp.path() / "x.toml") << "[model]\npath = \"" << (data / "tiny-gpt2").string() << "\"\n[data]\nfile = \""
                                       << (data / "tiny-gpt2-patching-pairs.jsonl").string()
                                       << "\"\n[output]\npath = \"r.h5\"\n[[experiment]]\nname = \"atp\"\nkind = \"attribution\"\n"
                                       << "sweep = \"resid_pre\"\npositions = \"all\"\nverify_top = 3\n";
  const auto r = fixtures::run_causeway("run " + (tmp.path() / "x.toml").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("experiment[0].verify_top: must be at most the grid's 2 cells, got 3"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "r.h5"));
}

TEST(ConfigValidation, SummaryTopMustNotBeNegative) {
  fixtures::TempDir tmp("config-validation");
  const fs::path data = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";
  std::ofstream(tmp.path() / "x.toml") << "[model]\npath = \"" << (data / "tiny-gpt2").string() << "\"\n[data]\nfile = \""
                                       << (data / "tiny-gpt2-patching-pairs.jsonl").string()
                                       << "\"\n[output]\npath = \"r.h5\"\n[[experiment]]\nname = \"ok\"\nsweep = \"resid_pre\"\n";
  const auto r = fixtures::run_causeway("run " + (tmp.path() / "x.toml").string() + " --top -1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--top"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "r.h5"));
}

// Sizes in config.json are checked against the stored shapes before memory is allocated.
TEST(ConfigValidation, ConfigJsonSizesAreCheckedBeforeAllocation) {
  fixtures::TempDir tmp("config-validation");
  const fs::path tiny = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2";
  struct SizeCase {
    const char* field;
    int64_t value;
  };
  // Large but within causeway's limits on sizes (past them, a size is refused at parse time:
  // test_config_layouts.cpp), so the weights are what disagrees.
  for (const SizeCase& c : {SizeCase{"n_embd", 400000}, SizeCase{"vocab_size", 10000000},
                            SizeCase{"n_positions", 10000000}, SizeCase{"n_inner", 10000000},
                            SizeCase{"n_layer", 1}}) {
    const fs::path m = tmp.path() / c.field;
    fs::create_directories(m);
    for (const auto& e : fs::directory_iterator(tiny)) fs::copy(e.path(), m / e.path().filename());
    std::ifstream in(tiny / "config.json");
    auto cfg = nlohmann::json::parse(in);
    cfg[c.field] = c.value;
    if (std::string(c.field) == "n_embd") cfg["n_inner"] = 256;  // else 4 * n_embd overflows first
    std::ofstream(m / "config.json") << cfg.dump();
    const auto r = fixtures::run_causeway("logits --model " + m.string() + " --tokens 1,2");
    EXPECT_EQ(r.code, 2) << c.field << ": " << r.output;
    EXPECT_NE(r.output.find("causeway: error: " + (m / "config.json").string() + ": " + c.field + ": " +
                            std::to_string(c.value) + " disagrees with the weights"),
              std::string::npos)
        << r.output;
  }
}

}  // namespace
}  // namespace causeway

namespace causeway {
namespace {

// The stricter checks must not refuse the configs the repository ships.
TEST(ConfigValidation, ShippedRunConfigsStillParse) {
  const fs::path src(CAUSEWAY_SOURCE_DIR);
  int n = 0;
  for (const fs::path& dir : {src / "configs", src / "analysis/examples"})
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".toml") continue;
      std::ifstream in(e.path());
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.find("[[experiment]]") == std::string::npos) continue;  // train configs
      EXPECT_NO_THROW(RunConfig::load(e.path())) << e.path();
      ++n;
    }
  EXPECT_GE(n, 5);
}

}  // namespace
}  // namespace causeway
