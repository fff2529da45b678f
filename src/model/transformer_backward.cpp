// The backward pass of TransformerModel::forward for every family, reading the activations a
// forward cached through a HookPlan (cache_for_backward) instead of keeping its own per-layer
// copies: attribution patching caches those hooks anyway. Norm statistics and outputs, MLP
// activations and a branch's output before its post-norm are recomputed. It walks the forward
// backwards step by step, reading what differs between families from ModelConfig as the
// forward does: norms (LayerNorm / RMSNorm, per-head q/k norms), rotary, grouped-query
// attention with soft-cap and sliding window, post-norms, parallel residual, gated MLPs.
//
// Under tensor parallelism (Megatron's rule) a rank backpropagates through its own heads and
// units: the gradient reaching a column-parallel layer's input (ln1's output feeding Q/K/V,
// ln2's feeding the MLP's in/gate) is a partial sum per rank and is allreduced before it joins
// the residual stream's gradient, which every rank holds whole; row-parallel layers (W_O,
// W_out) need no collective backwards. A key/value head replicated over several ranks gets
// gradient from each rank's query heads: those are summed over its holders, so its hook
// gradients are whole, and only its first holder passes it on to ln1. Weight gradients are not
// computed under tp (training is refused): the gradient of replicated vectors would need one
// more reduction over the group's ranks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "model/transformer_model.h"
#include "model/backward_workspace.h"
#include "model/mlp_activation.h"

