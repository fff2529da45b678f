#include "model/transformer_model.h"

#include <algorithm>
#include <cstring>

#include "backend/ops.h"
#include "core/error.h"
#include "model/backward_workspace.h"
#include "model/mlp_activation.h"
#include "model/safetensors.h"

namespace causeway {

// Activation buffers sized for a capacity of B rows x T positions, in one arena. A forward of
// any smaller geometry reuses them, so repeated forwards allocate nothing.
struct TransformerModel::Workspace {
  int B = 0, T = 0;
  bool has_result = false;
  bool has_split = false;
  int64_t logit_rows = 0;
  int rows_used = 0;  // B of the latest forward
  Arena arena;
  float *resid, *ln_out, *mean, *rstd, *scale, *normalized, *q, *k, *v, *k_new, *v_new, *z, *scores,
      *pattern, *attn_out, *mlp_out, *mlp, *mlp_up, *result, *final_rows, *logits,
      *logits_local, *logits_gathered, *split_in, *split_ln, *split_stats;
  std::vector<int32_t> positions;  // (B * (T - row_begin)): each recomputed row's position
};

namespace {

// The activation buffers of a forward, in one table: ensure_workspace allocates them and a dry
// run sizes them.
std::vector<TensorSpec> workspace_specs(const ModelConfig& cfg, const ModelConfig& local,
                                        int64_t tp, int B, int T, bool need_result,
                                        int64_t logit_rows, bool need_split = false) {
  const int64_t C = cfg.n_embd, NH = local.n_head, M = local.n_inner, V = cfg.vocab_size;
  const int64_t HS = cfg.d_head(), Q = NH * HS, KV = local.kv_heads() * HS;
  const int64_t local_logits = tp > 1 ? logit_rows * local.vocab_size : 0;
  const int64_t N = static_cast<int64_t>(B) * T, wide = std::max(C, Q);
  const int64_t up = cfg.gated_mlp ? N * M : 0;
  const int64_t split = need_split ? N * NH : 0;  // one row per (position, head)
  return {
      {"resid", {N, C}},       {"ln_out", {N, C}},      {"mean", {N}},
      {"rstd", {N}},           {"scale", {N * NH}},     {"normalized", {N, wide}},
      {"q", {N, Q}},           {"k", {N, KV}},          {"v", {N, KV}},
      {"k_new", {N, KV}},      {"v_new", {N, KV}},      {"z", {N, Q}},           {"scores", {B * NH * T, T}},
      {"pattern", {B * NH * T, T}}, {"attn_out", {N, C}}, {"mlp_out", {N, C}},
      {"mlp", {N, M}},         {"mlp_up", {up}},        {"result", {need_result ? N * NH : 0, C}},
      {"final_rows", {B, C}},  {"logits", {logit_rows, V}},
      {"logits_local", {local_logits}}, {"logits_gathered", {tp > 1 ? tp * local_logits : 0}},
      {"split_in", {split, C}}, {"split_ln", {split, C}}, {"split_stats", {2 * split}},
  };
}

}  // namespace

int64_t TransformerModel::workspace_bytes(const ModelConfig& cfg, const ModelConfig& local, int tp,
                                          int B, int T, bool need_result, int64_t logit_rows) {
  int64_t n = 0;
  for (const TensorSpec& s : workspace_specs(cfg, local, tp, B, T, need_result, logit_rows))
    n += s.shape.numel();
  return n * static_cast<int64_t>(sizeof(float));
}

TransformerModel::~TransformerModel() = default;
TransformerModel::TransformerModel(TransformerModel&&) noexcept = default;
TransformerModel& TransformerModel::operator=(TransformerModel&&) noexcept = default;

TransformerModel::TransformerModel(ModelConfig cfg, ModelWeights weights,
                                   std::unique_ptr<Backend> backend)
    : TransformerModel(std::move(cfg), std::move(weights), std::move(backend), TensorShard{},
                       nullptr) {}

TransformerModel::TransformerModel(ModelConfig cfg, ModelWeights weights,
                                   std::unique_ptr<Backend> backend, TensorShard shard,
                                   const Collectives* tp)
    : cfg_(std::move(cfg)),
      lc_(tp ? shard.local(cfg_) : cfg_),
      shard_(shard),
      tp_(tp),
      weights_(std::move(weights)),
      backend_(std::move(backend)),
      no_hooks_(cfg_.n_layer) {
  if (cfg_.rotary_dim > 0) {
    inv_freq_.resize(static_cast<size_t>(cfg_.rotary_dim / 2));
    cpu::RotaryLlama3Scaling llama3;
    const bool scaled = cfg_.rope_scaling.type == "llama3";
    if (scaled) {
      llama3.factor = cfg_.rope_scaling.factor;
      llama3.low_freq_factor = cfg_.rope_scaling.low_freq_factor;
      llama3.high_freq_factor = cfg_.rope_scaling.high_freq_factor;
      llama3.original_max_position_embeddings = cfg_.rope_scaling.original_max_position_embeddings;
    }
    cpu::rotary_inv_freq(inv_freq_.data(), cfg_.rotary_dim, cfg_.rope_theta,
                         scaled ? &llama3 : nullptr);
  }
}

HookKind attention_keys_hook(const ModelConfig& cfg) {
  return cfg.rotary_dim > 0 ? HookKind::RotK : HookKind::K;
}

TransformerModel TransformerModel::load(const std::filesystem::path& dir, DType dtype) {
  ModelConfig cfg = ModelConfig::from_json_file(dir / "config.json");
  Checkpoint ckpt = Checkpoint::open(dir);
  ModelWeights w = ModelWeights::load(cfg, ckpt, (dir / "config.json").string(), dtype);
  return TransformerModel(std::move(cfg), std::move(w), make_cpu_backend());
}

TransformerModel TransformerModel::load(const std::filesystem::path& dir, DType dtype,
                                        const Collectives* tp) {
  if (!tp || tp->size() == 1) return load(dir, dtype);
  ModelConfig cfg = ModelConfig::from_json_file(dir / "config.json");
  const TensorShard shard =
      TensorShard::make(cfg, tp->rank(), tp->size(), (dir / "config.json").string());
  Checkpoint ckpt = Checkpoint::open(dir);
  ModelWeights w = ModelWeights::load(cfg, ckpt, (dir / "config.json").string(), dtype, &shard);
  return TransformerModel(std::move(cfg), std::move(w), make_cpu_backend(), shard, tp);
}

void validate_tokens(const ModelConfig& cfg, const TokenBatch& batch, const std::string& source) {
  if (batch.B <= 0 || batch.T <= 0) throw InputError(source, "", "no tokens to run");
  if (batch.T > cfg.n_positions)
    throw InputError(source, "",
                     "sequence of " + std::to_string(batch.T) +
                         " tokens is longer than the model's n_positions = " +
                         std::to_string(cfg.n_positions));
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
      if (id < 0 || id >= cfg.vocab_size)
        throw InputError(source,
                         "token " + std::to_string(t) +
                             (batch.B > 1 ? " of sequence " + std::to_string(b) : ""),
                         "id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(cfg.vocab_size) + ")");
    }
}

