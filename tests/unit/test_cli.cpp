// The causeway program end to end: output files against goldens, and for each kind of bad
// input one clear line on stderr and exit code 2.
#include <gtest/gtest.h>

#include "cli_support.h"
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "io/hdf5_file.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";
const fs::path kTiny = kData / "tiny-gpt2";

using Result = fixtures::CliResult;
const auto run = fixtures::run_causeway;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("causeway-cli-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  // A copy of the tiny model that a test may break.
  fs::path model_copy() const {
    const fs::path d = path_ / "model";
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(kTiny)) fs::copy(e.path(), d / e.path().filename());
    return d;
  }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string prompt0_tokens() {
  std::ifstream in(kData / "tiny-gpt2-goldens.json");
  const auto j = nlohmann::json::parse(in);
  std::string s;
  for (const auto& t : j["prompts"][0]["ids"]) s += (s.empty() ? "" : ",") + std::to_string(t.get<int>());
  return s;
}

void expect_input_error(const Result& r, const std::string& must_mention) {
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("causeway: error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(must_mention), std::string::npos) << r.output;
}

TEST(Cli, HelpExplainsEverySubcommand) {
  const Result top = run("--help");
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.output.find("logits"), std::string::npos);
  EXPECT_NE(top.output.find("run"), std::string::npos);
  const Result logits = run("logits --help");
  EXPECT_EQ(logits.code, 0);
  for (const char* opt : {"--model", "--text", "--tokens", "--top", "--cache", "--out", "--threads"})
    EXPECT_NE(logits.output.find(opt), std::string::npos) << opt;
}

TEST(Cli, LogitsPrintsTopTokensAndWritesLogitsAndHooks) {
  TempDir tmp;
  const fs::path out = tmp.path() / "l.h5";
  const Result r = run("logits --model " + kTiny.string() + " --tokens " + prompt0_tokens() +
                       " --top 3 --cache blocks.0.attn.hook_z ln_final.hook_scale --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("rank"), std::string::npos);
  H5File f(out, H5Mode::ReadOnly);
  std::vector<int64_t> shape;
  const auto logits = f.read_floats("logits", &shape);
  ASSERT_EQ(shape.size(), 2u);
  EXPECT_EQ(shape[1], 1000);
  const auto z = f.read_floats("blocks.0.attn.hook_z", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{28, 4, 16}));  // [pos, head, d_head]: batch axis dropped
  const auto scale = f.read_floats("ln_final.hook_scale", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{28, 1}));
  for (float s : scale) EXPECT_GT(s, 0.0f);
}

TEST(Cli, TextIsTokenizedWithTheModelsTokenizer) {
  const Result r = run("logits --model " + kTiny.string() + " --text \"The quick brown fox\" --top 2");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("input:"), std::string::npos);
}

TEST(CliErrors, TokenIdOutOfRange) {
  expect_input_error(run("logits --model " + kTiny.string() + " --tokens 1,1000"), "1000");
}

TEST(CliErrors, SequenceLongerThanNPositions) {
  std::string ids = "1";
  for (int i = 0; i < 128; ++i) ids += ",1";
  expect_input_error(run("logits --model " + kTiny.string() + " --tokens " + ids), "n_positions");
}

TEST(CliErrors, UnknownHookName) {
  expect_input_error(run("logits --model " + kTiny.string() + " --tokens 1 --cache blocks.0.hook_nope --out x.h5"),
                     "blocks.0.hook_nope");
}

TEST(CliErrors, TruncatedWeightsFile) {
  TempDir tmp;
  const fs::path m = tmp.model_copy();
  fs::resize_file(m / "model.safetensors", 5);
  expect_input_error(run("logits --model " + m.string() + " --tokens 1"), "model.safetensors");
}

TEST(CliErrors, HeaderLengthBeyondTheFile) {
  TempDir tmp;
  const fs::path m = tmp.model_copy();
  fs::resize_file(m / "model.safetensors", 200);
  expect_input_error(run("logits --model " + m.string() + " --tokens 1"), "model.safetensors");
}

TEST(CliErrors, UnsupportedModelType) {
  TempDir tmp;
  const fs::path m = tmp.model_copy();
  std::ifstream in(m / "config.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["model_type"] = "llama";
  std::ofstream(m / "config.json") << cfg.dump();
  const Result r = run("logits --model " + m.string() + " --tokens 1");
  expect_input_error(r, "config.json");
  EXPECT_NE(r.output.find("model_type"), std::string::npos) << r.output;
}

TEST(CliErrors, ShapeThatDisagreesWithConfig) {
  TempDir tmp;
  const fs::path m = tmp.model_copy();
  std::ifstream in(m / "config.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["n_inner"] = 128;  // the checkpoint's MLP is 256 wide
  std::ofstream(m / "config.json") << cfg.dump();
  const Result r = run("logits --model " + m.string() + " --tokens 1");
  expect_input_error(r, "mlp.c_fc.weight");
}

TEST(CliErrors, MissingTensor) {
  TempDir tmp;
  const fs::path m = tmp.model_copy();
  std::ifstream in(m / "config.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["n_layer"] = 3;  // the checkpoint has 2 blocks
  std::ofstream(m / "config.json") << cfg.dump();
  expect_input_error(run("logits --model " + m.string() + " --tokens 1"), "h.2.");
}

TEST(CliErrors, ExistingOutputWithoutOverwrite) {
  TempDir tmp;
  const fs::path out = tmp.path() / "exists.h5";
  std::ofstream(out) << "x";
  expect_input_error(run("logits --model " + kTiny.string() + " --tokens 1 --out " + out.string()),
                     "--overwrite");
}

TEST(CliErrors, BadCommandLineIsExitCode2) {
  EXPECT_EQ(run("logits --model " + kTiny.string()).code, 2);
  EXPECT_EQ(run("logits --model " + kTiny.string() + " --tokens 1 --text hi").code, 2);
  EXPECT_EQ(run("nonsense").code, 2);
}

}  // namespace
}  // namespace causeway
