#include "model/gpt2_weights.h"

#include "core/error.h"
#include "core/finite.h"
#include "model/safetensors.h"
#include "model/weight_table.h"

namespace causeway {

namespace {
std::string block(int L, const char* name) { return "blocks." + std::to_string(L) + "." + name; }

// A NaN or inf weight makes every result NaN; it is refused where it is stored. `slice` is a
// column range [first, first + width) of a tensor with `row` columns, or the whole tensor.
void require_finite_weight(const Checkpoint& ckpt, const std::string& tensor, const Tensor& t,
                           int64_t first = 0, int64_t width = 0, int64_t row = 0) {
  const int64_t i = first_nonfinite(t.data, t.numel());
  if (i < 0) return;
  const int64_t at = width ? (i / width) * row + first + i % width : i;
  throw InputError(ckpt.file_of(tensor), tensor,
                   "holds " + nonfinite_name(t.data[i]) + " at element " + std::to_string(at) +
                       " (flat index); NaN and inf weights are refused");
}
}  // namespace

std::vector<TensorSpec> GPT2Weights::table(const ModelConfig& cfg) {
  const int64_t C = cfg.n_embd, M = cfg.n_inner, V = cfg.vocab_size, P = cfg.n_positions;
  std::vector<TensorSpec> t{{"W_E", {V, C}}, {"W_pos", {P, C}}};
  for (int L = 0; L < cfg.n_layer; ++L) {
    for (const char* n : {"ln1.w", "ln1.b"}) t.push_back({block(L, n), {C}});
    for (const char* n : {"attn.W_Q", "attn.W_K", "attn.W_V"}) t.push_back({block(L, n), {C, C}});
    for (const char* n : {"attn.b_Q", "attn.b_K", "attn.b_V"}) t.push_back({block(L, n), {C}});
    t.push_back({block(L, "attn.W_O"), {C, C}});
    t.push_back({block(L, "attn.b_O"), {C}});
    for (const char* n : {"ln2.w", "ln2.b"}) t.push_back({block(L, n), {C}});
    t.push_back({block(L, "mlp.W_in"), {C, M}});
    t.push_back({block(L, "mlp.b_in"), {M}});
    t.push_back({block(L, "mlp.W_out"), {M, C}});
    t.push_back({block(L, "mlp.b_out"), {C}});
  }
  t.push_back({"ln_final.w", {C}});
  t.push_back({"ln_final.b", {C}});
  return t;
}

GPT2Weights::GPT2Weights(const ModelConfig& cfg) : arena_(table(cfg)) { bind(cfg); }

void GPT2Weights::bind(const ModelConfig& cfg) {
  W_E = arena_.get("W_E");
  W_pos = arena_.get("W_pos");
  blocks.resize(cfg.n_layer);
  for (int L = 0; L < cfg.n_layer; ++L) {
    BlockWeights& b = blocks[L];
    auto g = [&](const char* n) { return arena_.get(block(L, n)); };
    b.ln1_w = g("ln1.w"), b.ln1_b = g("ln1.b");
    b.W_Q = g("attn.W_Q"), b.W_K = g("attn.W_K"), b.W_V = g("attn.W_V");
    b.b_Q = g("attn.b_Q"), b.b_K = g("attn.b_K"), b.b_V = g("attn.b_V");
    b.W_O = g("attn.W_O"), b.b_O = g("attn.b_O");
    b.ln2_w = g("ln2.w"), b.ln2_b = g("ln2.b");
    b.W_in = g("mlp.W_in"), b.b_in = g("mlp.b_in");
    b.W_out = g("mlp.W_out"), b.b_out = g("mlp.b_out");
  }
  ln_final_w = arena_.get("ln_final.w");
  ln_final_b = arena_.get("ln_final.b");
  W_U = W_E;
}

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The sizes config.json gives, each against a stored tensor that carries it, so that a wrong
// n_embd is reported as a wrong n_embd rather than as a tensor shape or a failed allocation.
void check_config_sizes(const ModelConfig& cfg, const Checkpoint& ckpt, const std::string& prefix,
                        const std::string& config_source) {
  auto check = [&](const char* field, int64_t value, const std::string& tensor, size_t dim) {
    const TensorInfo& t = ckpt.info(prefix + tensor);
    if (dim < t.shape.size() && t.shape[dim] == value) return;
    throw InputError(config_source, field,
                     std::to_string(value) + " disagrees with the weights: " + ckpt.file_of(t.name) +
                         " holds " + t.name + " of shape " + shape_text(t.shape));
  };
  int stored_layers = 0;
  while (stored_layers <= cfg.n_layer && ckpt.has(prefix + "h." + std::to_string(stored_layers) + ".ln_1.weight"))
    ++stored_layers;
  if (stored_layers != cfg.n_layer)
    throw InputError(config_source, "n_layer",
                     std::to_string(cfg.n_layer) + " disagrees with the weights: they" +
                         (stored_layers < cfg.n_layer
                              ? " hold " + std::to_string(stored_layers) + " blocks (no h." +
                                    std::to_string(stored_layers) + ".ln_1.weight)"
                              : " hold more blocks (h." + std::to_string(cfg.n_layer) + ".ln_1.weight exists)"));
  check("vocab_size", cfg.vocab_size, "wte.weight", 0);
  check("n_embd", cfg.n_embd, "wte.weight", 1);
  check("n_positions", cfg.n_positions, "wpe.weight", 0);
  check("n_inner", cfg.n_inner, "h.0.mlp.c_fc.weight", 1);
}

}  // namespace

