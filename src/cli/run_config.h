// `causeway run` configuration from TOML. Every error names the file, the table and the key.
//
//   [model]       path = "models/ioi", threads = 2
//   [data]        file = "pairs.jsonl"   or   generator = "ioi", n = 64, seed = 0, corruption = "swap"
//   [output]      path = "results/ioi.h5"
//   [[experiment]] name, kind = activation|ablation|noise, sweep, positions = each|all,
//                  direction = denoising|noising, metric, ablation = zero|mean|resample, ...
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/ioi.h"
#include "patching/sweep.h"

namespace causeway {

struct ExperimentConfig {
  std::string name;
  std::string kind;  // activation | ablation | noise
  SweepRequest request;
  std::string ablation;  // zero | mean | resample (ablation only)
};

struct RunConfig {
  std::filesystem::path path;  // the config file
  std::string text;            // its contents, stored in the result file
  std::filesystem::path model;
  int threads = 0;
  std::filesystem::path data_file;
  std::string generator;       // "ioi" or empty
  IoiOptions ioi;
  std::filesystem::path output;
  std::vector<ExperimentConfig> experiments;

  static RunConfig load(const std::filesystem::path& path);
  static RunConfig parse(const std::string& text, const std::filesystem::path& path);
};

}  // namespace causeway