void TransformerModel::validate(const TokenBatch& batch, const std::string& source) const {
  validate_tokens(cfg_, batch, source);
}

void TransformerModel::ensure_workspace(int B, int T, bool need_result, int64_t logit_rows,
                                        bool need_split) {
  if (ws_ && B <= ws_->B && T <= ws_->T && (!need_result || ws_->has_result) &&
      (!need_split || ws_->has_split) && logit_rows <= ws_->logit_rows)
    return;
  if (ws_) {  // grow to cover both the old and the new geometry
    B = std::max(B, ws_->B), T = std::max(T, ws_->T);
    need_result |= ws_->has_result;
    need_split |= ws_->has_split;
    logit_rows = std::max(logit_rows, ws_->logit_rows);
  }
  const std::vector<TensorSpec> specs =
      workspace_specs(cfg_, lc_, shard_.size, B, T, need_result, logit_rows, need_split);
  auto ws = std::make_unique<Workspace>();
  ws->B = B, ws->T = T, ws->has_result = need_result, ws->has_split = need_split;
  ws->logit_rows = logit_rows;
  ws->arena = Arena(specs);
  float** slots[] = {&ws->resid,  &ws->ln_out,   &ws->mean,     &ws->rstd,    &ws->scale,
                     &ws->normalized, &ws->q,    &ws->k,        &ws->v,       &ws->k_new,   &ws->v_new,
                     &ws->z,      &ws->scores,   &ws->pattern,  &ws->attn_out, &ws->mlp_out,
                     &ws->mlp,    &ws->mlp_up,   &ws->result,   &ws->final_rows, &ws->logits,
                     &ws->logits_local, &ws->logits_gathered, &ws->split_in, &ws->split_ln,
                     &ws->split_stats};
  for (size_t i = 0; i < specs.size(); ++i) *slots[i] = ws->arena.at(i).data;
  ws->positions.resize(static_cast<size_t>(B) * T);
  ws_ = std::move(ws);
}

