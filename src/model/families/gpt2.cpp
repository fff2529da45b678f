// GPT-2: learned positions, LayerNorm, tanh or erf GELU, fused c_attn, tied unembedding.
// Hugging Face stores Conv1D weights as (in, out), so column splits are on axis 1.
#include <climits>

#include "model/families/config_fields.h"
#include "model/families/families.h"

namespace causeway {

using namespace config_fields;

namespace {

// GPT2Config.attribute_map: transformers accepts these generic names for the GPT-2 ones.
const char* alias_of(std::string_view key) {
  if (key == "n_embd") return "hidden_size";
  if (key == "n_positions") return "max_position_embeddings";
  if (key == "n_head") return "num_attention_heads";
  if (key == "n_layer") return "num_hidden_layers";
  return nullptr;
}

// The value under `key` or its alias (null when neither is there); both present and
// different is ambiguous, so it is an error rather than a silent pick.
const json* lookup(const json& j, const std::string& key, const std::string& src) {
  auto it = j.find(key);
  const json* v = it != j.end() ? &*it : nullptr;
  if (const char* alias = alias_of(key)) {
    auto a = j.find(alias);
    if (a != j.end()) {
      if (v && *v != *a)
        throw InputError(src, key,
                         show(*v) + " disagrees with its alias " + alias + " = " + show(*a));
      if (!v) v = &*a;
    }
  }
  return v;
}

int gpt2_int(const json& j, const std::string& key, const std::string& src) {
  const json* v = lookup(j, key, src);
  if (!v) {
    const char* alias = alias_of(key);
    throw InputError(src, key,
                     std::string("missing (a GPT-2 config.json must set it") +
                         (alias ? std::string(" or its alias ") + alias : "") + ")");
  }
  return positive_int(*v, key, src);
}

}  // namespace

ModelConfig parse_gpt2_config(const json& j, const std::string& src) {
  ModelConfig c;
  c.model_type = "gpt2";
  c.n_layer = gpt2_int(j, "n_layer", src);
  c.n_embd = gpt2_int(j, "n_embd", src);
  c.n_head = gpt2_int(j, "n_head", src);
  c.n_positions = gpt2_int(j, "n_positions", src);
  c.vocab_size = gpt2_int(j, "vocab_size", src);
  if (c.n_embd % c.n_head != 0)
    throw InputError(src, "n_embd",
                     std::to_string(c.n_embd) + " is not divisible by n_head = " +
                         std::to_string(c.n_head));
  c.n_kv_head = c.n_head;

  auto inner = j.find("n_inner");
  if (inner == j.end() || inner->is_null()) {
    if (c.n_embd > INT_MAX / 4)
      throw InputError(src, "n_embd", "too large: 4 * n_embd overflows the MLP width");
    c.n_inner = 4 * c.n_embd;
  } else {
    c.n_inner = positive_int(*inner, "n_inner", src);
  }

  auto eps = j.find("layer_norm_epsilon");
  if (eps != j.end())
    c.layer_norm_epsilon =
        static_cast<float>(number_in(*eps, "layer_norm_epsilon", src, 0.0, 1.0));

  auto act = j.find("activation_function");
  if (act != j.end()) {
    c.activation_function = activation(*act, "activation_function", src);
    if (c.activation_function == "silu")
      throw InputError(src, "activation_function",
                       "unsupported activation " + show(*act) +
                           " (supported: \"gelu_new\", \"gelu_pytorch_tanh\", \"gelu\")");
  }

  // These change the attention maths; the engine implements only the GPT-2 default.
  auto saw = j.find("scale_attn_weights");
  if (saw != j.end() && !(saw->is_boolean() && saw->get<bool>()))
    throw InputError(src, "scale_attn_weights",
                     "unsupported value " + show(*saw) + " (only true is implemented)");
  auto inv = j.find("scale_attn_by_inverse_layer_idx");
  if (inv != j.end() && !(inv->is_boolean() && !inv->get<bool>()))
    throw InputError(src, "scale_attn_by_inverse_layer_idx",
                     "unsupported value " + show(*inv) + " (only false is implemented)");
  return c;
}

// Names without the optional "transformer." prefix that some GPT-2 checkpoints carry. Files
// may also hold lm_head.weight (a copy of wte, checked equal on load) and, from older
// exports, h.L.attn.bias mask buffers; neither is a weight of its own, so neither is a row.
std::vector<WeightRow> gpt2_weight_rows(const ModelConfig& cfg) {
  const int64_t C = cfg.n_embd, M = cfg.n_inner, V = cfg.vocab_size, P = cfg.n_positions;
  using S = TpSplit;
  return {
      {"embed.W_E,unembed.W_U", "wte.weight", {V, C}, S::Vocabulary, 0},
      {"pos_embed.W_pos", "wpe.weight", {P, C}, S::Replicated, -1},
      {"blocks.{L}.ln1.w", "h.{L}.ln_1.weight", {C}, S::Replicated, -1},
      {"blocks.{L}.ln1.b", "h.{L}.ln_1.bias", {C}, S::Replicated, -1},
      // q | k | v side by side: a rank takes its columns of each third.
      {"blocks.{L}.attn.W_Q,W_K,W_V", "h.{L}.attn.c_attn.weight", {C, 3 * C}, S::Column, 1},
      {"blocks.{L}.attn.b_Q,b_K,b_V", "h.{L}.attn.c_attn.bias", {3 * C}, S::Column, 0},
      {"blocks.{L}.attn.W_O", "h.{L}.attn.c_proj.weight", {C, C}, S::Row, 0},
      {"blocks.{L}.attn.b_O", "h.{L}.attn.c_proj.bias", {C}, S::Replicated, -1},
      {"blocks.{L}.ln2.w", "h.{L}.ln_2.weight", {C}, S::Replicated, -1},
      {"blocks.{L}.ln2.b", "h.{L}.ln_2.bias", {C}, S::Replicated, -1},
      {"blocks.{L}.mlp.W_in", "h.{L}.mlp.c_fc.weight", {C, M}, S::Column, 1},
      {"blocks.{L}.mlp.b_in", "h.{L}.mlp.c_fc.bias", {M}, S::Column, 0},
      {"blocks.{L}.mlp.W_out", "h.{L}.mlp.c_proj.weight", {M, C}, S::Row, 0},
      {"blocks.{L}.mlp.b_out", "h.{L}.mlp.c_proj.bias", {C}, S::Replicated, -1},
      {"ln_final.w", "ln_f.weight", {C}, S::Replicated, -1},
      {"ln_final.b", "ln_f.bias", {C}, S::Replicated, -1},
  };
}

}  // namespace causeway
