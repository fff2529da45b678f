#include "model/model_weights.h"

#include <algorithm>

#include "core/error.h"
#include "core/finite.h"
#include "model/safetensors.h"
#include "model/weight_table.h"

namespace causeway {

namespace {

std::string block(int L, const char* name) { return "blocks." + std::to_string(L) + "." + name; }

// GPT-2's Conv1D stores (in, out); every other family's nn.Linear (out, in).
bool conv1d_layout(const ModelConfig& cfg) { return cfg.is_gpt2(); }

struct ParamSpec {
  std::string name;
  Shape shape;
  bool matrix;
};

// Every parameter, in one order for all families; for GPT-2 the order (and so the arena and
// every seeded initialization) is what it has always been.
std::vector<ParamSpec> param_specs(const ModelConfig& cfg) {
  const int64_t C = cfg.n_embd, M = cfg.n_inner, V = cfg.vocab_size, P = cfg.n_positions;
  const int64_t HS = cfg.d_head(), Q = cfg.n_head * HS, KV = cfg.kv_heads() * HS;
  const bool conv = conv1d_layout(cfg), ln = cfg.norm == NormKind::LayerNorm;
  auto mat = [&](int64_t in, int64_t out) { return conv ? Shape{in, out} : Shape{out, in}; };
  std::vector<ParamSpec> t{{"W_E", {V, C}, true}};
  if (cfg.rotary_dim == 0) t.push_back({"W_pos", {P, C}, false});
  for (int L = 0; L < cfg.n_layer; ++L) {
    t.push_back({block(L, "ln1.w"), {C}, false});
    if (ln) t.push_back({block(L, "ln1.b"), {C}, false});
    t.push_back({block(L, "attn.W_Q"), mat(C, Q), true});
    t.push_back({block(L, "attn.W_K"), mat(C, KV), true});
    t.push_back({block(L, "attn.W_V"), mat(C, KV), true});
    if (cfg.qkv_bias) {
      t.push_back({block(L, "attn.b_Q"), {Q}, false});
      t.push_back({block(L, "attn.b_K"), {KV}, false});
      t.push_back({block(L, "attn.b_V"), {KV}, false});
    }
    if (cfg.qk_norm) {
      t.push_back({block(L, "attn.q_norm.w"), {HS}, false});
      t.push_back({block(L, "attn.k_norm.w"), {HS}, false});
    }
    t.push_back({block(L, "attn.W_O"), mat(Q, C), true});
    if (cfg.out_bias) t.push_back({block(L, "attn.b_O"), {C}, false});
    if (cfg.post_norms) t.push_back({block(L, "ln1_post.w"), {C}, false});
    t.push_back({block(L, "ln2.w"), {C}, false});
    if (ln) t.push_back({block(L, "ln2.b"), {C}, false});
    if (cfg.gated_mlp) t.push_back({block(L, "mlp.W_gate"), mat(C, M), true});
    if (cfg.gated_mlp && cfg.mlp_bias) t.push_back({block(L, "mlp.b_gate"), {M}, false});
    t.push_back({block(L, "mlp.W_in"), mat(C, M), true});
    if (cfg.mlp_bias) t.push_back({block(L, "mlp.b_in"), {M}, false});
    t.push_back({block(L, "mlp.W_out"), mat(M, C), true});
    if (cfg.mlp_bias) t.push_back({block(L, "mlp.b_out"), {C}, false});
    if (cfg.post_norms) t.push_back({block(L, "ln2_post.w"), {C}, false});
  }
  t.push_back({"ln_final.w", {C}, false});
  if (ln) t.push_back({"ln_final.b", {C}, false});
  if (!cfg.tied_unembedding) t.push_back({"W_U", {V, C}, true});
  return t;
}

std::vector<TensorSpec> arena_specs(const std::vector<ParamSpec>& ps, bool matrices) {
  std::vector<TensorSpec> out;
  for (const ParamSpec& p : ps)
    if (!p.matrix || matrices) out.push_back({p.name, p.shape});
  return out;
}

}  // namespace

DType parse_weight_dtype(const std::string& text, const std::string& source,
                         const std::string& field) {
  if (text == "f32" || text == "fp32" || text == "float32") return DType::F32;
  if (text == "bf16" || text == "bfloat16") return DType::BF16;
  if (text == "f16" || text == "fp16" || text == "float16") return DType::F16;
  throw InputError(source, field,
                   "\"" + text + "\" is not a weight dtype (choices: f32, bf16, f16)");
}

WeightMatrix Weight::matrix() const {
  WeightMatrix m;
  m.dtype = dtype;
  m.data = dtype == DType::F32 ? static_cast<const void*>(data) : static_cast<const void*>(half);
  m.out_major = out_major;
  m.out = out_major ? shape[0] : shape[1];
  m.in = out_major ? shape[1] : shape[0];
  return m;
}

ModelWeights::~ModelWeights() = default;
ModelWeights::ModelWeights(ModelWeights&&) noexcept = default;
ModelWeights& ModelWeights::operator=(ModelWeights&&) noexcept = default;

ModelWeights::ModelWeights(const ModelConfig& cfg, DType dtype) : dtype_(dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw std::invalid_argument("ModelWeights: matrices are F32, BF16 or F16");
  const std::vector<ParamSpec> ps = param_specs(cfg);
  const bool wide = dtype == DType::F32;
  arena_ = Arena(arena_specs(ps, wide));
  if (!wide) {
    int64_t n = 0;
    for (const ParamSpec& p : ps)
      if (p.matrix) half_slots_[p.name] = {static_cast<size_t>(n), p.shape}, n += p.shape.numel();
    half_.assign(static_cast<size_t>(n), 0);
  }
  bind(cfg);
}

size_t ModelWeights::bytes_for(const ModelConfig& cfg, DType dtype) {
  size_t n = 0;
  for (const ParamSpec& p : param_specs(cfg))
    n += static_cast<size_t>(p.shape.numel()) * (p.matrix ? dtype_size(dtype) : sizeof(float));
  return n;
}

size_t ModelWeights::bytes() const { return arena_.bytes() + half_.size() * sizeof(uint16_t); }

void ModelWeights::bind(const ModelConfig& cfg) {
  const bool out_major = !conv1d_layout(cfg);
  auto vec = [&](const std::string& n) { return arena_.find(n); };
  auto mat = [&](const std::string& n, bool om) -> Weight {
    Weight w;
    w.dtype = dtype_;
    w.out_major = om;
    if (dtype_ == DType::F32) {
      const Tensor t = vec(n);
      w.data = t.data, w.shape = t.shape;
      return w;
    }
    auto it = half_slots_.find(n);
    if (it == half_slots_.end()) return w;
    w.half = half_.data() + it->second.offset;
    w.shape = it->second.shape;
    return w;
  };
  W_E = mat("W_E", true);
  W_pos = vec("W_pos");
  blocks.assign(cfg.n_layer, BlockWeights{});
  for (int L = 0; L < cfg.n_layer; ++L) {
    BlockWeights& b = blocks[L];
    auto v = [&](const char* n) { return vec(block(L, n)); };
    auto m = [&](const char* n) { return mat(block(L, n), out_major); };
    b.ln1_w = v("ln1.w"), b.ln1_b = v("ln1.b");
    b.W_Q = m("attn.W_Q"), b.W_K = m("attn.W_K"), b.W_V = m("attn.W_V");
    b.b_Q = v("attn.b_Q"), b.b_K = v("attn.b_K"), b.b_V = v("attn.b_V");
    b.q_norm_w = v("attn.q_norm.w"), b.k_norm_w = v("attn.k_norm.w");
    b.W_O = m("attn.W_O"), b.b_O = v("attn.b_O");
    b.ln1_post_w = v("ln1_post.w");
    b.ln2_w = v("ln2.w"), b.ln2_b = v("ln2.b");
    b.W_gate = m("mlp.W_gate"), b.b_gate = v("mlp.b_gate");
    b.W_in = m("mlp.W_in"), b.b_in = v("mlp.b_in");
    b.W_out = m("mlp.W_out"), b.b_out = v("mlp.b_out");
    b.ln2_post_w = v("ln2_post.w");
  }
  ln_final_w = vec("ln_final.w");
  ln_final_b = vec("ln_final.b");
  W_U = cfg.tied_unembedding ? W_E : mat("W_U", true);
}

}  // namespace causeway
