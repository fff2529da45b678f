// Counts in messages agree with their number (issue 19, C): "1 experiment", "1 pair",
// "1 key/value head" where a model has a single one (multi-query attention), as in the run's
// start line, the dry run and the note a sweep stores on its key/value rows.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "cli_support.h"
#include "model/model_config.h"
#include "patching/sweep_grid.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";

std::string first_line(const fs::path& p) {
  const std::string text = fixtures::read_text(p);
  return text.substr(0, text.find('\n') + 1);
}

TEST(CliWording, OneExperimentAndOnePairAreSingular) {
  fixtures::TempDir dir("wording");
  fixtures::write_text(dir.path() / "one.jsonl", first_line(kData / "tiny-gpt2-patching-pairs.jsonl"));
  fixtures::write_text(dir.path() / "run.toml",
                       "[model]\npath = \"" + (kData / "tiny-gpt2").string() + "\"\nthreads = 1\n"
                       "[data]\nfile = \"one.jsonl\"\n[output]\npath = \"run.h5\"\n"
                       "[[experiment]]\nname = \"layers\"\nsweep = \"attn_out\"\npositions = \"all\"\n");
  const fixtures::CliResult r = fixtures::run_causeway("run " + (dir.path() / "run.toml").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("causeway run: 1 pair, 1 experiment, "), std::string::npos) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(", [0-9]+ work items?, "))) << r.output;
  EXPECT_EQ(r.output.find("1 experiments"), std::string::npos) << r.output;
}

// A multi-query-attention model: the llama3 test config with one key/value head. The dry run
// reads config.json alone, so no weights are needed.
fs::path one_kv_head_model(const fs::path& dir) {
  const fs::path model = dir / "mqa";
  fs::create_directories(model);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(kData / "families/llama3" / f, model / f);
  std::string config = fixtures::read_text(kData / "families/llama3/config.json");
  const std::string from = "\"num_key_value_heads\": 2", to = "\"num_key_value_heads\": 1";
  config.replace(config.find(from), from.size(), to);
  fixtures::write_text(model / "config.json", config);
  return model;
}

TEST(CliWording, OneKeyValueHeadIsSingularInTheDryRun) {
  fixtures::TempDir dir("wording");
  const fs::path model = one_kv_head_model(dir.path());
  fixtures::write_text(dir.path() / "pairs.jsonl",
                       "{\"clean\": [1, 2, 3, 4], \"corrupted\": [1, 5, 3, 4], \"answer\": 6, \"wrong\": 7}\n");
  fixtures::write_text(dir.path() / "run.toml",
                       "[model]\npath = \"" + model.string() + "\"\n[data]\nfile = \"pairs.jsonl\"\n"
                       "[output]\npath = \"run.h5\"\n"
                       "[[experiment]]\nname = \"heads\"\nsweep = \"attn_head_out\"\npositions = \"all\"\n");
  const fixtures::CliResult r = fixtures::run_causeway("run " + (dir.path() / "run.toml").string() + " --dry-run");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(", 1 key/value head,"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("1 key/value heads"), std::string::npos) << r.output;
}

TEST(CliWording, OneKeyValueHeadIsSingularInTheSweepNote) {
  fixtures::TempDir dir("wording");
  const ModelConfig cfg = ModelConfig::from_json_file(one_kv_head_model(dir.path()) / "config.json");
  ASSERT_EQ(cfg.kv_heads(), 1);
  const SweepGrid g = make_grid(SweepSpec{SweepKind::HeadEvery, false}, cfg, 4);
  EXPECT_NE(g.not_applicable.find("the model has 1 key/value head (grouped-query attention)"),
            std::string::npos) << g.not_applicable;
}

}  // namespace
}  // namespace causeway
