#include "model/model_config.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
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

// Sizes far past any released model are refused before anything is sized from them: a
// typo'd num_hidden_layers = 2147483647 would otherwise build tables of billions of rows and
// exhaust memory before the weights could disagree. The limits are generous (the largest
// models have ~130 layers, 128 heads, d_model 16384, vocabularies of 256k, ~1e12 parameters).
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 65536;
constexpr int64_t kMaxWidth = int64_t{1} << 20;       // d_model, head_dim
constexpr int64_t kMaxMlpWidth = int64_t{1} << 24;    // d_mlp
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxPositions = int64_t{1} << 24;   // learned positions only (W_pos rows)
constexpr double kMaxParameters = 4e12;

void check_sizes(const ModelConfig& c, const std::string& src) {
  const bool gpt2 = c.is_gpt2();
  auto at_most = [&](int64_t v, int64_t limit, const char* gpt2_name, const char* hf_name,
                     const char* what) {
    if (v > limit)
      throw InputError(src, gpt2 ? gpt2_name : hf_name,
                       std::to_string(v) + " is more " + what + " than causeway allows (at most " +
                           std::to_string(limit) + ")");
  };
  at_most(c.n_layer, kMaxLayers, "n_layer", "num_hidden_layers", "layers");
  at_most(c.n_head, kMaxHeads, "n_head", "num_attention_heads", "heads");
  at_most(c.n_embd, kMaxWidth, "n_embd", "hidden_size", "hidden units");
  at_most(c.d_head(), kMaxWidth, "n_embd", "head_dim", "units per head");
  at_most(c.n_inner, kMaxMlpWidth, "n_inner", "intermediate_size", "MLP units");
  at_most(c.vocab_size, kMaxVocab, "vocab_size", "vocab_size", "tokens");
  if (c.rotary_dim == 0)
    at_most(c.n_positions, kMaxPositions, "n_positions", "max_position_embeddings", "positions");
  // Every tensor's size follows from these; their sum in double cannot overflow.
  const double C = c.n_embd, HS = c.d_head(), Q = c.n_head * HS, KV = c.kv_heads() * HS,
               M = c.n_inner, V = c.vocab_size, P = c.rotary_dim == 0 ? c.n_positions : 0;
  const double per_layer = C * (Q + 2 * KV) + Q * C + (c.gated_mlp ? 3 : 2) * C * M;
  const double total = c.n_layer * per_layer + V * C * (c.tied_unembedding ? 1 : 2) + P * C;
  if (total > kMaxParameters) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "these sizes describe %.3g parameters, more than causeway allows (at most %.0e)",
                  total, kMaxParameters);
    throw InputError(src, "", buf);
  }
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
  ModelConfig c = family_for(mt->get<std::string>(), src).parse(j, src);
  check_sizes(c, src);
  return c;
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
