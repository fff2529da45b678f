// The model families causeway reads: for each Hugging Face model_type, its config.json parser
// and its weight table. One table (families.cpp) selects them; adding a family is a row there
// plus one file here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_config.h"
#include "model/weight_table.h"

namespace causeway {

struct ModelFamily {
  const char* model_type;
  // Fills a ModelConfig from the parsed config.json (`src` names it in errors).
  ModelConfig (*parse)(const nlohmann::json& j, const std::string& src);
  // Rows with "{L}" per layer (see weight_table.h).
  std::vector<WeightRow> (*weights)(const ModelConfig& cfg);
};

const std::vector<ModelFamily>& model_families();
// `"gpt2", "llama", ...` for messages.
std::string supported_model_types();
// The family of `model_type`; InputError(src, "model_type", ...) listing the supported ones.
const ModelFamily& family_for(std::string_view model_type, const std::string& src);

// One parser and one table per family file.
ModelConfig parse_gpt2_config(const nlohmann::json& j, const std::string& src);
std::vector<WeightRow> gpt2_weight_rows(const ModelConfig& cfg);
ModelConfig parse_llama_config(const nlohmann::json& j, const std::string& src);  // + mistral
std::vector<WeightRow> llama_weight_rows(const ModelConfig& cfg);
ModelConfig parse_qwen2_config(const nlohmann::json& j, const std::string& src);  // + qwen3
std::vector<WeightRow> qwen2_weight_rows(const ModelConfig& cfg);
ModelConfig parse_gpt_neox_config(const nlohmann::json& j, const std::string& src);
std::vector<WeightRow> gpt_neox_weight_rows(const ModelConfig& cfg);
ModelConfig parse_gemma2_config(const nlohmann::json& j, const std::string& src);
std::vector<WeightRow> gemma2_weight_rows(const ModelConfig& cfg);

}  // namespace causeway
