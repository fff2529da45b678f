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
#include <vector>

#include "io/hdf5_file.h"
#include "model/tokenizer.h"

namespace causeway::fixtures {

struct CliResult {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line and collects what it prints to stdout and its exit code.
inline CliResult run_shell(const std::string& cmd) {
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

// Runs `causeway ARGS` (the binary this build made) and collects its output and exit code.
inline CliResult run_causeway(const std::string& args) {
  return run_shell(std::string(CAUSEWAY_BINARY) + " " + args + " 2>&1");
}

// A string dataset of an HDF5 file, read as variable-length UTF-8; empty when there is none.
inline std::vector<std::string> read_strings(const std::filesystem::path& file, const std::string& name) {
  H5File f(file, H5Mode::ReadOnly);
  const hid_t ds = H5Dopen2(f.id(), name.c_str(), H5P_DEFAULT);
  if (ds < 0) return {};
  const hid_t space = H5Dget_space(ds);
  std::vector<char*> raw(static_cast<size_t>(H5Sget_simple_extent_npoints(space)));
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  std::vector<std::string> out;
  if (H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) >= 0)
    for (char* s : raw) {
      out.emplace_back(s ? s : "");
      H5free_memory(s);
    }
  H5Tclose(type);
  H5Sclose(space);
  H5Dclose(ds);
  return out;
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
