// Reading config.json fields for the family parsers: each helper names the file and the field
// in its InputError, so every parser reports a bad field the same way.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_config.h"

namespace causeway::config_fields {

using json = nlohmann::json;

// A value as it appeared in the file, shortened so one bad field cannot flood the message.
std::string show(const json& v);

int positive_int(const json& v, const std::string& field, const std::string& src);
// A finite number in [lo, hi].
double number_in(const json& v, const std::string& field, const std::string& src, double lo,
                 double hi);
double positive_number(const json& v, const std::string& field, const std::string& src);
bool boolean(const json& v, const std::string& field, const std::string& src);

// The field, or InputError "missing (model_type \"<mt>\" requires it)".
const json& required(const json& j, const std::string& key, const std::string& src);
// The field when present and not null, else nullptr.
const json* present(const json& j, const std::string& key);
int required_int(const json& j, const std::string& key, const std::string& src);
bool bool_or(const json& j, const std::string& key, const std::string& src, bool fallback);

// hidden_act-style names: "silu", "gelu" (erf), "gelu_new" / "gelu_pytorch_tanh" (tanh).
std::string activation(const json& v, const std::string& field, const std::string& src);

// Which optional size fields a family's config class defines (transformers ignores the
// others, and so does causeway: a GPT-NeoX file's num_key_value_heads changes nothing), and
// the family's default when the field is absent.
struct DecoderFields {
  bool kv_heads = true;       // num_key_value_heads
  int kv_heads_default = 0;   // when absent; 0 = num_attention_heads (null is that too)
  bool head_dim = true;       // head_dim
  int head_dim_default = 0;   // when absent; 0 = hidden_size / num_attention_heads
};

// The sizes every Hugging Face decoder config spells the same way: hidden_size,
// num_hidden_layers, num_attention_heads, num_key_value_heads and head_dim (as `f` says),
// intermediate_size, vocab_size, max_position_embeddings.
void read_decoder_sizes(const json& j, const std::string& src, ModelConfig& c,
                        const DecoderFields& f = {});

// What Llama, Mistral and Qwen share: the decoder sizes, RMSNorm with rms_norm_eps, a gated
// MLP with hidden_act, rotary on the whole head (read_full_rotary).
void read_rotary_gated_decoder(const json& j, const std::string& src, ModelConfig& c,
                               const DecoderFields& f = {});

// The object holding the rotary settings, as transformers 5 finds it: a non-null rope_scaling
// (older files), else rope_parameters (what transformers 5 writes); null when neither. An
// object nested per layer type yields its one entry (entries that differ are refused).
struct RopeFields {
  const json* params = nullptr;
  std::string name;  // "rope_scaling", "rope_parameters" or "rope_parameters.full_attention"
};
RopeFields rope_fields(const json& j, const std::string& src);

// rope_theta inside rope_fields(), else `legacy_key` beside it (GPT-NeoX: rotary_emb_base).
double rope_theta(const json& j, const std::string& src,
                  const std::string& legacy_key = "rope_theta");
// rope_fields(): none, "default", or "llama3" with its four factors.
RopeScaling rope_scaling(const json& j, const std::string& src);
// partial_rotary_factor inside rope_fields(), when given.
std::optional<double> partial_rotary_factor(const json& j, const std::string& src);
// rotary_dim = head_dim, rope_theta, rope_scaling; a partial_rotary_factor other than 1 is
// refused.
void read_full_rotary(const json& j, const std::string& src, ModelConfig& c);

// layer_types ("full_attention" / "sliding_attention"), one per layer; empty when absent.
std::vector<bool> sliding_layer_types(const json& j, const std::string& src, int n_layer);

}  // namespace causeway::config_fields
