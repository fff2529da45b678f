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
  const bool qwen3 = j.at("model_type") == "qwen3";
  // Both configs default num_key_value_heads to 32 when absent; Qwen3's head_dim is 128 then.
  read_rotary_gated_decoder(j, src, c,
                            DecoderFields{.kv_heads_default = 32, .head_dim_default = qwen3 ? 128 : 0});
  c.qkv_bias = qwen3 ? bool_or(j, "attention_bias", src, false) : true;
  c.out_bias = qwen3 && c.qkv_bias;
  c.mlp_bias = false;
  c.qk_norm = qwen3;
  c.tied_unembedding = bool_or(j, "tie_word_embeddings", src, false);
  if (bool_or(j, "use_sliding_window", src, false)) {
    c.sliding_layers = sliding_layer_types(j, src, c.n_layer);
    if (c.sliding_layers.empty()) {
      // As transformers: without layer_types, layers from max_window_layers (default 28) on slide.
      const json* mw = present(j, "max_window_layers");
      const int from = mw && *mw == 0 ? 0 : mw ? positive_int(*mw, "max_window_layers", src) : 28;
      for (int L = 0; L < c.n_layer; ++L) c.sliding_layers.push_back(L >= from);
    }
    // Absent: the default 4096; null: no window, so no layer slides.
    auto w = j.find("sliding_window");
    c.sliding_window = w == j.end() ? 4096 : w->is_null() ? 0 : positive_int(*w, "sliding_window", src);
    if (c.sliding_window == 0) c.sliding_layers.clear();
  }
  return c;
}

std::vector<WeightRow> qwen2_weight_rows(const ModelConfig& cfg) { return decoder_weight_rows(cfg); }

}  // namespace causeway
