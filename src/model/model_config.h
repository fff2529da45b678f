// The architecture of a model, read from a Hugging Face config.json. Only what the engine
// needs is kept; everything else in the file (dropout rates, token ids, ...) is ignored, but
// settings that would change the maths and are not implemented are rejected, not ignored.
// Each family's parser (src/model/families/) fills the fields below; the defaults are GPT-2's,
// so GPT-2 code that reads only n_layer, n_embd, n_head, ... sees what it always saw.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"  // the InputError the parsers throw

namespace causeway {

enum class NormKind {
  LayerNorm,        // (x - mean) / sqrt(var + eps) * w + b (GPT-2, GPT-NeoX)
  RMSNorm,          // x / sqrt(mean(x^2) + eps) * w (Llama, Mistral, Qwen)
  RMSNormOnePlusW,  // x / sqrt(mean(x^2) + eps) * (1 + w): Gemma stores w - 1
};
const char* norm_kind_name(NormKind k);

// rope_scaling of config.json; type "" = none. Only "llama3" (NTK by parts) is implemented.
struct RopeScaling {
  std::string type;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 1.0;
  int original_max_position_embeddings = 0;
};

struct ModelConfig {
  std::string model_type;  // "gpt2", "llama", "mistral", "qwen2", "qwen3", "gpt_neox", "gemma2"
  int n_layer = 0;         // L
  int n_embd = 0;          // C = d_model
  int n_head = 0;          // NH, query heads
  int n_positions = 0;     // P, the longest sequence
  int vocab_size = 0;      // V
  int n_inner = 0;         // M = d_mlp; config n_inner, or 4 * n_embd when null/absent
  // The epsilon of every norm of the model (ln1, ln2, ln_final, q/k norms).
  float layer_norm_epsilon = 1e-5f;
  // "gelu_new" (tanh approximation; "gelu_pytorch_tanh" is the same function and is stored as
  // this), "gelu" (erf) or "silu".
  std::string activation_function = "gelu_new";

  NormKind norm = NormKind::LayerNorm;
  int n_kv_head = 0;   // KV, key/value heads (grouped-query attention when < n_head); 0 = NH
  int head_dim = 0;    // HS when set explicitly (q width NH * HS may differ from C); 0 = C / NH
  bool gated_mlp = false;          // act(x W_gate) * (x W_in), then W_out
  // Rotary embeddings on the first rotary_dim dims of each head (NeoX rotate_half pairing);
  // 0 = learned absolute positions (GPT-2's W_pos).
  int rotary_dim = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool parallel_residual = false;  // attention and MLP both read resid_pre (GPT-NeoX)
  bool qkv_bias = true, out_bias = true, mlp_bias = true;
  bool qk_norm = false;            // per-head RMSNorm of q and k before RoPE (Qwen3)
  bool tied_unembedding = true;    // W_U = W_E^T (no separate lm_head)
  bool post_norms = false;         // Gemma 2: ln1_post after attention, ln2_post after the MLP
  float attn_softcap = 0.0f;       // c * tanh(scores / c) before masking; 0 = none
  float final_logit_softcap = 0.0f;  // c * tanh(logits / c); 0 = none
  float embedding_scale = 1.0f;    // hook_embed = W_E[tok] * scale (Gemma: sqrt(d_model))
  float query_pre_attn_scalar = 0.0f;  // scores / sqrt(this) instead of sqrt(HS); 0 = HS
  int sliding_window = 0;          // keys q - window < k <= q on sliding layers; 0 = none
  std::vector<bool> sliding_layers;  // (L) which layers slide; empty = none

  int d_head() const { return head_dim ? head_dim : n_embd / n_head; }  // HS
  int kv_heads() const { return n_kv_head ? n_kv_head : n_head; }         // KV
  double attn_scale() const;  // the divisor of q.k: sqrt(query_pre_attn_scalar or HS)
  bool is_gpt2() const { return model_type == "gpt2"; }

  // Throws InputError(source_name, field, detail) for malformed JSON, an unsupported
  // model_type, missing or ill-typed fields, or sizes that do not fit together.
  static ModelConfig from_json_text(std::string_view text, const std::string& source_name);
  static ModelConfig from_json_file(const std::filesystem::path& path);

  // config.json contents that Hugging Face transformers (and from_json_text) read back.
  // GPT-2 only: the checkpoint writer trains GPT-2 models.
  nlohmann::json to_json() const;
  // Every field above under causeway's names, for any family: what a result file records in
  // /meta@model_config and what --resume compares.
  nlohmann::json describe() const;
};

}  // namespace causeway
