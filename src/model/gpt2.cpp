#include "model/gpt2.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "model/gpt2_backward_workspace.h"
#include "model/safetensors.h"

namespace causeway {

// Activation buffers sized for a capacity of B rows x T positions, in one arena. A forward of
// any smaller geometry reuses them, so repeated forwards allocate nothing.
struct GPT2Model::Workspace {
  int B = 0, T = 0;
  bool has_result = false;
  int64_t logit_rows = 0;
  int rows_used = 0;  // B of the latest forward
  Arena arena;
  float *resid, *ln_out, *mean, *rstd, *scale, *q, *k, *v, *kv_new, *z, *scores, *pattern,
      *attn_out, *mlp, *result, *final_rows, *logits;
};

GPT2Model::~GPT2Model() = default;
GPT2Model::GPT2Model(GPT2Model&&) noexcept = default;
GPT2Model& GPT2Model::operator=(GPT2Model&&) noexcept = default;

GPT2Model::GPT2Model(ModelConfig cfg, GPT2Weights weights, std::unique_ptr<Backend> backend)
    : cfg_(std::move(cfg)),
      weights_(std::move(weights)),
      backend_(std::move(backend)),
      no_hooks_(cfg_.n_layer) {}

GPT2Model GPT2Model::load(const std::filesystem::path& dir) {
  ModelConfig cfg = ModelConfig::from_json_file(dir / "config.json");
  // Other families parse (config and weight table) but have no forward yet; refuse them here
  // rather than fail later on a missing GPT-2 tensor.
  if (!cfg.is_gpt2())
    throw InputError((dir / "config.json").string(), "model_type",
                     "\"" + cfg.model_type +
                         "\" is understood, but causeway's engine runs GPT-2 only so far "
                         "(model families: issue 11)");
  Checkpoint ckpt = Checkpoint::open(dir);
  GPT2Weights w = GPT2Weights::load(cfg, ckpt, (dir / "config.json").string());
  return GPT2Model(std::move(cfg), std::move(w), make_cpu_backend());
}

void GPT2Model::validate(const TokenBatch& batch, const std::string& source) const {
  if (batch.B <= 0 || batch.T <= 0) throw InputError(source, "", "no tokens to run");
  if (batch.T > cfg_.n_positions)
    throw InputError(source, "",
                     "sequence of " + std::to_string(batch.T) +
                         " tokens is longer than the model's n_positions = " +
                         std::to_string(cfg_.n_positions));
  if (batch.ids.size() != static_cast<size_t>(batch.B) * batch.T ||
      batch.lengths.size() != static_cast<size_t>(batch.B))
    throw InputError(source, "", "batch has inconsistent ids/lengths sizes");
  for (int b = 0; b < batch.B; ++b)
    if (batch.lengths[b] < 1 || batch.lengths[b] > batch.T)
      throw InputError(source, "sequence " + std::to_string(b),
                       "length " + std::to_string(batch.lengths[b]) + " is outside 1.." +
                           std::to_string(batch.T));
  for (int b = 0; b < batch.B; ++b)
    for (int t = 0; t < batch.T; ++t) {
      const int32_t id = batch.at(b, t);
      if (id < 0 || id >= cfg_.vocab_size)
        throw InputError(source,
                         "token " + std::to_string(t) +
                             (batch.B > 1 ? " of sequence " + std::to_string(b) : ""),
                         "id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(cfg_.vocab_size) + ")");
    }
}

void GPT2Model::ensure_workspace(int B, int T, bool need_result, int64_t logit_rows) {
  if (ws_ && B <= ws_->B && T <= ws_->T && (!need_result || ws_->has_result) &&
      logit_rows <= ws_->logit_rows)
    return;
  if (ws_) {  // grow to cover both the old and the new geometry
    B = std::max(B, ws_->B), T = std::max(T, ws_->T);
    need_result |= ws_->has_result;
    logit_rows = std::max(logit_rows, ws_->logit_rows);
  }
  const int64_t C = cfg_.n_embd, NH = cfg_.n_head, M = cfg_.n_inner, V = cfg_.vocab_size;
  const int64_t N = static_cast<int64_t>(B) * T;
  const std::vector<TensorSpec> specs = {
      {"resid", {N, C}},     {"ln_out", {N, C}},  {"mean", {N}},
      {"rstd", {N}},         {"scale", {N}},      {"q", {N, C}},
      {"k", {N, C}},         {"v", {N, C}},       {"kv_new", {N, C}},
      {"z", {N, C}},         {"scores", {B * NH * T, T}}, {"pattern", {B * NH * T, T}},
      {"attn_out", {N, C}},  {"mlp", {N, M}},     {"result", {need_result ? N * NH : 0, C}},
      {"final_rows", {B, C}}, {"logits", {logit_rows, V}},
  };
  auto ws = std::make_unique<Workspace>();
  ws->B = B, ws->T = T, ws->has_result = need_result, ws->logit_rows = logit_rows;
  ws->arena = Arena(specs);
  float** slots[] = {&ws->resid,  &ws->ln_out, &ws->mean,     &ws->rstd,     &ws->scale,
                     &ws->q,      &ws->k,      &ws->v,        &ws->kv_new,   &ws->z,
                     &ws->scores, &ws->pattern, &ws->attn_out, &ws->mlp,     &ws->result,
                     &ws->final_rows, &ws->logits};
  for (size_t i = 0; i < specs.size(); ++i) *slots[i] = ws->arena.at(i).data;
  ws_ = std::move(ws);
}

// LayerNorm with hook_scale between statistics and application, as TransformerLens does it;
// when the hook is not wanted the fused op runs.
void GPT2Model::layernorm(HookPlan& plan, const HookContext& ctx, float* out, const float* inp,
                          const Tensor& w, const Tensor& b, int64_t N) {
  const int C = cfg_.n_embd;
  Workspace& ws = *ws_;
  if (!plan.wants(ctx.point)) {
    backend_->layernorm_forward(out, ws.mean, ws.rstd, inp, w.data, b.data, N, C,
                                cfg_.layer_norm_epsilon);
    return;
  }
  backend_->layernorm_stats(ws.mean, ws.rstd, inp, N, C, cfg_.layer_norm_epsilon);
  for (int64_t i = 0; i < N; ++i) ws.scale[i] = 1.0f / ws.rstd[i];
  Tensor scale{ws.scale, Shape{ctx.B, ctx.T - ctx.row_begin, 1}};
  plan.run(ctx, scale);
  for (int64_t i = 0; i < N; ++i) ws.rstd[i] = 1.0f / ws.scale[i];
  backend_->layernorm_apply(out, inp, ws.mean, ws.rstd, w.data, b.data, N, C);
}

// Keys or values for all T positions: positions >= row_begin are computed (and hooked),
// earlier ones copied from the baseline.
void GPT2Model::keys_or_values(HookPlan& plan, const HookContext& ctx, const ForwardOptions& o,
                               const Tensor& W, const Tensor& bias, bool keys, float* full) {
  const int B = ctx.B, T = ctx.T, rb = ctx.row_begin, Tc = T - rb;
  const int C = cfg_.n_embd, NH = cfg_.n_head, HS = cfg_.d_head();
  const int64_t Nc = static_cast<int64_t>(B) * Tc;
  float* fresh = rb == 0 ? full : ws_->kv_new;
  backend_->matmul_forward(fresh, ws_->ln_out, W.data, bias.data, Nc, C, C);
  Tensor view{fresh, Shape{B, Tc, NH, HS}};
  plan.run(ctx, view);
  if (rb == 0) return;
  const int L = ctx.point.layer;
  for (int b = 0; b < B; ++b) {
    const float* base = keys ? o.prefix->keys(b, L) : o.prefix->values(b, L);
    float* dst = full + static_cast<int64_t>(b) * T * C;
    std::memcpy(dst, base, sizeof(float) * rb * C);
    std::memcpy(dst + static_cast<int64_t>(rb) * C, fresh + static_cast<int64_t>(b) * Tc * C,
                sizeof(float) * Tc * C);
  }
}

Tensor GPT2Model::forward(const TokenBatch& batch, LogitRows rows) {
  return forward(batch, no_hooks_, rows);
}

Tensor GPT2Model::forward(const TokenBatch& batch, HookPlan& plan, LogitRows rows) {
  ForwardOptions o;
  o.rows = rows;
  return forward(batch, plan, o);
}

Tensor GPT2Model::forward(const TokenBatch& batch, HookPlan& plan, const ForwardOptions& o) {
  validate(batch);
  const int B = batch.B, T = batch.T, rb = o.row_begin, Tc = T - rb;
  const int64_t Nc = static_cast<int64_t>(B) * Tc;
  const int C = cfg_.n_embd, NH = cfg_.n_head, HS = cfg_.d_head(), M = cfg_.n_inner,
            V = cfg_.vocab_size;
  const bool from_tokens = o.prefix == nullptr;
  if (from_tokens && (o.start_layer != 0 || rb != 0))
    throw std::invalid_argument("forward: start_layer/row_begin need a PrefixSource");
  if (o.start_layer < 0 || o.start_layer > cfg_.n_layer || rb < 0 || rb >= T)
    throw std::invalid_argument("forward: start_layer or row_begin out of range");
  std::vector<int> read_pos(B);
  for (int b = 0; b < B; ++b) {
    read_pos[b] = o.read_pos ? (*o.read_pos)[b] : batch.lengths[b] - 1;
    if (read_pos[b] < rb || read_pos[b] >= T)
      throw std::invalid_argument("forward: read position before row_begin or past T");
  }

  bool need_result = false;
  for (int L = o.start_layer; L < cfg_.n_layer; ++L)
    need_result |= plan.wants({HookKind::Result, L});
  const int64_t logit_rows = o.rows == LogitRows::All ? Nc : o.rows == LogitRows::Last ? B : 0;
  ensure_workspace(B, T, need_result, logit_rows);
  Workspace& ws = *ws_;
  ws.rows_used = B;
  const Backend& be = *backend_;
  auto ctx = [&](HookKind kind, int layer) { return HookContext{{kind, layer}, B, T, rb}; };
  auto run = [&](HookKind kind, int layer, float* data, Shape shape) {
    if (!plan.wants({kind, layer})) return;
    Tensor t{data, shape};
    plan.run(ctx(kind, layer), t);
  };
  const Shape bpd{B, Tc, C}, bphd{B, Tc, NH, HS}, bhqk{B, NH, Tc, T}, bpm{B, Tc, M};

  if (from_tokens) {
    // Embeddings go straight into the residual stream unless a hook needs them apart.
    float* embed = plan.wants({HookKind::Embed, -1}) ? ws.ln_out : ws.resid;
    be.embedding_forward(embed, batch.ids.data(), weights_.W_E.data, Nc, C);
    run(HookKind::Embed, -1, embed, bpd);
    be.position_embedding_forward(ws.attn_out, weights_.W_pos.data, B, T, C);
    run(HookKind::PosEmbed, -1, ws.attn_out, bpd);
    be.add_forward(ws.resid, embed, ws.attn_out, Nc * C);
  } else if (o.start_layer < cfg_.n_layer) {
    for (int b = 0; b < B; ++b)
      std::memcpy(ws.resid + static_cast<int64_t>(b) * Tc * C,
                  o.prefix->resid_pre(b, o.start_layer) + static_cast<int64_t>(rb) * C,
                  sizeof(float) * Tc * C);
  } else {
    throw std::invalid_argument("forward: starting after the last block is not supported");
  }

  for (int L = o.start_layer; L < cfg_.n_layer; ++L) {
    const BlockWeights& w = weights_.blocks[L];
    run(HookKind::ResidPre, L, ws.resid, bpd);

    layernorm(plan, ctx(HookKind::Ln1Scale, L), ws.ln_out, ws.resid, w.ln1_w, w.ln1_b, Nc);
    be.matmul_forward(ws.q, ws.ln_out, w.W_Q.data, w.b_Q.data, Nc, C, C);
    run(HookKind::Q, L, ws.q, bphd);
    keys_or_values(plan, ctx(HookKind::K, L), o, w.W_K, w.b_K, true, ws.k);
    keys_or_values(plan, ctx(HookKind::V, L), o, w.W_V, w.b_V, false, ws.v);
    be.attention_scores_forward(ws.scores, ws.q, ws.k, B, T, NH, HS, rb);
    run(HookKind::AttnScores, L, ws.scores, bhqk);
    be.attention_softmax_forward(ws.pattern, ws.scores, B, NH, T, rb);
    run(HookKind::Pattern, L, ws.pattern, bhqk);
    be.attention_values_forward(ws.z, ws.pattern, ws.v, B, T, NH, HS, rb);
    run(HookKind::Z, L, ws.z, bphd);
    if (plan.wants({HookKind::Result, L})) {
      be.attention_result_forward(ws.result, ws.z, w.W_O.data, Nc, NH, HS, C);
      run(HookKind::Result, L, ws.result, Shape{B, Tc, NH, C});
      be.sum_heads_forward(ws.attn_out, ws.result, w.b_O.data, Nc, NH, C);
    } else {
      be.matmul_forward(ws.attn_out, ws.z, w.W_O.data, w.b_O.data, Nc, C, C);
    }
    run(HookKind::AttnOut, L, ws.attn_out, bpd);
    be.add_forward(ws.resid, ws.resid, ws.attn_out, Nc * C);
    run(HookKind::ResidMid, L, ws.resid, bpd);

    layernorm(plan, ctx(HookKind::Ln2Scale, L), ws.ln_out, ws.resid, w.ln2_w, w.ln2_b, Nc);
    be.matmul_forward(ws.mlp, ws.ln_out, w.W_in.data, w.b_in.data, Nc, C, M);
    run(HookKind::MlpPre, L, ws.mlp, bpm);
    if (cfg_.activation_function == "gelu")
      be.gelu_erf_forward(ws.mlp, ws.mlp, Nc * M);
    else
      be.gelu_forward(ws.mlp, ws.mlp, Nc * M);
    run(HookKind::MlpPost, L, ws.mlp, bpm);
    be.matmul_forward(ws.attn_out, ws.mlp, w.W_out.data, w.b_out.data, Nc, M, C);
    run(HookKind::MlpOut, L, ws.attn_out, bpd);
    be.add_forward(ws.resid, ws.resid, ws.attn_out, Nc * C);
    run(HookKind::ResidPost, L, ws.resid, bpd);
  }

  layernorm(plan, ctx(HookKind::LnFinalScale, -1), ws.ln_out, ws.resid, weights_.ln_final_w,
            weights_.ln_final_b, Nc);
  if (o.rows == LogitRows::All) {
    be.matmul_transposed_forward(ws.logits, ws.ln_out, weights_.W_U.data, Nc, C, V);
    return Tensor{ws.logits, Shape{B, Tc, V}};
  }
  for (int b = 0; b < B; ++b) {
    const int64_t row = static_cast<int64_t>(b) * Tc + (read_pos[b] - rb);
    std::memcpy(ws.final_rows + static_cast<int64_t>(b) * C, ws.ln_out + row * C,
                sizeof(float) * C);
  }
  if (o.rows == LogitRows::None) return Tensor{};
  be.matmul_transposed_forward(ws.logits, ws.final_rows, weights_.W_U.data, B, C, V);
  return Tensor{ws.logits, Shape{B, V}};
}

Tensor GPT2Model::final_residual() const {
  if (!ws_) throw std::logic_error("final_residual: no forward has run");
  return Tensor{ws_->final_rows, Shape{ws_->rows_used, cfg_.n_embd}};
}

void GPT2Model::unembed_tokens(const Tensor& final, const int32_t* tokens, int n,
                               float* out) const {
  const int64_t B = final.size(0), C = cfg_.n_embd;
  for (int64_t b = 0; b < B; ++b)
    for (int j = 0; j < n; ++j) {
      const float* x = final.data + b * C;
      const float* w = weights_.W_U.data + static_cast<int64_t>(tokens[j]) * C;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < C; ++i) dot += x[i] * w[i];
      out[b * n + j] = dot;
    }
}

}  // namespace causeway