GPT2Weights GPT2Weights::load(const ModelConfig& cfg, const Checkpoint& ckpt,
                              const std::string& config_source) {
  const std::string prefix = ckpt.has("transformer.wte.weight") ? "transformer." : "";
  const int64_t C = cfg.n_embd, M = cfg.n_inner, V = cfg.vocab_size, P = cfg.n_positions;
  const std::string why = config_source;
  // Every size is checked against the stored shapes before the arena is allocated from them.
  check_config_sizes(cfg, ckpt, prefix, config_source);
  // The family's weight table lists every stored tensor; all are checked before allocating.
  for (const WeightRow& r : weight_table(cfg)) ckpt.expect_shape(prefix + r.hf_name, r.shape, why);
  GPT2Weights w(cfg);

  // Each tensor is checked, copied as fp32 and its mapped pages released, one at a time, so
  // peak memory stays near the fp32 copy.
  auto whole = [&](const std::string& name, std::vector<int64_t> shape, Tensor dst) {
    const std::string full = prefix + name;
    ckpt.expect_shape(full, shape, why);
    ckpt.read(full, dst.data);
    require_finite_weight(ckpt, full, dst);
    ckpt.release(full);
  };
  whole("wte.weight", {V, C}, w.W_E);
  whole("wpe.weight", {P, C}, w.W_pos);
  for (int L = 0; L < cfg.n_layer; ++L) {
    BlockWeights& b = w.blocks[L];
    const std::string h = "h." + std::to_string(L) + ".";
    whole(h + "ln_1.weight", {C}, b.ln1_w);
    whole(h + "ln_1.bias", {C}, b.ln1_b);
    const std::string qkv_w = prefix + h + "attn.c_attn.weight";
    const std::string qkv_b = prefix + h + "attn.c_attn.bias";
    ckpt.expect_shape(qkv_w, {C, 3 * C}, why);
    ckpt.expect_shape(qkv_b, {3 * C}, why);
    Tensor* Ws[3] = {&b.W_Q, &b.W_K, &b.W_V};
    Tensor* bs[3] = {&b.b_Q, &b.b_K, &b.b_V};
    for (int i = 0; i < 3; ++i) {
      ckpt.read_columns(qkv_w, i * C, (i + 1) * C, Ws[i]->data);
      ckpt.read_columns(qkv_b, i * C, (i + 1) * C, bs[i]->data);
      require_finite_weight(ckpt, qkv_w, *Ws[i], i * C, C, 3 * C);
      require_finite_weight(ckpt, qkv_b, *bs[i], i * C, C, 3 * C);
    }
    ckpt.release(qkv_w);
    ckpt.release(qkv_b);
    whole(h + "attn.c_proj.weight", {C, C}, b.W_O);
    whole(h + "attn.c_proj.bias", {C}, b.b_O);
    whole(h + "ln_2.weight", {C}, b.ln2_w);
    whole(h + "ln_2.bias", {C}, b.ln2_b);
    whole(h + "mlp.c_fc.weight", {C, M}, b.W_in);
    whole(h + "mlp.c_fc.bias", {M}, b.b_in);
    whole(h + "mlp.c_proj.weight", {M, C}, b.W_out);
    whole(h + "mlp.c_proj.bias", {C}, b.b_out);
  }
  whole("ln_f.weight", {C}, w.ln_final_w);
  whole("ln_f.bias", {C}, w.ln_final_b);
  // GPT-2 ties the unembedding to wte; a separate lm_head.weight (untied fine-tunes) is not
  // supported yet, and saying so beats silently using the wrong matrix.
  if (ckpt.has("lm_head.weight")) {
    ckpt.expect_shape("lm_head.weight", {V, C}, why);
    std::vector<float> lm(static_cast<size_t>(V * C));
    ckpt.read("lm_head.weight", lm.data());
    for (int64_t i = 0; i < V * C; ++i)
      if (lm[i] != w.W_E.data[i])
        throw InputError(ckpt.file_of("lm_head.weight"), "lm_head.weight",
                         "differs from wte.weight; untied unembeddings are not supported");
  }
  return w;
}

}  // namespace causeway
