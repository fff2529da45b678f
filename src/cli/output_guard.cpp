#include "cli/output_guard.h"

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace causeway {

namespace fs = std::filesystem;

namespace {

// True when both name one existing file; errors (a missing path, no permission) mean "not
// shown to be the same", and the later open reports them.
bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  const bool same = fs::equivalent(a, b, ec);
  return !ec && same;
}

// An HDF5 file: causeway reads none from a model folder, so one there is an earlier result
// (which --overwrite and --resume may write), not an input.
bool is_hdf5(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  char sig[8] = {};
  return in.read(sig, 8) && std::string(sig, 8) == std::string("\x89HDF\r\n\x1a\n", 8);
}

// What a non-regular file is, for the message; through links, as a write would see it.
std::string kind_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return "";
  if (S_ISREG(st.st_mode)) return "";
  if (S_ISCHR(st.st_mode)) return "a character device";
  if (S_ISBLK(st.st_mode)) return "a block device";
  if (S_ISFIFO(st.st_mode)) return "a FIFO";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  if (S_ISDIR(st.st_mode)) return "a folder";
  return "not a regular file";
}

// The input (one of `inputs`, or a file of an input folder) that is the same file as `output`,
// and its role; empty when there is none.
std::pair<fs::path, std::string> input_at(const fs::path& output, const std::vector<InputFile>& inputs) {
  std::error_code ec;
  for (const InputFile& in : inputs) {
    if (in.path.empty()) continue;
    if (same_file(output, in.path)) return {in.path, in.role};
    if (!fs::is_directory(in.path, ec)) continue;
    for (fs::recursive_directory_iterator it(in.path, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec))
      if (same_file(output, it->path()) && !is_hdf5(it->path())) return {it->path(), "a file of " + in.role};
  }
  return {};
}

// Whether `inner` is `outer` or lies inside it, both resolved (every link followed).
bool lies_within(const fs::path& inner, const fs::path& outer) {
  std::error_code ec;
  const fs::path a = fs::canonical(inner, ec);
  if (ec) return false;
  const fs::path b = fs::canonical(outer, ec);
  if (ec) return false;
  auto part = a.begin();
  for (const fs::path& want : b) {
    if (part == a.end() || *part != want) return false;
    ++part;
  }
  return true;
}

}  // namespace

void refuse_non_regular_output(const fs::path& output, const std::string& flag) {
  const std::string kind = kind_of(output);
  if (!kind.empty())
    throw InputError(output.string(), flag,
                     "is " + kind + ", not a regular file; an output is written only as a "
                     "regular file, choose another path");
}

void guard_output_file(const fs::path& output, const std::vector<InputFile>& inputs, const std::string& flag) {
  refuse_non_regular_output(output, flag);
  refuse_output_over_inputs(output, inputs, flag);
}

void guard_output_folder(const fs::path& folder, const std::vector<InputFile>& inputs, const std::string& flag) {
  std::error_code ec;
  if (!fs::exists(folder, ec)) return;
  const std::string kind = kind_of(folder);
  if (kind != "a folder")
    throw InputError(folder.string(), flag,
                     "is " + (kind.empty() ? std::string("a file") : kind) +
                         ", not a folder; the output is written as a folder, choose another path");
  // The folder is replaced whole: an input inside it (its resolved path, so through links too)
  // would go with it, and so would the files of an input folder that holds it. A second hard
  // link inside it is no loss: the input keeps its data under its own name.
  for (const InputFile& in : inputs) {
    if (in.path.empty()) continue;
    if (lies_within(in.path, folder))
      throw InputError(folder.string(), flag,
                       "holds " + in.role + " (" + in.path.string() +
                           "); an output never replaces an input, choose another folder");
    if (fs::is_directory(in.path, ec) && lies_within(folder, in.path))
      throw InputError(folder.string(), flag,
                       "lies in " + in.role + " (" + in.path.string() +
                           "); an output never replaces an input, choose another folder");
  }
}

void refuse_output_over_inputs(const fs::path& output, const std::vector<InputFile>& inputs,
                               const std::string& flag) {
  std::error_code ec;
  if (!fs::exists(output, ec)) return;
  const auto [input, role] = input_at(output, inputs);
  if (!input.empty())
    throw InputError(output.string(), flag,
                     "is " + role + " (" + input.string() +
                         "); an output never replaces an input, choose another path");
}

}  // namespace causeway