// A norm with hook_scale and hook_normalized between its steps, as TransformerLens splits it,
// over `rows` rows of `width` (heads > 1: per-head q/k norms, rows = positions x heads, hooks
// shaped [b, p, heads, 1|width]). With neither hook wanted the fused op runs. bias may be
// empty; LayerNorm or RMSNorm per the config (Gemma's 1 + w is folded into w at load).
void TransformerModel::norm(HookPlan& plan, const HookContext& ctx, HookKind normalized, float* out,
                            const float* inp, const Tensor& w, const Tensor& b, int64_t rows,
                            int width, int heads) {
  Workspace& ws = *ws_;
  const Backend& be = *backend_;
  const float eps = cfg_.layer_norm_epsilon;
  const bool layer_norm = cfg_.norm == NormKind::LayerNorm;
  const HookContext nctx{{normalized, ctx.point.layer}, ctx.B, ctx.T, ctx.row_begin};
  const bool want_scale = plan.wants(ctx.point), want_norm = plan.wants(nctx.point);
  const int Tc = ctx.T - ctx.row_begin;
  auto shape = [&](int64_t last) {
    return heads > 1 ? Shape{ctx.B, Tc, heads, last} : Shape{ctx.B, Tc, last};
  };
  if (layer_norm) {
    if (!want_scale && !want_norm) {
      be.layernorm_forward(out, ws.mean, ws.rstd, inp, w.data, b.data, rows, width, eps);
      return;
    }
    be.layernorm_stats(ws.mean, ws.rstd, inp, rows, width, eps);
    for (int64_t i = 0; i < rows; ++i) ws.scale[i] = 1.0f / ws.rstd[i];
    Tensor scale{ws.scale, shape(1)};
    plan.run(ctx, scale);
    for (int64_t i = 0; i < rows; ++i) ws.rstd[i] = 1.0f / ws.scale[i];
    if (!want_norm) {
      be.layernorm_apply(out, inp, ws.mean, ws.rstd, w.data, b.data, rows, width);
      return;
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int i = 0; i < width; ++i)
        ws.normalized[r * width + i] = (inp[r * width + i] - ws.mean[r]) * ws.rstd[r];
  } else {
    be.rmsnorm_stats(ws.scale, inp, rows, width, eps);
    Tensor scale{ws.scale, shape(1)};
    plan.run(ctx, scale);
    if (!want_norm) {
      be.rmsnorm_apply(out, inp, ws.scale, w.data, rows, width);
      return;
    }
    be.rmsnorm_apply(ws.normalized, inp, ws.scale, nullptr, rows, width);
  }
  Tensor norm_value{ws.normalized, shape(width)};
  plan.run(nctx, norm_value);
  for (int64_t r = 0; r < rows; ++r)
    for (int i = 0; i < width; ++i)
      out[r * width + i] = ws.normalized[r * width + i] * w.data[i] + (b.data ? b.data[i] : 0.0f);
}