namespace causeway {

namespace {


// d(metric)/d(hook_scale), where hook_normalized = xc / scale with xc = x - mean (LayerNorm;
// mean null for RMSNorm: xc = x): -rstd * sum_i g_i * xc_i * rstd, g = d_out * weight.
void scale_gradient(float* d_scale, const float* d_out, const float* x, const float* mean,
                    const float* rstd, const float* w, int64_t rows, int width) {
  for (int64_t n = 0; n < rows; ++n) {
    const float mu = mean ? mean[n] : 0.0f;
    double s = 0.0;
    for (int i = 0; i < width; ++i)
      s += d_out[n * width + i] * w[i] * (x[n * width + i] - mu) * rstd[n];
    d_scale[n] = static_cast<float>(-rstd[n] * s);
  }
}

}  // namespace

// The hooks a backward reads: the input of every norm, the attention's q/k (rotated when
// rotary; raw too when q/k norms need their input), v, pattern and z, the MLP's pre-activations.
std::vector<HookKind> backward_hook_kinds(const ModelConfig& cfg) {
  const bool rotary = cfg.rotary_dim > 0;
  // Filled with push_back: GCC 12 warns falsely (-Warray-bounds) on inserting an
  // initializer_list of this one-byte enum.
  std::vector<HookKind> k;
  auto add = [&](bool when, HookKind kind) {
    if (when) k.push_back(kind);
  };
  add(true, HookKind::ResidPre);
  add(!rotary || cfg.qk_norm, HookKind::Q);
  add(!rotary || cfg.qk_norm, HookKind::K);
  add(true, HookKind::V);
  add(rotary, HookKind::RotQ);
  add(rotary, HookKind::RotK);
  add(true, HookKind::Pattern);
  add(true, HookKind::Z);
  add(!cfg.parallel_residual, HookKind::ResidMid);
  add(true, HookKind::MlpPre);
  add(cfg.gated_mlp, HookKind::MlpPreLinear);
  return k;
}

void TransformerModel::cache_for_backward(HookPlan& plan) const {
  const std::vector<HookKind> kinds = backward_hook_kinds(cfg_);
  for (int L = 0; L < cfg_.n_layer; ++L)
    for (HookKind k : kinds) plan.cache({k, L});
  plan.cache({HookKind::ResidPost, cfg_.n_layer - 1});
}

// d_final is the gradient with respect to ln_final's output: a caller whose metric reads
// soft-capped logits (Gemma 2) must fold the cap's derivative into it (loss_and_gradients and
// attribution patching do).
void TransformerModel::backward(const TokenBatch& batch, const ActivationCache& acts,
                                const float* d_final, const BackwardRequest& req,
                                ActivationCache& grads) {
  ModelWeights* wg = req.weight_grads;
  if (wg && tp_)
    throw std::invalid_argument(
        "backward: weight gradients (training) are not supported under tensor parallelism; "
        "train with tp = 1 (hook gradients and attribution patching work under tp)");
  if (wg && (weights_.dtype() != DType::F32 || wg->dtype() != DType::F32))
    throw std::invalid_argument(
        std::string("backward: weight gradients need fp32 weights and gradients; this model's "
                    "matrices are ") +
        dtype_name(weights_.dtype()) + " (load with dtype f32 to train)");
  const int B = batch.B, T = batch.T;
  const int64_t N = static_cast<int64_t>(B) * T;
  // This rank's heads and units (the whole model's without tensor parallelism).
  const int C = cfg_.n_embd, NH = lc_.n_head, KV = lc_.kv_heads(), HS = cfg_.d_head(),
            M = lc_.n_inner;
  const int64_t Q = int64_t{NH} * HS, KVW = int64_t{KV} * HS, wide = std::max<int64_t>(C, Q);
  const float eps = cfg_.layer_norm_epsilon;
  const bool layer_norm = cfg_.norm == NormKind::LayerNorm, rotary = cfg_.rotary_dim > 0,
             parallel = cfg_.parallel_residual, post_norms = cfg_.post_norms;
  const float attn_mult = static_cast<float>(1.0 / cfg_.attn_scale());
  const cpu::GatedActivation gate_act = gated_activation(cfg_);
  const Backend& be = *backend_;
  // A replicated key/value head (more ranks than kv heads) is held by several ranks.
  const bool kv_replicated = tp_ && cfg_.kv_heads() % shard_.size != 0;
  const bool kv_first_holder =
      !kv_replicated || shard_.head_begin == shard_.kv_head_begin * (cfg_.n_head / cfg_.kv_heads());
  if (!bws_) bws_ = std::make_unique<BackwardWorkspace>();
  BackwardWorkspace& w = *bws_;
  if (kv_replicated) BackwardWorkspace::fit(w.kv_gathered, shard_.size * N * KVW);
  for (auto* v : {&w.d_resid, &w.d_branch, &w.raw, &w.d_ln, &w.ln_out})
    BackwardWorkspace::fit(*v, N * C);
  BackwardWorkspace::fit(w.d_hook, N * wide);
  for (auto* v : {&w.d_z, &w.d_q, &w.d_q2}) BackwardWorkspace::fit(*v, N * Q);
  for (auto* v : {&w.d_k, &w.d_v, &w.d_k2}) BackwardWorkspace::fit(*v, N * KVW);
  for (auto* v : {&w.d_mlp, &w.d_mlp2, &w.d_up, &w.mlp_post}) BackwardWorkspace::fit(*v, N * M);
  for (auto* v : {&w.d_pattern, &w.d_scores}) BackwardWorkspace::fit(*v, N * NH * T);
  for (auto* v : {&w.mean, &w.rstd, &w.scale}) BackwardWorkspace::fit(*v, N * NH);
  if (rotary) {
    w.positions.resize(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) w.positions[n] = static_cast<int32_t>(n % T);
  }

  std::vector<bool> wanted(static_cast<size_t>((cfg_.n_layer + 1) * kHookKindCount), false);
  auto slot = [&](HookPoint p) {
    return static_cast<size_t>((p.layer + 1) * kHookKindCount + static_cast<int>(p.kind));
  };
  for (const HookPoint& p : req.hooks) wanted[slot(p)] = true;
  auto wants = [&](HookKind kind, int layer) { return wanted[slot({kind, layer})]; };
  auto store = [&](HookKind kind, int layer, const float* g) {
    const HookPoint p{kind, layer};
    if (!wanted[slot(p)]) return;
    grads.store(p, Tensor{const_cast<float*>(g), p.shape(lc_, B, T)});
  };
  auto act = [&](HookKind kind, int layer) { return acts.at(HookPoint{kind, layer}).data; };
  float* d_resid = w.d_resid.data();
  float *mean = w.mean.data(), *rstd = w.rstd.data(), *scale = w.scale.data();

  // A norm's statistics of x (rows x width), and its output into `out` when given (the weight
  // gradient of the linear map after it reads that).
  auto norm_stats = [&](const float* x, const Tensor& weight, const Tensor& bias, int64_t rows,
                        int width, float* out) {
    if (layer_norm) {
      if (out) be.layernorm_forward(out, mean, rstd, x, weight.data, bias.data, rows, width, eps);
      else be.layernorm_stats(mean, rstd, x, rows, width, eps);
      return;
    }
    be.rmsnorm_stats(scale, x, rows, width, eps);
    for (int64_t r = 0; r < rows; ++r) rstd[r] = 1.0f / scale[r];
    if (out) be.rmsnorm_apply(out, x, scale, weight.data, rows, width);
  };
  // Back through the norm norm_stats last saw: its hook_normalized and hook_scale gradients
  // when wanted, then, with d_x given, the input gradient added to d_x and the weight (and
  // bias) gradients to d_w (d_b) when given. Gemma's stored weight is 1 + w, whose gradient is
  // that of w.
  auto norm_backward = [&](HookKind scale_kind, HookKind normalized_kind, int layer,
                           const float* d_out, const float* x, const Tensor& weight, float* d_w,
                           float* d_b, int64_t rows, int width, float* d_x) {
    float* d_hook = w.d_hook.data();
    if (wants(normalized_kind, layer)) {
      for (int64_t r = 0; r < rows; ++r)
        for (int i = 0; i < width; ++i) d_hook[r * width + i] = d_out[r * width + i] * weight.data[i];
      store(normalized_kind, layer, d_hook);
    }
    if (wants(scale_kind, layer)) {
      scale_gradient(d_hook, d_out, x, layer_norm ? mean : nullptr, rstd, weight.data, rows, width);
      store(scale_kind, layer, d_hook);
    }
    if (!d_x) return;
    if (layer_norm) be.layernorm_backward(d_x, d_w, d_b, d_out, x, mean, rstd, weight.data, rows, width);
    else be.rmsnorm_backward(d_x, d_w, d_out, x, scale, weight.data, rows, width);
  };

  // Sums a replicated kv head's gradient (N, KVW) over the ranks holding that head.
  auto sum_over_kv_holders = [&](float* d) {
    float* all = w.kv_gathered.data();
    const int64_t n = N * KVW;
    tp_->allgather(d, n, all);
    std::fill(d, d + n, 0.0f);
    for (int r = 0; r < shard_.size; ++r) {
      if (TensorShard::make(cfg_, r, shard_.size, "").kv_head_begin != shard_.kv_head_begin) continue;
      const float* from = all + r * n;
      for (int64_t i = 0; i < n; ++i) d[i] += from[i];
    }
  };

  // Back through Gemma's post-norm of a sublayer's output (W x + b, recomputed from its input
  // x; under tp a row-parallel sum, bias on rank 0 as in the forward): the gradient at the
  // sublayer's raw output, in w.d_ln.
  auto post_norm_backward = [&](HookKind scale_kind, HookKind normalized_kind, int layer,
                                const float* d_out, const float* x, const Weight& W,
                                const Tensor& b, const Tensor& post_w, float* d_post_w) {
    float* raw = w.raw.data();
    be.linear_forward(raw, x, W.matrix(), shard_.rank == 0 ? b.data : nullptr, N);
    if (tp_) tp_->allreduce_sum(raw, N * C);
    norm_stats(raw, post_w, Tensor{}, N, C, nullptr);
    std::fill(w.d_ln.begin(), w.d_ln.begin() + N * C, 0.0f);
    norm_backward(scale_kind, normalized_kind, layer, d_out, raw, post_w, d_post_w, nullptr, N, C,
                  w.d_ln.data());
    return static_cast<const float*>(w.d_ln.data());
  };

  // ln_final
  {
    const float* x = act(HookKind::ResidPost, cfg_.n_layer - 1);
    norm_stats(x, weights_.ln_final_w, weights_.ln_final_b, N, C, nullptr);
    std::fill(d_resid, d_resid + N * C, 0.0f);
    norm_backward(HookKind::LnFinalScale, HookKind::LnFinalNormalized, -1, d_final, x,
                  weights_.ln_final_w, wg ? wg->ln_final_w.data : nullptr,
                  wg ? wg->ln_final_b.data : nullptr, N, C, d_resid);
  }

  const BlockWeights no_grads{};  // every gradient pointer null: hook gradients only
  for (int L = cfg_.n_layer - 1; L >= 0; --L) {
    const BlockWeights& bw = weights_.blocks[L];
    const BlockWeights& g = wg ? wg->blocks[L] : no_grads;
    // GradDrop: the block's gradients reach its own hooks but not the residual stream below.
    const bool drop = L == req.drop_layer;
    const bool sliding = !cfg_.sliding_layers.empty() && cfg_.sliding_layers[L];
    store(HookKind::ResidPost, L, d_resid);
    store(HookKind::MlpOut, L, d_resid);
    // A parallel block's attention output gets the gradient at resid_post, before the MLP's
    // ln2 input gradient joins the residual stream's.
    const float* d_attn_out = d_resid;
    if (parallel) {
      std::memcpy(w.d_branch.data(), d_resid, sizeof(float) * N * C);
      d_attn_out = w.d_branch.data();
    }

    // MLP: mlp_out = [ln2_post](W_out act(pre) (* pre_linear when gated) + b_out)
    const float* pre = act(HookKind::MlpPre, L);
    const float* up = cfg_.gated_mlp ? act(HookKind::MlpPreLinear, L) : nullptr;
    float* post = w.mlp_post.data();
    if (wg || post_norms) {
      if (cfg_.gated_mlp) be.gated_forward(post, pre, up, N * M, gate_act);
      else mlp_activation_forward(be, cfg_, post, pre, N * M);
    }
    const float* d_mlp_out =
        post_norms ? post_norm_backward(HookKind::Ln2PostScale, HookKind::Ln2PostNormalized, L,
                                        d_resid, post, bw.W_out, bw.b_out, bw.ln2_post_w,
                                        g.ln2_post_w.data)
                   : d_resid;
    be.linear_backward(w.d_mlp.data(), g.W_out.data, g.b_out.data, d_mlp_out, post,
                       bw.W_out.matrix(), N);
    store(HookKind::MlpPost, L, w.d_mlp.data());
    if (cfg_.gated_mlp) {
      be.gated_backward(w.d_mlp2.data(), w.d_up.data(), w.d_mlp.data(), pre, up, N * M, gate_act);
      store(HookKind::MlpPreLinear, L, w.d_up.data());
    } else {
      mlp_activation_backward(be, cfg_, w.d_mlp2.data(), w.d_mlp.data(), pre, N * M);
    }
    store(HookKind::MlpPre, L, w.d_mlp2.data());
    const float* ln2_in = act(parallel ? HookKind::ResidPre : HookKind::ResidMid, L);
    norm_stats(ln2_in, bw.ln2_w, bw.ln2_b, N, C, wg ? w.ln_out.data() : nullptr);
    if (cfg_.gated_mlp) {
      be.linear_backward(w.d_ln.data(), g.W_gate.data, g.b_gate.data, w.d_mlp2.data(),
                         w.ln_out.data(), bw.W_gate.matrix(), N);
      be.linear_backward(w.d_hook.data(), g.W_in.data, g.b_in.data, w.d_up.data(),
                         w.ln_out.data(), bw.W_in.matrix(), N);
      be.add_forward(w.d_ln.data(), w.d_ln.data(), w.d_hook.data(), N * C);
    } else {
      be.linear_backward(w.d_ln.data(), g.W_in.data, g.b_in.data, w.d_mlp2.data(),
                         w.ln_out.data(), bw.W_in.matrix(), N);
    }
    if (tp_) tp_->allreduce_sum(w.d_ln.data(), N * C);  // column-parallel input: partial sums
    norm_backward(HookKind::Ln2Scale, HookKind::Ln2Normalized, L, w.d_ln.data(), ln2_in, bw.ln2_w,
                  g.ln2_w.data, g.ln2_b.data, N, C, drop ? nullptr : d_resid);
    if (!parallel) store(HookKind::ResidMid, L, d_resid);

    // Attention: attn_out = [ln1_post](W_O z + b_O)
    store(HookKind::AttnOut, L, d_attn_out);
    const float* z = act(HookKind::Z, L);
    const float* d_attn =
        post_norms ? post_norm_backward(HookKind::Ln1PostScale, HookKind::Ln1PostNormalized, L,
                                        d_attn_out, z, bw.W_O, bw.b_O, bw.ln1_post_w,
                                        g.ln1_post_w.data)
                   : d_attn_out;
    if (wants(HookKind::Result, L)) {
      std::vector<float> d_result(static_cast<size_t>(N) * NH * C);
      for (int64_t n = 0; n < N; ++n)
        for (int h = 0; h < NH; ++h)
          std::memcpy(d_result.data() + (n * NH + h) * C, d_attn + n * C, sizeof(float) * C);
      store(HookKind::Result, L, d_result.data());
    }
    be.linear_backward(w.d_z.data(), g.W_O.data, g.b_O.data, d_attn, z, bw.W_O.matrix(), N);
    store(HookKind::Z, L, w.d_z.data());
    const float* pattern = act(HookKind::Pattern, L);
    be.attention_values_gqa_backward(w.d_pattern.data(), w.d_v.data(), w.d_z.data(), pattern,
                                     act(HookKind::V, L), B, T, NH, KV, HS);
    if (kv_replicated) sum_over_kv_holders(w.d_v.data());
    store(HookKind::Pattern, L, w.d_pattern.data());
    store(HookKind::V, L, w.d_v.data());
    be.attention_softmax_backward(w.d_scores.data(), w.d_pattern.data(), pattern, B, NH, T);
    store(HookKind::AttnScores, L, w.d_scores.data());
    // The scores read q and k as attention_keys_hook says: rotated for rotary models.
    be.attention_scores_gqa_backward(
        w.d_q.data(), w.d_k.data(), w.d_scores.data(), act(rotary ? HookKind::RotQ : HookKind::Q, L),
        act(rotary ? HookKind::RotK : HookKind::K, L), B, T, NH, KV, HS, attn_mult,
        cfg_.attn_softcap, sliding ? cfg_.sliding_window : 0);
    if (kv_replicated) sum_over_kv_holders(w.d_k.data());
    if (rotary) {
      store(HookKind::RotQ, L, w.d_q.data());
      store(HookKind::RotK, L, w.d_k.data());
      be.rotary_backward(w.d_q.data(), w.d_q.data(), w.positions.data(), N, NH, HS,
                         cfg_.rotary_dim, inv_freq_.data());
      be.rotary_backward(w.d_k.data(), w.d_k.data(), w.positions.data(), N, KV, HS,
                         cfg_.rotary_dim, inv_freq_.data());
    }
    const float* d_q = w.d_q.data();
    const float* d_k = w.d_k.data();
    if (cfg_.qk_norm) {  // per-head norms of the raw projections hook_q / hook_k
      const float* q = act(HookKind::Q, L);
      norm_stats(q, bw.q_norm_w, Tensor{}, N * NH, HS, nullptr);
      std::fill(w.d_q2.begin(), w.d_q2.begin() + N * Q, 0.0f);
      norm_backward(HookKind::QNormScale, HookKind::QNormNormalized, L, d_q, q, bw.q_norm_w,
                    g.q_norm_w.data, nullptr, N * NH, HS, w.d_q2.data());
      const float* k = act(HookKind::K, L);
      norm_stats(k, bw.k_norm_w, Tensor{}, N * KV, HS, nullptr);
      std::fill(w.d_k2.begin(), w.d_k2.begin() + N * KVW, 0.0f);
      norm_backward(HookKind::KNormScale, HookKind::KNormNormalized, L, d_k, k, bw.k_norm_w,
                    g.k_norm_w.data, nullptr, N * KV, HS, w.d_k2.data());
      d_q = w.d_q2.data(), d_k = w.d_k2.data();
    }
    store(HookKind::Q, L, d_q);
    store(HookKind::K, L, d_k);

    // ln1 feeds q, k and v (TransformerLens calls it three times: its hook gradients are the sum)
    const float* resid_pre = act(HookKind::ResidPre, L);
    norm_stats(resid_pre, bw.ln1_w, bw.ln1_b, N, C, wg ? w.ln_out.data() : nullptr);
    be.linear_backward(w.d_ln.data(), g.W_Q.data, g.b_Q.data, d_q, w.ln_out.data(),
                       bw.W_Q.matrix(), N);
    if (kv_first_holder) {  // a replicated kv head's whole gradient enters ln1 once
      be.linear_backward(w.d_hook.data(), g.W_K.data, g.b_K.data, d_k, w.ln_out.data(),
                         bw.W_K.matrix(), N);
      be.add_forward(w.d_ln.data(), w.d_ln.data(), w.d_hook.data(), N * C);
      be.linear_backward(w.d_hook.data(), g.W_V.data, g.b_V.data, w.d_v.data(),
                         w.ln_out.data(), bw.W_V.matrix(), N);
      be.add_forward(w.d_ln.data(), w.d_ln.data(), w.d_hook.data(), N * C);
    }
    if (tp_) tp_->allreduce_sum(w.d_ln.data(), N * C);  // column-parallel input: partial sums
    norm_backward(HookKind::Ln1Scale, HookKind::Ln1Normalized, L, w.d_ln.data(), resid_pre,
                  bw.ln1_w, g.ln1_w.data, g.ln1_b.data, N, C, drop ? nullptr : d_resid);
    store(HookKind::ResidPre, L, d_resid);
  }
  store(HookKind::Embed, -1, d_resid);
  if (!rotary) store(HookKind::PosEmbed, -1, d_resid);
  if (wg) {
    // hook_embed = W_E[token] * embedding_scale (Gemma: sqrt(d_model))
    const float* d_embed = d_resid;
    if (cfg_.embedding_scale != 1.0f) {
      for (int64_t i = 0; i < N * C; ++i) w.d_ln[i] = d_resid[i] * cfg_.embedding_scale;
      d_embed = w.d_ln.data();
    }
    be.embedding_backward(wg->W_E.data, d_embed, batch.ids.data(), N, C);
    if (!rotary) be.position_embedding_backward(wg->W_pos.data, d_resid, B, T, C);
  }
}

double TransformerModel::loss_and_gradients(const TokenBatch& batch,
                                            const std::vector<int32_t>& targets,
                                            ModelWeights& grads) {
  const int B = batch.B, T = batch.T, C = cfg_.n_embd, V = cfg_.vocab_size;
  const int64_t N = static_cast<int64_t>(B) * T;
  if (static_cast<int64_t>(targets.size()) != N)
    throw std::invalid_argument("loss_and_gradients: one target per token position");
  if (tp_)
    throw std::invalid_argument(
        "loss_and_gradients: training is not supported under tensor parallelism (train with "
        "tp = 1)");
  if (weights_.dtype() != DType::F32 || grads.dtype() != DType::F32)
    throw std::invalid_argument(
        std::string("loss_and_gradients: training needs fp32 weights and gradients; this "
                    "model's matrices are ") +
        dtype_name(weights_.dtype()) + " (load with dtype f32 to train)");
  int64_t count = 0;
  for (int32_t t : targets) count += t >= 0;
  if (count == 0) throw std::invalid_argument("loss_and_gradients: no targets");
  HookPlan plan(cfg_.n_layer);
  cache_for_backward(plan);
  forward(batch, plan, LogitRows::None);
  if (!bws_) bws_ = std::make_unique<BackwardWorkspace>();
  BackwardWorkspace& w = *bws_;
  BackwardWorkspace::fit(w.logits, N * V);
  for (auto* v : {&w.mean, &w.rstd}) BackwardWorkspace::fit(*v, N);
  // ln_final's output over every position (the forward above kept only the read rows).
  std::vector<float> ln_final(static_cast<size_t>(N) * C), d_final(ln_final.size());
  const float* x = plan.activations().at(HookPoint{HookKind::ResidPost, cfg_.n_layer - 1}).data;
  if (cfg_.norm == NormKind::LayerNorm) {
    backend_->layernorm_forward(ln_final.data(), w.mean.data(), w.rstd.data(), x,
                                weights_.ln_final_w.data, weights_.ln_final_b.data, N, C,
                                cfg_.layer_norm_epsilon);
  } else {
    backend_->rmsnorm_stats(w.rstd.data(), x, N, C, cfg_.layer_norm_epsilon);
    backend_->rmsnorm_apply(ln_final.data(), x, w.rstd.data(), weights_.ln_final_w.data, N, C);
  }
  float* logits = w.logits.data();
  backend_->linear_forward(logits, ln_final.data(), weights_.W_U.matrix(), nullptr, N);
  const float cap = cfg_.final_logit_softcap;
  if (cap > 0) backend_->softcap_forward(logits, logits, N * V, cap);
  // Softmax cross-entropy of the (capped) logits; they become d(loss)/d(logits before the cap)
  // in place: the cap's derivative 1 - tanh^2 is 1 - (capped / cap)^2.
  double loss = 0.0;
#pragma omp parallel for reduction(+ : loss) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* row = logits + n * V;
    if (targets[n] < 0) {
      std::fill(row, row + V, 0.0f);
      continue;
    }
    const float mx = *std::max_element(row, row + V);
    double sum = 0.0;
    for (int i = 0; i < V; ++i) sum += std::exp(static_cast<double>(row[i] - mx));
    loss += std::log(sum) + mx - row[targets[n]];
    for (int i = 0; i < V; ++i) {
      float d = static_cast<float>(std::exp(static_cast<double>(row[i] - mx)) / sum / count);
      if (i == targets[n]) d -= 1.0f / count;
      if (cap > 0) d *= 1.0f - (row[i] / cap) * (row[i] / cap);
      row[i] = d;
    }
  }
  // Tied models: grads.W_U is grads.W_E, so the unembedding part lands in the embedding's.
  backend_->linear_backward(d_final.data(), grads.W_U.data, nullptr, logits, ln_final.data(),
                            weights_.W_U.matrix(), N);
  BackwardRequest req;
  req.weight_grads = &grads;
  ActivationCache unused;
  backward(batch, plan.activations(), d_final.data(), req, unused);
  return loss / count;
}

}  // namespace causeway
