// Qwen2 (q/k/v biases by definition, no o bias) and Qwen3 (per-head q/k RMSNorm before RoPE,
// biases only with attention_bias). Sliding-window attention only when use_sliding_window is
// true, on the layers layer_types marks.
#include "model/families/config_fields.h"
#include "model/families/decoder_weights.h"
#include "model/families/families.h"

namespace causeway {

using namespace config_fields;

ModelConfig parse_qwen2_config(const json& j, const std::string& src) {
  ModelConfig c;
  read_rotary_gated_decoder(j, src, c);
  const bool qwen3 = c.model_type == "qwen3";
  c.qkv_bias = qwen3 ? bool_or(j, "attention_bias", src, false) : true;
  c.out_bias = qwen3 && c.qkv_bias;
  c.mlp_bias = false;
  c.qk_norm = qwen3;
  c.tied_unembedding = bool_or(j, "tie_word_embeddings", src, false);
  if (bool_or(j, "use_sliding_window", src, false)) {
    c.sliding_layers = sliding_layer_types(j, src, c.n_layer);
    if (c.sliding_layers.empty())
      throw InputError(src, "layer_types",
                       "missing (use_sliding_window is true: layer_types must say which layers slide)");
    c.sliding_window = positive_int(required(j, "sliding_window", src), "sliding_window", src);
  }
  return c;
}

std::vector<WeightRow> qwen2_weight_rows(const ModelConfig& cfg) { return decoder_weight_rows(cfg); }

}  // namespace causeway
