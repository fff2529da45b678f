// Helpers for tests that run the built `causeway` program or need scratch folders or the real
// GPT-2 tokenizer from ../shared.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "model/tokenizer.h"

namespace causeway::fixtures {

struct CliResult {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `causeway ARGS` (the binary this build made) and collects its output and exit code.
inline CliResult run_causeway(const std::string& args) {
  const std::string cmd = std::string(CAUSEWAY_BINARY) + " " + args + " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A whole file as bytes, and a file written from bytes (tests that change inputs in place).
inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

// A fresh folder under the system temp folder, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    path_ = std::filesystem::temp_directory_path() /
            ("causeway-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

inline const std::filesystem::path kGpt2TokenizerDir =
    std::filesystem::path(CAUSEWAY_SHARED_DIR) / "data/gpt2-tokenizer";

// The real GPT-2 tokenizer, or null when the shared folder does not have it.
inline const Tokenizer* gpt2_tokenizer() {
  static const std::unique_ptr<Tokenizer> tok =
      std::filesystem::exists(kGpt2TokenizerDir / "vocab.json")
          ? std::make_unique<Tokenizer>(Tokenizer::from_model_dir(kGpt2TokenizerDir))
          : nullptr;
  return tok.get();
}

}  // namespace causeway::fixtures
