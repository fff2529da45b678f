// Gemma 2: GeGLU (tanh GELU), RMSNorm with 1 + w, pre- and post-norms around attention and
// MLP, sqrt(d_model) embedding scale, queries scaled by query_pre_attn_scalar, attention and
// final-logit soft-capping, sliding-window layers (layer_types; older files: even layers),
// tied embeddings.
#include <cmath>

#include "model/families/config_fields.h"
#include "model/families/decoder_weights.h"
#include "model/families/families.h"

namespace causeway {

using namespace config_fields;

namespace {
// A soft-cap: null means none.
float softcap(const json& j, const std::string& key, const std::string& src) {
  const json& v = required(j, key, src);
  return v.is_null() ? 0.0f : static_cast<float>(positive_number(v, key, src));
}
}  // namespace

ModelConfig parse_gemma2_config(const json& j, const std::string& src) {
  ModelConfig c;
  c.model_type = "gemma2";
  // Gemma 2's head_dim is not hidden_size / heads (HF's default is 256): it must be given.
  required(j, "head_dim", src);
  read_decoder_sizes(j, src, c, DecoderFields{.kv_heads_default = 4});  // Gemma2Config's default
  c.norm = NormKind::RMSNormOnePlusW;
  c.layer_norm_epsilon =
      static_cast<float>(number_in(required(j, "rms_norm_eps", src), "rms_norm_eps", src, 0.0, 1.0));
  // Gemma2Config reads hidden_activation only (default the tanh GELU); a hidden_act beside it
  // is ignored by transformers, and so here.
  const json* act = present(j, "hidden_activation");
  c.activation_function = act ? activation(*act, "hidden_activation", src) : "gelu_new";
  c.gated_mlp = true;
  read_full_rotary(j, src, c);
  c.qkv_bias = c.out_bias = bool_or(j, "attention_bias", src, false);
  c.mlp_bias = false;
  c.tied_unembedding = bool_or(j, "tie_word_embeddings", src, true);
  c.post_norms = true;
  c.embedding_scale = std::sqrt(static_cast<float>(c.n_embd));
  c.query_pre_attn_scalar = static_cast<float>(positive_number(
      required(j, "query_pre_attn_scalar", src), "query_pre_attn_scalar", src));
  c.attn_softcap = softcap(j, "attn_logit_softcapping", src);
  c.final_logit_softcap = softcap(j, "final_logit_softcapping", src);
  // Bidirectional attention (Gemma 3 style) would change every pattern; only causal is built.
  if (bool_or(j, "use_bidirectional_attention", src, false))
    throw InputError(src, "use_bidirectional_attention",
                     "unsupported value true (only causal attention is implemented)");
  c.sliding_window = positive_int(required(j, "sliding_window", src), "sliding_window", src);
  c.sliding_layers = sliding_layer_types(j, src, c.n_layer);
  if (c.sliding_layers.empty())
    for (int L = 0; L < c.n_layer; ++L) c.sliding_layers.push_back(L % 2 == 0);
  return c;
}

std::vector<WeightRow> gemma2_weight_rows(const ModelConfig& cfg) { return decoder_weight_rows(cfg); }

}  // namespace causeway
