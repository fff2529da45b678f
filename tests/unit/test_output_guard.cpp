// Outputs never replace inputs (issue 10, A5): `run` (with or without --overwrite, and with
// --resume) and `logits --out` refuse an output path that is, or links to, the config, the
// pairs file or any file of the model folder, and leave that input untouched. Issue 19 (B2,
// B3, B9): every command (data ioi and train too) refuses a device, FIFO or folder as its
// output and an output over any file it reads, and a refused or failed logits run leaves an
// older file as it was.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

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

// A tiny training config, and one output folder beside it.
const char* kTinyTrain = "[model]\nn_layer = 1\nn_embd = 16\nn_head = 1\n[task]\nkind = \"induction\"\n"
                         "[train]\nsteps = 2\nbatch = 2\n[output]\npath = \"ckpt\"\n";

// The command lines of every command that writes, each with --out OUT --overwrite.
std::vector<std::string> writing_commands(const fs::path& dir, const fs::path& config, const fs::path& model,
                                          const fs::path& out) {
  std::ofstream(dir / "train.toml") << kTinyTrain;
  std::vector<std::string> commands = {
      "run " + config.string() + " --quiet --overwrite --out " + out.string(),
      "logits --model " + model.string() + " --tokens 1,2 --overwrite --out " + out.string(),
      "train " + (dir / "train.toml").string() + " --threads 1 --overwrite --out " + out.string(),
  };
  if (fixtures::gpt2_tokenizer())
    commands.push_back("data ioi --n 4 --tokenizer " + fixtures::kGpt2TokenizerDir.string() +
                       " --overwrite --out " + out.string());
  return commands;
}

TEST_F(OutputGuard, NoCommandWritesOverAFifoOrADevice) {
  const fs::path fifo = dir() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  for (const std::string& cmd : writing_commands(dir(), config(), model(), fifo)) {
    const auto r = fixtures::run_causeway(cmd);
    EXPECT_EQ(r.code, 2) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("causeway: error: " + fifo.string() + ": --out: is a FIFO, not a"), std::string::npos)
        << cmd << ": " << r.output;
    EXPECT_TRUE(fs::is_fifo(fifo)) << cmd << " replaced the FIFO";
  }
  // As root, replacing /dev/null would break the machine: each command must refuse it before
  // opening anything (nor may a lock file appear beside it).
  for (const std::string& cmd : writing_commands(dir(), config(), model(), "/dev/null")) {
    const auto r = fixtures::run_causeway(cmd);
    EXPECT_EQ(r.code, 2) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("causeway: error: /dev/null: --out: is a character device"), std::string::npos)
        << cmd << ": " << r.output;
    struct stat st {};
    ASSERT_EQ(::stat("/dev/null", &st), 0);
    ASSERT_TRUE(S_ISCHR(st.st_mode)) << cmd << " replaced /dev/null";
    EXPECT_FALSE(fs::exists("/dev/null.lock")) << cmd;
  }
  // A folder is no output file either (train's output is a folder: a FIFO was refused above).
  const fs::path folder = dir() / "folder";
  fs::create_directories(folder / "inside");
  for (const std::string& cmd : writing_commands(dir(), config(), model(), folder)) {
    if (cmd.starts_with("train")) continue;
    const auto r = fixtures::run_causeway(cmd);
    EXPECT_EQ(r.code, 2) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find(folder.string() + ": --out: is a folder, not a regular file"), std::string::npos)
        << cmd << ": " << r.output;
    EXPECT_TRUE(fs::is_directory(folder / "inside")) << cmd;
  }
}

