#include "cli/output_guard.h"

#include <fstream>
#include <string>
#include <system_error>

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

}  // namespace

void refuse_output_over_inputs(const fs::path& output, const std::vector<InputFile>& inputs,
                               const std::string& flag) {
  std::error_code ec;
  if (!fs::exists(output, ec)) return;
  auto refuse = [&](const fs::path& input, const std::string& role) {
    throw InputError(output.string(), flag,
                     "is " + role + " (" + input.string() +
                         "); an output never replaces an input, choose another path");
  };
  for (const InputFile& in : inputs) {
    if (in.path.empty()) continue;
    if (same_file(output, in.path)) refuse(in.path, in.role);
    if (!fs::is_directory(in.path, ec)) continue;
    for (fs::recursive_directory_iterator it(in.path, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec))
      if (same_file(output, it->path()) && !is_hdf5(it->path())) refuse(it->path(), "a file of " + in.role);
  }
}

}  // namespace causeway
