// The architecture of a model, read from a Hugging Face config.json. Only what the engine
// needs is kept; everything else in the file (dropout rates, token ids, ...) is ignored, but
// settings that would change the maths and are not implemented are rejected, not ignored.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"  // the InputError the parsers throw

namespace causeway {

struct ModelConfig {
  std::string model_type;  // "gpt2" only for now
  int n_layer = 0;         // L
  int n_embd = 0;          // C = d_model
  int n_head = 0;          // NH
  int n_positions = 0;     // P, the longest sequence
  int vocab_size = 0;      // V
  int n_inner = 0;         // M = d_mlp; config n_inner, or 4 * n_embd when null/absent
  float layer_norm_epsilon = 1e-5f;
  // "gelu_new" (tanh approximation; "gelu_pytorch_tanh" is stored as this) or "gelu" (erf).
  std::string activation_function = "gelu_new";

  int d_head() const { return n_embd / n_head; }  // HS

  // Throws InputError(source_name, field, detail) for malformed JSON, an unsupported
  // model_type, missing or ill-typed fields, or sizes that do not fit together.
  static ModelConfig from_json_text(std::string_view text, const std::string& source_name);
  static ModelConfig from_json_file(const std::filesystem::path& path);

  // config.json contents that Hugging Face transformers (and from_json_text) read back.
  nlohmann::json to_json() const;
};

}  // namespace causeway
