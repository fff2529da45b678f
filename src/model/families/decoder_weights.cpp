// nn.Linear stores (out, in): column-parallel tensors split axis 0, row-parallel axis 1.
#include "model/families/decoder_weights.h"

namespace causeway {

std::vector<WeightRow> decoder_weight_rows(const ModelConfig& cfg) {
  const int64_t C = cfg.n_embd, M = cfg.n_inner, V = cfg.vocab_size;
  const int64_t HS = cfg.d_head(), Q = cfg.n_head * HS, KV = cfg.kv_heads() * HS;
  // TransformerLens names the grouped k/v weights _W_K/_W_V (n_key_value_heads set).
  const std::string g = cfg.kv_heads() < cfg.n_head ? "_" : "";
  const std::string a = "blocks.{L}.attn.", hf = "model.layers.{L}.";
  using S = TpSplit;
  std::vector<WeightRow> t{
      {cfg.tied_unembedding ? "embed.W_E,unembed.W_U" : "embed.W_E", "model.embed_tokens.weight",
       {V, C}, S::Vocabulary, 0},
      {"blocks.{L}.ln1.w", hf + "input_layernorm.weight", {C}, S::Replicated, -1},
      {a + "W_Q", hf + "self_attn.q_proj.weight", {Q, C}, S::Column, 0},
      {a + g + "W_K", hf + "self_attn.k_proj.weight", {KV, C}, S::Column, 0},
      {a + g + "W_V", hf + "self_attn.v_proj.weight", {KV, C}, S::Column, 0},
      {a + "W_O", hf + "self_attn.o_proj.weight", {C, Q}, S::Row, 1},
      {"blocks.{L}.mlp.W_gate", hf + "mlp.gate_proj.weight", {M, C}, S::Column, 0},
      {"blocks.{L}.mlp.W_in", hf + "mlp.up_proj.weight", {M, C}, S::Column, 0},
      {"blocks.{L}.mlp.W_out", hf + "mlp.down_proj.weight", {C, M}, S::Row, 1},
      {"ln_final.w", "model.norm.weight", {C}, S::Replicated, -1},
  };
  if (cfg.qkv_bias) {
    t.push_back({a + "b_Q", hf + "self_attn.q_proj.bias", {Q}, S::Column, 0});
    t.push_back({a + g + "b_K", hf + "self_attn.k_proj.bias", {KV}, S::Column, 0});
    t.push_back({a + g + "b_V", hf + "self_attn.v_proj.bias", {KV}, S::Column, 0});
  }
  if (cfg.out_bias) t.push_back({a + "b_O", hf + "self_attn.o_proj.bias", {C}, S::Replicated, -1});
  if (cfg.mlp_bias) {
    t.push_back({"blocks.{L}.mlp.b_gate", hf + "mlp.gate_proj.bias", {M}, S::Column, 0});
    t.push_back({"blocks.{L}.mlp.b_in", hf + "mlp.up_proj.bias", {M}, S::Column, 0});
    t.push_back({"blocks.{L}.mlp.b_out", hf + "mlp.down_proj.bias", {C}, S::Replicated, -1});
  }
  if (cfg.qk_norm) {
    t.push_back({a + "q_norm.w", hf + "self_attn.q_norm.weight", {HS}, S::Replicated, -1});
    t.push_back({a + "k_norm.w", hf + "self_attn.k_norm.weight", {HS}, S::Replicated, -1});
  }
  if (cfg.post_norms) {
    // Gemma 2: input_layernorm = ln1, post_attention_layernorm = ln1_post,
    // pre_feedforward_layernorm = ln2, post_feedforward_layernorm = ln2_post.
    t.push_back({"blocks.{L}.ln1_post.w", hf + "post_attention_layernorm.weight", {C}, S::Replicated, -1});
    t.push_back({"blocks.{L}.ln2.w", hf + "pre_feedforward_layernorm.weight", {C}, S::Replicated, -1});
    t.push_back({"blocks.{L}.ln2_post.w", hf + "post_feedforward_layernorm.weight", {C}, S::Replicated, -1});
  } else {
    t.push_back({"blocks.{L}.ln2.w", hf + "post_attention_layernorm.weight", {C}, S::Replicated, -1});
  }
  if (!cfg.tied_unembedding) t.push_back({"unembed.W_U", "lm_head.weight", {V, C}, S::Vocabulary, 0});
  return t;
}

}  // namespace causeway
