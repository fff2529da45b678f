// Llama 2/3/3.1 and Mistral: RMSNorm, rotary on the whole head (rope_scaling "llama3" for
// 3.1), SwiGLU, grouped-query attention, untied lm_head. Mistral's sliding_window, when set,
// applies to every layer.
#include "model/families/config_fields.h"
#include "model/families/decoder_weights.h"
#include "model/families/families.h"

namespace causeway {

using namespace config_fields;

ModelConfig parse_llama_config(const json& j, const std::string& src) {
  ModelConfig c;
  const bool mistral = j.at("model_type") == "mistral";
  // MistralConfig's num_key_value_heads defaults to 8 (LlamaConfig's to the head count).
  read_rotary_gated_decoder(j, src, c, DecoderFields{.kv_heads_default = mistral ? 8 : 0});
  // Llama's attention_bias puts biases on q, k, v and o alike, mlp_bias on the MLP; Mistral
  // defines neither (transformers builds it without biases whatever the file says).
  c.qkv_bias = c.out_bias = !mistral && bool_or(j, "attention_bias", src, false);
  c.mlp_bias = !mistral && bool_or(j, "mlp_bias", src, false);
  c.tied_unembedding = bool_or(j, "tie_word_embeddings", src, false);
  // sliding_window is Mistral's alone (absent: its default 4096; null: none).
  if (mistral) {
    auto w = j.find("sliding_window");
    c.sliding_window = w == j.end() ? 4096
                       : w->is_null() ? 0
                                      : positive_int(*w, "sliding_window", src);
    if (c.sliding_window) c.sliding_layers.assign(c.n_layer, true);
  }
  return c;
}

std::vector<WeightRow> llama_weight_rows(const ModelConfig& cfg) { return decoder_weight_rows(cfg); }

}  // namespace causeway
