#include "model/model_config.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "model/families/config_fields.h"
#include "model/families/families.h"

namespace causeway {

namespace {

using json = nlohmann::json;

// The shortest decimal that reads back as `f`, as a double: 1e-5f is written "1e-05", not
// "9.999999747378752e-06".
double float_as_written(float f) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

}  // namespace

const char* norm_kind_name(NormKind k) {
  switch (k) {
    case NormKind::LayerNorm: return "layernorm";
    case NormKind::RMSNorm: return "rmsnorm";
    case NormKind::RMSNormOnePlusW: return "rmsnorm_one_plus_w";
  }
  return "?";
}

double ModelConfig::attn_scale() const {
  return std::sqrt(query_pre_attn_scalar > 0 ? static_cast<double>(query_pre_attn_scalar)
                                             : static_cast<double>(d_head()));
}

// The family table (families/families.cpp) picks the parser from model_type.
ModelConfig ModelConfig::from_json_text(std::string_view text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(src, "", std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) throw InputError(src, "", "must be a JSON object, got " + config_fields::show(j));
  auto mt = j.find("model_type");
  if (mt == j.end())
    throw InputError(src, "model_type", "missing (supported: " + supported_model_types() + ")");
  if (!mt->is_string())
    throw InputError(src, "model_type",
                     "unsupported model type " + config_fields::show(*mt) +
                         " (supported: " + supported_model_types() + ")");
  return family_for(mt->get<std::string>(), src).parse(j, src);
}

ModelConfig ModelConfig::from_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "", "cannot open the model config (no such file?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path.string(), "", "read error");
  return from_json_text(ss.str(), path.string());
}

nlohmann::json ModelConfig::describe() const {
  json j;
  j["model_type"] = model_type;
  j["n_layer"] = n_layer;
  j["n_embd"] = n_embd;
  j["n_head"] = n_head;
  j["n_kv_head"] = kv_heads();
  j["d_head"] = d_head();
  j["n_positions"] = n_positions;
  j["vocab_size"] = vocab_size;
  j["n_inner"] = n_inner;
  j["norm"] = norm_kind_name(norm);
  j["layer_norm_epsilon"] = float_as_written(layer_norm_epsilon);
  j["activation_function"] = activation_function;
  j["gated_mlp"] = gated_mlp;
  j["rotary_dim"] = rotary_dim;
  j["rope_theta"] = rope_theta;
  if (!rope_scaling.type.empty())
    j["rope_scaling"] = {{"type", rope_scaling.type},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings",
                          rope_scaling.original_max_position_embeddings}};
  j["parallel_residual"] = parallel_residual;
  j["qkv_bias"] = qkv_bias;
  j["out_bias"] = out_bias;
  j["mlp_bias"] = mlp_bias;
  j["qk_norm"] = qk_norm;
  j["tied_unembedding"] = tied_unembedding;
  j["post_norms"] = post_norms;
  j["attn_softcap"] = float_as_written(attn_softcap);
  j["final_logit_softcap"] = float_as_written(final_logit_softcap);
  j["embedding_scale"] = float_as_written(embedding_scale);
  j["query_pre_attn_scalar"] = float_as_written(query_pre_attn_scalar);
  j["sliding_window"] = sliding_window;
  j["sliding_layers"] = sliding_layers;
  return j;
}

nlohmann::json ModelConfig::to_json() const {
  if (!is_gpt2())
    throw Error("ModelConfig::to_json writes GPT-2 configs only, not model_type \"" + model_type + "\"");
  json j;
  j["architectures"] = json::array({"GPT2LMHeadModel"});
  j["model_type"] = model_type;
  j["n_layer"] = n_layer;
  j["n_embd"] = n_embd;
  j["n_head"] = n_head;
  j["n_positions"] = n_positions;
  j["vocab_size"] = vocab_size;
  j["n_inner"] = n_inner;
  j["layer_norm_epsilon"] = float_as_written(layer_norm_epsilon);
  j["activation_function"] = activation_function;
  j["scale_attn_weights"] = true;
  j["scale_attn_by_inverse_layer_idx"] = false;
  j["tie_word_embeddings"] = true;
  return j;
}

}  // namespace causeway
