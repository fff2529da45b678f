// Outputs never replace inputs: an output path that is, or links to, one of the job's input
// files is refused before anything is opened for writing (--overwrite included).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace causeway {

struct InputFile {
  std::filesystem::path path;  // a file, or a folder whose every file (recursively) is an input,
                               // HDF5 files aside (causeway reads none from a folder)
  std::string role;            // "the config", "the pairs file", "the model folder"
};

// InputError naming `flag` (e.g. "--out") and the input when `output` is the same file as any
// input, through symbolic or hard links alike. An output that does not exist yet is no input.
void refuse_output_over_inputs(const std::filesystem::path& output, const std::vector<InputFile>& inputs,
                               const std::string& flag);

}  // namespace causeway