TEST_F(OutputGuard, DataIoiRefusesToWriteOverItsTokenizer) {
  if (!fixtures::gpt2_tokenizer()) GTEST_SKIP() << "no GPT-2 tokenizer in " << fixtures::kGpt2TokenizerDir;
  const fs::path tok = dir() / "tok";
  fs::create_directories(tok);
  for (const auto& e : fs::directory_iterator(fixtures::kGpt2TokenizerDir)) {
    fs::copy(e.path(), tok / e.path().filename());
    fs::permissions(tok / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
  }
  fs::copy(model() / "model.safetensors", tok / "model.safetensors");  // a whole model folder
  fs::create_symlink(tok / "merges.txt", dir() / "merges-link.jsonl");
  fs::create_hard_link(tok / "vocab.json", dir() / "vocab-hardlink.jsonl");
  const std::vector<std::pair<fs::path, fs::path>> cases = {
      {tok / "vocab.json", tok / "vocab.json"},
      {tok / "merges.txt", tok / "merges.txt"},
      {tok / "model.safetensors", tok / "model.safetensors"},
      {dir() / "merges-link.jsonl", tok / "merges.txt"},
      {dir() / "vocab-hardlink.jsonl", tok / "vocab.json"},
  };
  for (const auto& [out, input] : cases) {
    const std::string before = read_text(input);
    const auto r = fixtures::run_causeway("data ioi --n 4 --tokenizer " + tok.string() + " --overwrite --out " +
                                          out.string());
    EXPECT_EQ(r.code, 2) << out << ": " << r.output;
    EXPECT_NE(r.output.find("causeway: error: " + out.string() + ": --out: is a file of the tokenizer folder (" +
                            input.string() + ")"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(read_text(input), before) << input << " was changed";
  }
  const auto r = fixtures::run_causeway("data ioi --n 4 --tokenizer " + tok.string() + " --out " +
                                        (tok / "pairs.jsonl").string());
  EXPECT_EQ(r.code, 0) << r.output;  // a new file beside the inputs is fine
}

TEST_F(OutputGuard, TrainRefusesAnOutputFolderThatHoldsItsConfig) {
  // Retraining from a checkpoint's own train.toml into that checkpoint would replace the config
  // the job reads; so would a folder above it.
  const fs::path ckpt = dir() / "ckpt";
  fs::create_directories(ckpt);
  std::ofstream(ckpt / "config.json") << "{}";
  std::string config_text = kTinyTrain;
  config_text.replace(config_text.find("\"ckpt\""), 6, "\"../ckpt\"");  // the folder it is in
  std::ofstream(ckpt / "train.toml") << config_text;
  const std::string before = read_text(ckpt / "train.toml");
  for (const std::string& out : {std::string(), " --out " + ckpt.string()}) {
    const auto r = fixtures::run_causeway("train " + (ckpt / "train.toml").string() + " --threads 1 --overwrite" + out);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find(ckpt.string() + ": " + (out.empty() ? "output.path" : "--out") +
                            ": holds the config (" + (ckpt / "train.toml").string() + ")"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(read_text(ckpt / "train.toml"), before);
    EXPECT_TRUE(fs::exists(ckpt / "config.json"));
  }
  // The config named through a link is still the file in the folder.
  fs::create_symlink(ckpt / "train.toml", dir() / "linked.toml");
  const auto r = fixtures::run_causeway("train " + (dir() / "linked.toml").string() +
                                        " --threads 1 --overwrite --out " + ckpt.string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("holds the config"), std::string::npos) << r.output;
  EXPECT_EQ(read_text(ckpt / "train.toml"), before);
  // So does any folder above it.
  const auto above = fixtures::run_causeway("train " + (ckpt / "train.toml").string() +
                                            " --threads 1 --overwrite --out " + dir().string());
  EXPECT_EQ(above.code, 2) << above.output;
  EXPECT_NE(above.output.find(dir().string() + ": --out: holds the config"), std::string::npos) << above.output;
}

TEST_F(OutputGuard, LogitsRefusesAHookCachedTwiceAndKeepsTheOldFile) {
  const fs::path out = dir() / "logits.h5";
  const std::string logits = "logits --model " + model().string() + " --tokens 1,2,3 --out " + out.string();
  ASSERT_EQ(fixtures::run_causeway(logits).code, 0);
  const std::string before = read_text(out);
  for (const char* cache : {"blocks.0.attn.hook_z blocks.0.attn.hook_z", "all blocks.1.hook_resid_pre",
                            "blocks.0.hook_mlp_out all"}) {
    const auto r = fixtures::run_causeway(logits + " --overwrite --cache " + cache);
    EXPECT_EQ(r.code, 2) << cache << ": " << r.output;
    EXPECT_NE(r.output.find("causeway: error: --cache: '"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("which is listed twice"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
    EXPECT_EQ(read_text(out), before) << cache << " changed the earlier file";
  }
  // The file is laid out beside --out and renamed into place: nothing of it is left over.
  ASSERT_EQ(fixtures::run_causeway(logits + " --overwrite --cache all").code, 0);
  EXPECT_NE(read_text(out), before);
  for (const auto& e : fs::directory_iterator(dir()))
    EXPECT_EQ(e.path().string().find(".partial"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace causeway
