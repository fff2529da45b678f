// What a new user sees first (issue 10, D): `causeway` alone lists the commands, and
// `run --help` says where the config keys are documented. Issue 19 (C): the help names every
// model family, and `run --help` the experiment kinds and circuits.
#include <gtest/gtest.h>

#include <string>

#include "cli_support.h"
#include "model/families/families.h"

namespace causeway {
namespace {

TEST(CliHelp, NoCommandPrintsTheCommandsAndExits2) {
  const fixtures::CliResult r = fixtures::run_causeway("");
  EXPECT_EQ(r.code, 2) << r.output;
  for (const char* command : {"logits", "run", "data", "train"})
    EXPECT_NE(r.output.find(std::string("\n  ") + command + " "), std::string::npos)
        << command << " is not listed in:\n" << r.output;
  EXPECT_NE(r.output.find("causeway COMMAND --help"), std::string::npos) << r.output;
}

TEST(CliHelp, RunHelpPointsToTheConfigReference) {
  const fixtures::CliResult r = fixtures::run_causeway("run --help");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("README.md, section \"Experiment configs\""), std::string::npos)
      << r.output;
}

TEST(CliHelp, TopHelpNamesEveryModelFamily) {
  const fixtures::CliResult r = fixtures::run_causeway("--help");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("GPT-2-family"), std::string::npos) << r.output;
  for (const char* name : {"GPT-2", "Llama", "Mistral", "Qwen2", "Qwen3", "GPT-NeoX", "Gemma 2"})
    EXPECT_NE(r.output.find(name), std::string::npos) << name << " is not named in:\n" << r.output;
  for (const ModelFamily& f : model_families())
    EXPECT_NE(r.output.find(std::string("\"") + f.model_type + "\""), std::string::npos)
        << f.model_type << " is not listed in:\n" << r.output;
}

TEST(CliHelp, RunHelpDescribesTheExperimentKindsAndCircuits) {
  const fixtures::CliResult r = fixtures::run_causeway("run --help");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* kind : {"activation (", "attribution (", "ablation (", "noise (", "edges (", "path_patching ("})
    EXPECT_NE(r.output.find(kind), std::string::npos) << kind << " is not described in:\n" << r.output;
  for (const char* word : {"[[circuit]]", "ACDC", "EAP-IG", "faithfulness", "section \"Edges and circuits\""})
    EXPECT_NE(r.output.find(word), std::string::npos) << word << " is not in:\n" << r.output;
}

}  // namespace
}  // namespace causeway
