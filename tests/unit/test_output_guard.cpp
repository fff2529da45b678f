// Outputs never replace inputs (issue 10, A5): `run` (with or without --overwrite, and with
// --resume) and `logits --out` refuse an output path that is, or links to, the config, the
// pairs file or any file of the model folder, and leave that input untouched.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_support.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";

using fixtures::read_text;

class OutputGuard : public ::testing::Test {
 protected:
  OutputGuard() : tmp_("output-guard") {
    fs::create_directories(model());
    for (const auto& e : fs::directory_iterator(kData / "tiny-gpt2")) fs::copy(e.path(), model() / e.path().filename());
    fs::create_directories(model() / "tokenizer");
    fs::copy(kData / "tiny-gpt2/vocab.json", model() / "tokenizer/extra.json");
    fs::copy(kData / "tiny-gpt2-patching-pairs.jsonl", pairs());
    std::ofstream(config()) << "[model]\npath = \"model\"\nthreads = 1\n[data]\nfile = \"pairs.jsonl\"\n"
                            << "[output]\npath = \"r.h5\"\n[[experiment]]\nname = \"layers\"\nsweep = \"resid_pre\"\n"
                            << "positions = \"all\"\n";
  }
  fs::path dir() const { return tmp_.path(); }
  fs::path model() const { return dir() / "model"; }
  fs::path pairs() const { return dir() / "pairs.jsonl"; }
  fs::path config() const { return dir() / "run.toml"; }

  // `run --out OUT FLAGS` is refused naming `role`, and `input` keeps its bytes.
  void expect_refused(const fs::path& out, const std::string& flags, const fs::path& input, const std::string& role) {
    const std::string before = read_text(input);
    const auto r = fixtures::run_causeway("run " + config().string() + " --quiet --out " + out.string() + " " + flags);
    EXPECT_EQ(r.code, 2) << flags << ": " << r.output;
    EXPECT_NE(r.output.find("causeway: error: " + out.string() + ": --out: is " + role), std::string::npos)
        << flags << ": " << r.output;
    EXPECT_EQ(read_text(input), before) << input << " was changed";
  }

 private:
  fixtures::TempDir tmp_;
};

TEST_F(OutputGuard, RunRefusesToWriteOverItsInputs) {
  for (const char* flags : {"--overwrite", "", "--resume"}) {
    expect_refused(config(), flags, config(), "the config");
    expect_refused(pairs(), flags, pairs(), "the pairs file");
    expect_refused(model() / "model.safetensors", flags, model() / "model.safetensors", "a file of the model folder");
    expect_refused(model() / "tokenizer/extra.json", flags, model() / "tokenizer/extra.json", "a file of the model folder");
  }
}

TEST_F(OutputGuard, LinksToInputsAreRefusedToo) {
  fs::create_symlink(config(), dir() / "config-link.h5");
  expect_refused(dir() / "config-link.h5", "--overwrite", config(), "the config");
  fs::create_hard_link(pairs(), dir() / "pairs-hardlink.h5");
  expect_refused(dir() / "pairs-hardlink.h5", "--overwrite", pairs(), "the pairs file");
  fs::create_symlink(model() / "config.json", dir() / "model-link.h5");
  expect_refused(dir() / "model-link.h5", "--overwrite", model() / "config.json", "a file of the model folder");
}

TEST_F(OutputGuard, ConfigOutputPathIsCheckedAsWell) {
  std::string text = read_text(config());
  text.replace(text.find("path = \"r.h5\""), 13, "path = \"pairs.jsonl\"");
  std::ofstream(config()) << text;
  const std::string before = read_text(pairs());
  const auto r = fixtures::run_causeway("run " + config().string() + " --quiet --overwrite");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("output.path: is the pairs file"), std::string::npos) << r.output;
  EXPECT_EQ(read_text(pairs()), before);
}

// A result file kept in the model folder is no input: it may be resumed and overwritten.
TEST_F(OutputGuard, AnotherPathIsStillWritten) {
  const std::string out = (model() / "new.h5").string();
  const auto r = fixtures::run_causeway("run " + config().string() + " --quiet --out " + out);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(model() / "new.h5"));
  EXPECT_EQ(fixtures::run_causeway("run " + config().string() + " --quiet --resume --out " + out).code, 0);
  EXPECT_EQ(fixtures::run_causeway("run " + config().string() + " --quiet --overwrite --out " + out).code, 0);
}

TEST_F(OutputGuard, LogitsRefusesToWriteOverTheModel) {
  for (const fs::path& input : {model() / "config.json", model() / "vocab.json", model() / "model.safetensors"}) {
    const std::string before = read_text(input);
    const auto r = fixtures::run_causeway("logits --model " + model().string() + " --tokens 1,2 --overwrite --out " + input.string());
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("--out: is a file of the model folder"), std::string::npos) << r.output;
    EXPECT_EQ(read_text(input), before);
  }
  fs::create_symlink(model() / "merges.txt", dir() / "merges-link.h5");
  const auto r = fixtures::run_causeway("logits --model " + model().string() + " --tokens 1,2 --overwrite --out " +
                                        (dir() / "merges-link.h5").string());
  EXPECT_EQ(r.code, 2) << r.output;
}

}  // namespace
}  // namespace causeway
