// What a new user sees first (issue 10, D): `causeway` alone lists the commands, and
// `run --help` says where the config keys are documented.
#include <gtest/gtest.h>

#include <string>

#include "cli_support.h"

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

}  // namespace
}  // namespace causeway
