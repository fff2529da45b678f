// Writes a model as a Hugging Face GPT-2 checkpoint folder, the exact inverse of
// ModelWeights::load: config.json (ModelConfig::to_json plus `extra_config`),
// model.safetensors (fp32, HF names with the "transformer." prefix, Conv1D (in, out) layouts,
// Q, K and V concatenated column-wise into attn.c_attn, no lm_head since it is tied to wte),
// and any further files given (vocab.json, merges.txt, the config that trained it, ...).
//
// The folder is written under a temporary name beside `dir` and renamed into place, so a
// failure never leaves half a checkpoint. An existing `dir` is an InputError unless
// `overwrite`; even then only a folder that holds a config.json, or nothing, is replaced.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_weights.h"
#include "model/model_config.h"

namespace causeway {

struct CheckpointFile {
  std::string name;      // file name inside the folder
  std::string contents;
};

void save_gpt2_checkpoint(const std::filesystem::path& dir, const ModelConfig& cfg,
                          const ModelWeights& weights, const std::vector<CheckpointFile>& files,
                          bool overwrite, const nlohmann::json& extra_config = {});

}  // namespace causeway
