// The result file of DESIGN.md section 6: /meta, /data and /experiments/<name>/{effect, mean,
// baselines}, with HDF5 dimension scales naming every axis so readers need no knowledge of
// experiment kinds.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/hdf5_file.h"
#include "patching/sweep.h"

namespace causeway {

class Tokenizer;

struct ExperimentRecord {
  std::string name;
  std::map<std::string, std::string> attributes;  // kind, sweep, direction, metric, ...
  const SweepResult* result = nullptr;
};

class ResultStore {
 public:
  // Refuses an existing file unless `overwrite` (InputError naming the path).
  ResultStore(const std::filesystem::path& path, bool overwrite);

  void write_meta(const std::string& config_text, const std::string& model_dir,
                  const std::string& model_config_json);
  void write_data(const PairDataset& data, const Tokenizer* tok);
  void write_experiment(const ExperimentRecord& rec);
  H5File& file() { return file_; }

 private:
  H5File file_;
};

// The git commit causeway was built from, or "unknown".
std::string causeway_git_hash();

}  // namespace causeway
