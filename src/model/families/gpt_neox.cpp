// GPT-NeoX / Pythia: attention and MLP in parallel from one resid_pre, rotary on the first
// rotary_pct of each head, LayerNorm with biases, exact-erf GELU (not gated), untied
// embed_out. query_key_value holds (head, q|k|v, d_head) along its rows, so a column split
// by whole heads keeps each rank's q, k and v together.
#include "model/families/config_fields.h"
#include "model/families/families.h"

namespace causeway {

using namespace config_fields;

ModelConfig parse_gpt_neox_config(const json& j, const std::string& src) {
  ModelConfig c;
  c.model_type = "gpt_neox";
  // GPTNeoXConfig has neither num_key_value_heads nor head_dim: every head has its own keys
  // and values, hidden_size / heads wide, whatever else the file holds.
  read_decoder_sizes(j, src, c, DecoderFields{.kv_heads = false, .head_dim = false});
  c.norm = NormKind::LayerNorm;
  c.layer_norm_epsilon = static_cast<float>(
      number_in(required(j, "layer_norm_eps", src), "layer_norm_eps", src, 0.0, 1.0));
  c.activation_function = activation(required(j, "hidden_act", src), "hidden_act", src);
  c.gated_mlp = false;
  // transformers 5 writes rope_parameters.partial_rotary_factor; released Pythia files
  // rotary_pct. As transformers, the former wins when both are there.
  const RopeFields rope = rope_fields(j, src);
  std::string pct_key = "rotary_pct";
  double pct = 0.0;
  if (const std::optional<double> f = partial_rotary_factor(j, src)) {
    pct = *f, pct_key = rope.name + ".partial_rotary_factor";
  } else {
    pct = number_in(required(j, "rotary_pct", src), "rotary_pct", src, 0.0, 1.0);
  }
  // As transformers: int(head_dim * rotary_pct), which TransformerLens' rotary_dim agrees with.
  c.rotary_dim = static_cast<int>(c.d_head() * pct);
  if (c.rotary_dim < 2 || c.rotary_dim % 2 != 0)
    throw InputError(src, pct_key,
                     show(json(pct)) + " of head_dim " + std::to_string(c.d_head()) +
                         " gives rotary_dim " + std::to_string(c.rotary_dim) +
                         " (must be even and at least 2)");
  c.rope_theta = rope_theta(j, src, "rotary_emb_base");
  c.rope_scaling = rope_scaling(j, src);
  c.parallel_residual = bool_or(j, "use_parallel_residual", src, true);
  c.qkv_bias = c.out_bias = bool_or(j, "attention_bias", src, true);
  c.mlp_bias = true;
  c.tied_unembedding = bool_or(j, "tie_word_embeddings", src, false);
  return c;
}

std::vector<WeightRow> gpt_neox_weight_rows(const ModelConfig& cfg) {
  const int64_t C = cfg.n_embd, M = cfg.n_inner, V = cfg.vocab_size;
  const int64_t QKV = 3 * static_cast<int64_t>(cfg.n_head) * cfg.d_head();
  const std::string a = "blocks.{L}.attn.", hf = "gpt_neox.layers.{L}.";
  using S = TpSplit;
  std::vector<WeightRow> t{
      {cfg.tied_unembedding ? "embed.W_E,unembed.W_U" : "embed.W_E", "gpt_neox.embed_in.weight",
       {V, C}, S::Vocabulary, 0},
      {"blocks.{L}.ln1.w", hf + "input_layernorm.weight", {C}, S::Replicated, -1},
      {"blocks.{L}.ln1.b", hf + "input_layernorm.bias", {C}, S::Replicated, -1},
      {a + "W_Q,W_K,W_V", hf + "attention.query_key_value.weight", {QKV, C}, S::Column, 0},
      {a + "W_O", hf + "attention.dense.weight", {C, QKV / 3}, S::Row, 1},
      {"blocks.{L}.ln2.w", hf + "post_attention_layernorm.weight", {C}, S::Replicated, -1},
      {"blocks.{L}.ln2.b", hf + "post_attention_layernorm.bias", {C}, S::Replicated, -1},
      {"blocks.{L}.mlp.W_in", hf + "mlp.dense_h_to_4h.weight", {M, C}, S::Column, 0},
      {"blocks.{L}.mlp.b_in", hf + "mlp.dense_h_to_4h.bias", {M}, S::Column, 0},
      {"blocks.{L}.mlp.W_out", hf + "mlp.dense_4h_to_h.weight", {C, M}, S::Row, 1},
      {"blocks.{L}.mlp.b_out", hf + "mlp.dense_4h_to_h.bias", {C}, S::Replicated, -1},
      {"ln_final.w", "gpt_neox.final_layer_norm.weight", {C}, S::Replicated, -1},
      {"ln_final.b", "gpt_neox.final_layer_norm.bias", {C}, S::Replicated, -1},
  };
  if (cfg.qkv_bias) {
    t.push_back({a + "b_Q,b_K,b_V", hf + "attention.query_key_value.bias", {QKV}, S::Column, 0});
    t.push_back({a + "b_O", hf + "attention.dense.bias", {C}, S::Replicated, -1});
  }
  if (!cfg.tied_unembedding) t.push_back({"unembed.W_U", "embed_out.weight", {V, C}, S::Vocabulary, 0});
  return t;
}

}  // namespace causeway
