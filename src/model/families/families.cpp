#include "model/families/families.h"

#include "model/families/config_fields.h"

namespace causeway {

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> table{
      {"gpt2", parse_gpt2_config, gpt2_weight_rows},
      {"llama", parse_llama_config, llama_weight_rows},
      {"mistral", parse_llama_config, llama_weight_rows},
      {"qwen2", parse_qwen2_config, qwen2_weight_rows},
      {"qwen3", parse_qwen2_config, qwen2_weight_rows},
      {"gpt_neox", parse_gpt_neox_config, gpt_neox_weight_rows},
      {"gemma2", parse_gemma2_config, gemma2_weight_rows},
  };
  return table;
}

std::string supported_model_types() {
  std::string s;
  for (const ModelFamily& f : model_families())
    s += (s.empty() ? "\"" : ", \"") + std::string(f.model_type) + "\"";
  return s;
}

const ModelFamily& family_for(std::string_view model_type, const std::string& src) {
  for (const ModelFamily& f : model_families())
    if (model_type == f.model_type) return f;
  throw InputError(src, "model_type",
                   "unsupported model type \"" + std::string(model_type) +
                       "\" (supported: " + supported_model_types() + ")");
}

}  // namespace causeway