// TransformerLens' split input of q, k or v (hook_q_input ...): each head gets its own copy of
// the residual stream, which the hook may edit (edge patching), normalized by ln1 per head and
// projected by that head's slice of W; out (rows, heads, d_head).
void TransformerModel::split_input(HookPlan& plan, const HookContext& ctx, float* out,
                                   const BlockWeights& w, const WeightMatrix& W,
                                   const float* bias, int heads) {
  Workspace& ws = *ws_;
  const Backend& be = *backend_;
  const int C = cfg_.n_embd;
  const int64_t Nc = static_cast<int64_t>(ctx.B) * (ctx.T - ctx.row_begin), rows = Nc * heads;
  for (int64_t n = 0; n < Nc; ++n)
    for (int h = 0; h < heads; ++h)
      std::memcpy(ws.split_in + (n * heads + h) * C, ws.resid + n * C, sizeof(float) * C);
  if (plan.wants(ctx.point)) {
    Tensor value{ws.split_in, Shape{ctx.B, ctx.T - ctx.row_begin, heads, C}};
    plan.run(ctx, value);
  }
  if (cfg_.norm == NormKind::LayerNorm) {
    be.layernorm_forward(ws.split_ln, ws.split_stats, ws.split_stats + rows, ws.split_in,
                         w.ln1_w.data, w.ln1_b.data, rows, C, cfg_.layer_norm_epsilon);
  } else {
    be.rmsnorm_stats(ws.split_stats, ws.split_in, rows, C, cfg_.layer_norm_epsilon);
    be.rmsnorm_apply(ws.split_ln, ws.split_in, ws.split_stats, w.ln1_w.data, rows, C);
  }
  be.linear_heads_forward(out, ws.split_ln, W, bias, Nc, heads);
}

// Keys or values for all T positions: rows >= row_begin are `fresh` (computed and hooked),
// earlier ones copied from the baseline.
void TransformerModel::full_rows(const HookContext& ctx, const ForwardOptions& o,
                                 const float* fresh, bool keys, float* full) {
  const int B = ctx.B, T = ctx.T, rb = ctx.row_begin, Tc = T - rb;
  const int64_t W = static_cast<int64_t>(lc_.kv_heads()) * cfg_.d_head();
  const int L = ctx.point.layer;
  for (int b = 0; b < B; ++b) {
    const float* base = keys ? o.prefix->keys(b, L) : o.prefix->values(b, L);
    float* dst = full + static_cast<int64_t>(b) * T * W;
    std::memcpy(dst, base, sizeof(float) * rb * W);
    std::memcpy(dst + static_cast<int64_t>(rb) * W, fresh + static_cast<int64_t>(b) * Tc * W,
                sizeof(float) * Tc * W);
  }
}

Tensor TransformerModel::forward(const TokenBatch& batch, LogitRows rows) {
  return forward(batch, no_hooks_, rows);
}

Tensor TransformerModel::forward(const TokenBatch& batch, HookPlan& plan, LogitRows rows) {
  ForwardOptions o;
  o.rows = rows;
  return forward(batch, plan, o);
}

