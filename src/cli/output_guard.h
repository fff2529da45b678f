// Outputs never replace inputs, and never anything but a regular file (or, for `train`, a
// folder): an output path that is a device, FIFO, socket or folder, or is, or links to, one of
// the job's input files, is refused before any work and before anything is opened for writing
// (--overwrite included).
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

// InputError naming `flag` (e.g. "--out") when `output` exists (through links) and is not a
// regular file: writing there would replace a device node, FIFO or socket, or fail late.
void refuse_non_regular_output(const std::filesystem::path& output, const std::string& flag);

// InputError naming `flag` (e.g. "--out") and the input when `output` is the same file as any
// input, through symbolic or hard links alike. An output that does not exist yet is no input.
void refuse_output_over_inputs(const std::filesystem::path& output, const std::vector<InputFile>& inputs,
                               const std::string& flag);

// Both checks above: what every command that writes one file calls first.
void guard_output_file(const std::filesystem::path& output, const std::vector<InputFile>& inputs,
                       const std::string& flag);

// For an output folder that is replaced whole (`train`): it is a folder or does not exist yet,
// no input lies in it, and it lies in no input folder (paths compared resolved).
void guard_output_folder(const std::filesystem::path& folder, const std::vector<InputFile>& inputs,
                         const std::string& flag);

}  // namespace causeway
