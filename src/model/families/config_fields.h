// Reading config.json fields for the family parsers: each helper names the file and the field
// in its InputError, so every parser reports a bad field the same way.
#pragma once

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

// The sizes every Hugging Face decoder config spells the same way: hidden_size,
// num_hidden_layers, num_attention_heads, num_key_value_heads (absent = heads), head_dim
// (absent = hidden_size / heads), intermediate_size, vocab_size, max_position_embeddings.
void read_decoder_sizes(const json& j, const std::string& src, ModelConfig& c);

// What Llama, Mistral and Qwen share: the decoder sizes, RMSNorm with rms_norm_eps, a gated
// MLP with hidden_act, rotary on the whole head with rope_theta and rope_scaling.
void read_rotary_gated_decoder(const json& j, const std::string& src, ModelConfig& c);

// rope_theta (released files) or rope_parameters.rope_theta (what transformers 5 writes).
double rope_theta(const json& j, const std::string& src);
// rope_scaling (or rope_parameters): none, "default", or "llama3" with its four factors.
RopeScaling rope_scaling(const json& j, const std::string& src);

// layer_types ("full_attention" / "sliding_attention"), one per layer; empty when absent.
std::vector<bool> sliding_layer_types(const json& j, const std::string& src, int n_layer);

}  // namespace causeway::config_fields