Tensor TransformerModel::forward(const TokenBatch& batch, HookPlan& plan, const ForwardOptions& o) {
  validate(batch);
  const int B = batch.B, T = batch.T, rb = o.row_begin, Tc = T - rb;
  const int64_t Nc = static_cast<int64_t>(B) * Tc;
  const int C = cfg_.n_embd, NH = lc_.n_head, KV = lc_.kv_heads(), HS = cfg_.d_head(),
            M = lc_.n_inner;
  // Row-parallel layers add their bias once per replica, on its first rank, before the sum.
  const bool adds_bias = shard_.rank == 0;
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

  bool need_result = false, need_split = false;
  auto split_at = [&](int L) {
    return plan.wants({HookKind::QInput, L}) || plan.wants({HookKind::KInput, L}) ||
           plan.wants({HookKind::VInput, L});
  };
  for (int L = o.start_layer; L < cfg_.n_layer; ++L) {
    need_result |= plan.wants({HookKind::Result, L});
    need_split |= split_at(L);
    if (split_at(L) && (plan.wants({HookKind::Ln1Scale, L}) ||
                        plan.wants({HookKind::Ln1Normalized, L})))
      throw std::invalid_argument(
          "forward: ln1 hooks and split q/k/v input hooks at the same layer are not supported");
  }
  const int64_t logit_rows = o.rows == LogitRows::All ? Nc : o.rows == LogitRows::Last ? B : 0;
  ensure_workspace(B, T, need_result, logit_rows, need_split);
  Workspace& ws = *ws_;
  ws.rows_used = B;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < Tc; ++i) ws.positions[static_cast<size_t>(b) * Tc + i] = rb + i;
  const Backend& be = *backend_;
  const ModelWeights& W = weights_;
  auto ctx = [&](HookKind kind, int layer) { return HookContext{{kind, layer}, B, T, rb}; };
  auto run = [&](HookKind kind, int layer, float* data, Shape shape) {
    if (!plan.wants({kind, layer})) return;
    Tensor t{data, shape};
    plan.run(ctx(kind, layer), t);
  };
  const Shape bpd{B, Tc, C}, bpq{B, Tc, NH, HS}, bpk{B, Tc, KV, HS}, bhqk{B, NH, Tc, T},
      bpm{B, Tc, M};
  const float attn_mult = static_cast<float>(1.0 / cfg_.attn_scale());
  const bool rotary = cfg_.rotary_dim > 0;
  const cpu::GatedActivation gate_act = gated_activation(cfg_);

  if (from_tokens) {
    // Embeddings go straight into the residual stream unless a hook needs them apart.
    float* embed = plan.wants({HookKind::Embed, -1}) ? ws.ln_out : ws.resid;
    if (tp_) embed_shard(embed, batch, Nc);
    else be.embedding_forward(embed, batch.ids.data(), W.W_E.matrix(), Nc, cfg_.embedding_scale);
    run(HookKind::Embed, -1, embed, bpd);
    if (!rotary) {
      be.position_embedding_forward(ws.attn_out, W.W_pos.data, B, T, C);
      run(HookKind::PosEmbed, -1, ws.attn_out, bpd);
      be.add_forward(ws.resid, embed, ws.attn_out, Nc * C);
    } else if (embed != ws.resid) {
      std::memcpy(ws.resid, embed, sizeof(float) * Nc * C);
    }
  } else if (o.start_layer < cfg_.n_layer) {
    for (int b = 0; b < B; ++b)
      std::memcpy(ws.resid + static_cast<int64_t>(b) * Tc * C,
                  o.prefix->resid_pre(b, o.start_layer) + static_cast<int64_t>(rb) * C,
                  sizeof(float) * Tc * C);
  } else {
    throw std::invalid_argument("forward: starting after the last block is not supported");
  }

  for (int L = o.start_layer; L < cfg_.n_layer; ++L) {
    const BlockWeights& w = W.blocks[L];
    run(HookKind::ResidPre, L, ws.resid, bpd);

    // Keys and values of the recomputed rows; earlier rows come from the baseline below.
    float* k_new = rb == 0 ? ws.k : ws.k_new;
    float* v_new = rb == 0 ? ws.v : ws.v_new;
    const bool split = split_at(L);
    if (split) {
      split_input(plan, ctx(HookKind::QInput, L), ws.q, w, w.W_Q.matrix(), w.b_Q.data, NH);
      split_input(plan, ctx(HookKind::KInput, L), k_new, w, w.W_K.matrix(), w.b_K.data, KV);
      split_input(plan, ctx(HookKind::VInput, L), v_new, w, w.W_V.matrix(), w.b_V.data, KV);
    } else {
      norm(plan, ctx(HookKind::Ln1Scale, L), HookKind::Ln1Normalized, ws.ln_out, ws.resid,
           w.ln1_w, w.ln1_b, Nc, C, 1);
      be.linear_forward(ws.q, ws.ln_out, w.W_Q.matrix(), w.b_Q.data, Nc);
    }
    run(HookKind::Q, L, ws.q, bpq);
    if (!split) be.linear_forward(k_new, ws.ln_out, w.W_K.matrix(), w.b_K.data, Nc);
    run(HookKind::K, L, k_new, bpk);
    if (!split) be.linear_forward(v_new, ws.ln_out, w.W_V.matrix(), w.b_V.data, Nc);
    run(HookKind::V, L, v_new, bpk);
    if (cfg_.qk_norm) {
      norm(plan, ctx(HookKind::QNormScale, L), HookKind::QNormNormalized, ws.q, ws.q, w.q_norm_w,
           Tensor{}, Nc * NH, HS, NH);
      norm(plan, ctx(HookKind::KNormScale, L), HookKind::KNormNormalized, k_new, k_new,
           w.k_norm_w, Tensor{}, Nc * KV, HS, KV);
    }
    if (rotary) {
      be.rotary_forward(ws.q, ws.q, ws.positions.data(), Nc, NH, HS, cfg_.rotary_dim,
                        inv_freq_.data());
      run(HookKind::RotQ, L, ws.q, bpq);
      be.rotary_forward(k_new, k_new, ws.positions.data(), Nc, KV, HS, cfg_.rotary_dim,
                        inv_freq_.data());
      run(HookKind::RotK, L, k_new, bpk);
    }
    if (rb > 0) {
      full_rows(ctx(HookKind::K, L), o, k_new, true, ws.k);
      full_rows(ctx(HookKind::V, L), o, v_new, false, ws.v);
    }
    const bool sliding = !cfg_.sliding_layers.empty() && cfg_.sliding_layers[L];
    be.attention_scores_gqa_forward(ws.scores, ws.q, ws.k, B, T, NH, KV, HS, attn_mult,
                                    cfg_.attn_softcap, sliding ? cfg_.sliding_window : 0, rb);
    run(HookKind::AttnScores, L, ws.scores, bhqk);
    be.attention_softmax_forward(ws.pattern, ws.scores, B, NH, T, rb);
    run(HookKind::Pattern, L, ws.pattern, bhqk);
    be.attention_values_gqa_forward(ws.z, ws.pattern, ws.v, B, T, NH, KV, HS, rb);
    run(HookKind::Z, L, ws.z, bpq);
    if (plan.wants({HookKind::Result, L})) {
      be.attention_result_forward(ws.result, ws.z, w.W_O.matrix(), Nc, NH, HS);
      run(HookKind::Result, L, ws.result, Shape{B, Tc, NH, C});
      be.sum_heads_forward(ws.attn_out, ws.result, adds_bias ? w.b_O.data : nullptr, Nc, NH, C);
    } else {
      be.linear_forward(ws.attn_out, ws.z, w.W_O.matrix(), adds_bias ? w.b_O.data : nullptr, Nc);
    }
    if (tp_) tp_->allreduce_sum(ws.attn_out, Nc * C);
    if (cfg_.post_norms)
      norm(plan, ctx(HookKind::Ln1PostScale, L), HookKind::Ln1PostNormalized, ws.attn_out,
           ws.attn_out, w.ln1_post_w, Tensor{}, Nc, C, 1);
    run(HookKind::AttnOut, L, ws.attn_out, bpd);
    // A parallel residual (GPT-NeoX) feeds the MLP from resid_pre; otherwise from resid_mid.
    if (!cfg_.parallel_residual) {
      be.add_forward(ws.resid, ws.resid, ws.attn_out, Nc * C);
      run(HookKind::ResidMid, L, ws.resid, bpd);
    }

    // hook_mlp_in edits a copy (in mlp_out, free until the MLP's output), not the residual.
    const float* mlp_in = ws.resid;
    if (plan.wants({HookKind::MlpIn, L})) {
      std::memcpy(ws.mlp_out, ws.resid, sizeof(float) * Nc * C);
      run(HookKind::MlpIn, L, ws.mlp_out, bpd);
      mlp_in = ws.mlp_out;
    }
    norm(plan, ctx(HookKind::Ln2Scale, L), HookKind::Ln2Normalized, ws.ln_out, mlp_in, w.ln2_w,
         w.ln2_b, Nc, C, 1);
    if (cfg_.gated_mlp) {
      be.linear_forward(ws.mlp, ws.ln_out, w.W_gate.matrix(), w.b_gate.data, Nc);
      run(HookKind::MlpPre, L, ws.mlp, bpm);
      be.linear_forward(ws.mlp_up, ws.ln_out, w.W_in.matrix(), w.b_in.data, Nc);
      run(HookKind::MlpPreLinear, L, ws.mlp_up, bpm);
      be.gated_forward(ws.mlp, ws.mlp, ws.mlp_up, Nc * M, gate_act);
    } else {
      be.linear_forward(ws.mlp, ws.ln_out, w.W_in.matrix(), w.b_in.data, Nc);
      run(HookKind::MlpPre, L, ws.mlp, bpm);
      mlp_activation_forward(be, cfg_, ws.mlp, ws.mlp, Nc * M);
    }
    run(HookKind::MlpPost, L, ws.mlp, bpm);
    be.linear_forward(ws.mlp_out, ws.mlp, w.W_out.matrix(), adds_bias ? w.b_out.data : nullptr, Nc);
    if (tp_) tp_->allreduce_sum(ws.mlp_out, Nc * C);
    if (cfg_.post_norms)
      norm(plan, ctx(HookKind::Ln2PostScale, L), HookKind::Ln2PostNormalized, ws.mlp_out,
           ws.mlp_out, w.ln2_post_w, Tensor{}, Nc, C, 1);
    run(HookKind::MlpOut, L, ws.mlp_out, bpd);
    if (cfg_.parallel_residual) be.add_forward(ws.resid, ws.resid, ws.attn_out, Nc * C);
    be.add_forward(ws.resid, ws.resid, ws.mlp_out, Nc * C);
    run(HookKind::ResidPost, L, ws.resid, bpd);
  }

  norm(plan, ctx(HookKind::LnFinalScale, -1), HookKind::LnFinalNormalized, ws.ln_out, ws.resid,
       W.ln_final_w, W.ln_final_b, Nc, C, 1);
  const float cap = cfg_.final_logit_softcap;
  if (o.rows == LogitRows::All) {
    if (tp_) {
      be.linear_forward(ws.logits_local, ws.ln_out, W.W_U.matrix(), nullptr, Nc);
      gather_logits(ws.logits, ws.logits_local, Nc);
    } else {
      be.linear_forward(ws.logits, ws.ln_out, W.W_U.matrix(), nullptr, Nc);
    }
    if (cap > 0) be.softcap_forward(ws.logits, ws.logits, Nc * cfg_.vocab_size, cap);
    return Tensor{ws.logits, Shape{B, Tc, cfg_.vocab_size}};
  }
  for (int b = 0; b < B; ++b) {
    const int64_t row = static_cast<int64_t>(b) * Tc + (read_pos[b] - rb);
    std::memcpy(ws.final_rows + static_cast<int64_t>(b) * C, ws.ln_out + row * C,
                sizeof(float) * C);
  }
  if (o.rows == LogitRows::None) return Tensor{};
  if (tp_) {
    be.linear_forward(ws.logits_local, ws.final_rows, W.W_U.matrix(), nullptr, B);
    gather_logits(ws.logits, ws.logits_local, B);
  } else {
    be.linear_forward(ws.logits, ws.final_rows, W.W_U.matrix(), nullptr, B);
  }
  if (cap > 0) be.softcap_forward(ws.logits, ws.logits, int64_t{B} * cfg_.vocab_size, cap);
  return Tensor{ws.logits, Shape{B, cfg_.vocab_size}};
}

