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
  read_rotary_gated_decoder(j, src, c);
  // Llama's attention_bias puts biases on q, k, v and o alike; Mistral has none.
  c.qkv_bias = c.out_bias = bool_or(j, "attention_bias", src, false);
  c.mlp_bias = bool_or(j, "mlp_bias", src, false);
  c.tied_unembedding = bool_or(j, "tie_word_embeddings", src, false);
  if (const json* w = present(j, "sliding_window"); w && c.model_type == "mistral") {
    c.sliding_window = positive_int(*w, "sliding_window", src);
    c.sliding_layers.assign(c.n_layer, true);
  }
  return c;
}

std::vector<WeightRow> llama_weight_rows(const ModelConfig& cfg) { return decoder_weight_rows(cfg); }

}  // namespace causeway
