// OutputLock (issue 10, A2): one holder per output; the refusal names the holder's pid and
// host; a lock file left by a killed job (its flock gone with the process) is taken over.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "cli_support.h"
#include "core/error.h"
#include "io/output_lock.h"

namespace causeway {
namespace {

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string host() {
  char h[256] = {};
  ::gethostname(h, sizeof(h) - 1);
  return h;
}

TEST(OutputLock, SecondHolderIsRefusedNamingTheFirst) {
  fixtures::TempDir dir("lock");
  const auto out = dir.path() / "run.h5";
  OutputLock first(out);
  EXPECT_EQ(read_all(OutputLock::lock_path(out)), std::to_string(::getpid()) + "@" + host() + "\n");
  try {
    OutputLock second(out);
    FAIL() << "a second lock on a held output was granted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(out.string() + " is in use by another causeway job (pid " +
                                         std::to_string(::getpid()) + " on " + host() + ")"),
              std::string::npos)
        << e.what();
  }
}

TEST(OutputLock, StaleLockFileIsTakenOverAndRemovedAtTheEnd) {
  fixtures::TempDir dir("lock");
  const auto out = dir.path() / "run.h5";
  std::ofstream(OutputLock::lock_path(out)) << "4242@dead-node\n";  // nobody holds its flock
  {
    OutputLock lock(out);
    EXPECT_EQ(read_all(OutputLock::lock_path(out)), std::to_string(::getpid()) + "@" + host() + "\n");
    EXPECT_TRUE(lock.warning().empty()) << lock.warning();
  }
  EXPECT_FALSE(std::filesystem::exists(OutputLock::lock_path(out)));
  OutputLock again(out);  // released: the next job gets it
}

TEST(OutputLock, MissingFolderIsAnInputError) {
  fixtures::TempDir dir("lock");
  try {
    OutputLock lock(dir.path() / "no-such-folder" / "run.h5");
    FAIL() << "locked an output in a folder that does not exist";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("the output folder does not exist"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace causeway