Tensor TransformerModel::final_residual() const {
  if (!ws_) throw std::logic_error("final_residual: no forward has run");
  return Tensor{ws_->final_rows, Shape{ws_->rows_used, cfg_.n_embd}};
}

void TransformerModel::unembed_local(const Tensor& final, float* out) const {
  const int64_t B = final.size(0);
  backend_->linear_forward(out, final.data, weights_.W_U.matrix(), nullptr, B);
  if (cfg_.final_logit_softcap > 0)
    backend_->softcap_forward(out, out, B * lc_.vocab_size, cfg_.final_logit_softcap);
}

void TransformerModel::unembed_tokens(const Tensor& final, const int32_t* tokens, int n,
                                      float* out) const {
  const int64_t B = final.size(0);
  if (!tp_) {
    backend_->unembed_rows(out, final.data, weights_.W_U.matrix(), tokens, n, B);
  } else {
    // Each token's logit comes from the rank holding its row; the others add zero.
    const int vb = shard_.vocab_begin, vr = shard_.vocab_rows;
    std::fill(out, out + B * n, 0.0f);
    if (token_column_.size() < static_cast<size_t>(B)) token_column_.resize(static_cast<size_t>(B));
    for (int j = 0; j < n; ++j) {
      if (tokens[j] < vb || tokens[j] >= vb + vr) continue;
      const int32_t local = tokens[j] - vb;
      backend_->unembed_rows(token_column_.data(), final.data, weights_.W_U.matrix(), &local, 1, B);
      for (int64_t b = 0; b < B; ++b) out[b * n + j] = token_column_[static_cast<size_t>(b)];
    }
    tp_->allreduce_sum(out, B * n);
  }
  if (cfg_.final_logit_softcap > 0)
    backend_->softcap_forward(out, out, B * n, cfg_.final_logit_softcap);
}

// Token rows this rank holds are looked up (and scaled), the rest are zero; the sum over the
// replica is the embedding.
void TransformerModel::embed_shard(float* out, const TokenBatch& batch, int64_t N) const {
  const int C = cfg_.n_embd, vb = shard_.vocab_begin, vr = shard_.vocab_rows;
  if (shard_ids_.size() < static_cast<size_t>(N)) shard_ids_.resize(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const int32_t id = batch.ids[i] - vb;
    shard_ids_[static_cast<size_t>(i)] = id >= 0 && id < vr ? id : 0;
  }
  backend_->embedding_forward(out, shard_ids_.data(), weights_.W_E.matrix(), N,
                              cfg_.embedding_scale);
  for (int64_t i = 0; i < N; ++i)
    if (batch.ids[i] < vb || batch.ids[i] >= vb + vr)
      std::fill(out + i * C, out + (i + 1) * C, 0.0f);
  tp_->allreduce_sum(out, N * C);
}

// Logits of each rank's vocabulary block, gathered into whole rows (the padding past V of the
// last block dropped).
void TransformerModel::gather_logits(float* out, const float* local, int64_t rows) {
  const int64_t Vl = lc_.vocab_size, V = cfg_.vocab_size, tp = shard_.size;
  tp_->allgather(local, rows * Vl, ws_->logits_gathered);
  for (int64_t r = 0; r < tp; ++r) {
    const int64_t v0 = r * Vl, n = std::min(Vl, V - v0);
    if (n <= 0) continue;
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(out + i * V + v0, ws_->logits_gathered + (r * rows + i) * Vl,
                  sizeof(float) * n);
  }
}

}  // namespace causeway
