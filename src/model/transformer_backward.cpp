// The backward pass of TransformerModel::forward, reading the activations a forward cached through a
// HookPlan (cache_for_backward) instead of keeping its own per-layer copies: attribution
// patching caches those hooks anyway. Layer-norm outputs and gelu outputs are recomputed.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/transformer_model.h"
#include "model/backward_workspace.h"

namespace causeway {

namespace {

const std::vector<HookKind> kBackwardHooks = {HookKind::ResidPre, HookKind::Q, HookKind::K,
                                              HookKind::V, HookKind::Pattern, HookKind::Z,
                                              HookKind::ResidMid, HookKind::MlpPre};

// d(metric)/d(hook_scale) where x_norm = (x - mean) / scale: -rstd * sum_i g_i * xhat_i with
// g = d_out * weight.
void scale_gradient(float* d_scale, const float* d_out, const float* x, const float* mean,
                    const float* rstd, const float* w, int64_t N, int C) {
  for (int64_t n = 0; n < N; ++n) {
    double s = 0.0;
    for (int i = 0; i < C; ++i) s += d_out[n * C + i] * w[i] * (x[n * C + i] - mean[n]) * rstd[n];
    d_scale[n] = static_cast<float>(-rstd[n] * s);
  }
}

}  // namespace

void TransformerModel::cache_for_backward(HookPlan& plan) const {
  for (int L = 0; L < cfg_.n_layer; ++L)
    for (HookKind k : kBackwardHooks) plan.cache({k, L});
  plan.cache({HookKind::ResidPost, cfg_.n_layer - 1});
}

void TransformerModel::backward(const TokenBatch& batch, const ActivationCache& acts, const float* d_final,
                         const BackwardRequest& req, ActivationCache& grads) {
  if (!cfg_.is_gpt2())
    throw std::invalid_argument("backward: only GPT-2 so far (model families: issue 11)");
  const int B = batch.B, T = batch.T;
  const int64_t N = static_cast<int64_t>(B) * T;
  const int C = cfg_.n_embd, NH = cfg_.n_head, HS = cfg_.d_head(), M = cfg_.n_inner;
  const float eps = cfg_.layer_norm_epsilon;
  const Backend& be = *backend_;
  if (!bws_) bws_ = std::make_unique<BackwardWorkspace>();
  BackwardWorkspace& w = *bws_;
  for (auto* v : {&w.d_resid, &w.d_tmp, &w.d_ln, &w.d_z, &w.d_q, &w.d_k, &w.d_v, &w.ln_out})
    BackwardWorkspace::fit(*v, N * C);
  for (auto* v : {&w.d_mlp, &w.d_mlp2, &w.mlp_post}) BackwardWorkspace::fit(*v, N * M);
  for (auto* v : {&w.d_pattern, &w.d_scores}) BackwardWorkspace::fit(*v, N * NH * T);
  for (auto* v : {&w.mean, &w.rstd}) BackwardWorkspace::fit(*v, N);

  std::vector<bool> wanted(static_cast<size_t>((cfg_.n_layer + 1) * kHookKindCount), false);
  auto slot = [&](HookPoint p) { return static_cast<size_t>((p.layer + 1) * kHookKindCount + static_cast<int>(p.kind)); };
  for (const HookPoint& p : req.hooks) wanted[slot(p)] = true;
  auto store = [&](HookKind kind, int layer, const float* g) {
    const HookPoint p{kind, layer};
    if (!wanted[slot(p)]) return;
    grads.store(p, Tensor{const_cast<float*>(g), p.shape(cfg_, B, T)});
  };
  auto act = [&](HookKind kind, int layer) { return acts.at(HookPoint{kind, layer}).data; };
  ModelWeights* wg = req.weight_grads;
  float* d_resid = w.d_resid.data();
  // Back through a layer norm whose statistics of `x` are in w.mean / w.rstd: the scale hook's
  // gradient if wanted, then (unless `skip`) the input gradient added to the residual stream's.
  auto norm_backward = [&](HookPoint scale, const float* d_out, const float* x, const Tensor& weight,
                           float* d_weight, float* d_bias, bool skip) {
    if (wanted[slot(scale)]) {
      scale_gradient(w.d_tmp.data(), d_out, x, w.mean.data(), w.rstd.data(), weight.data, N, C);
      store(scale.kind, scale.layer, w.d_tmp.data());
    }
    if (!skip)
      be.layernorm_backward(d_resid, d_weight, d_bias, d_out, x, w.mean.data(), w.rstd.data(),
                            weight.data, N, C);
  };

  // ln_final
  {
    const float* x = act(HookKind::ResidPost, cfg_.n_layer - 1);
    be.layernorm_stats(w.mean.data(), w.rstd.data(), x, N, C, eps);
    std::fill(d_resid, d_resid + N * C, 0.0f);
    norm_backward({HookKind::LnFinalScale, -1}, d_final, x, weights_.ln_final_w,
                  wg ? wg->ln_final_w.data : nullptr, wg ? wg->ln_final_b.data : nullptr, false);
  }

  for (int L = cfg_.n_layer - 1; L >= 0; --L) {
    const BlockWeights& bw = weights_.blocks[L];
    BlockWeights* g = wg ? &wg->blocks[L] : nullptr;
    const bool drop = L == req.drop_layer;
    store(HookKind::ResidPost, L, d_resid);

    // MLP: resid_post = resid_mid + W_out(gelu(W_in ln2(resid_mid)))
    store(HookKind::MlpOut, L, d_resid);
    const float* pre = act(HookKind::MlpPre, L);
    if (cfg_.activation_function == "gelu") be.gelu_erf_forward(w.mlp_post.data(), pre, N * M);
    else be.gelu_forward(w.mlp_post.data(), pre, N * M);
    be.matmul_backward(w.d_mlp.data(), g ? g->W_out.data : nullptr, g ? g->b_out.data : nullptr,
                       d_resid, w.mlp_post.data(), bw.W_out.data, N, M, C);
    store(HookKind::MlpPost, L, w.d_mlp.data());
    if (cfg_.activation_function == "gelu") be.gelu_erf_backward(w.d_mlp2.data(), w.d_mlp.data(), pre, N * M);
    else be.gelu_backward(w.d_mlp2.data(), w.d_mlp.data(), pre, N * M);
    store(HookKind::MlpPre, L, w.d_mlp2.data());
    const float* mid = act(HookKind::ResidMid, L);
    be.layernorm_forward(w.ln_out.data(), w.mean.data(), w.rstd.data(), mid, bw.ln2_w.data,
                         bw.ln2_b.data, N, C, eps);
    be.matmul_backward(w.d_ln.data(), g ? g->W_in.data : nullptr, g ? g->b_in.data : nullptr,
                       w.d_mlp2.data(), w.ln_out.data(), bw.W_in.data, N, C, M);
    norm_backward({HookKind::Ln2Scale, L}, w.d_ln.data(), mid, bw.ln2_w, g ? g->ln2_w.data : nullptr,
                  g ? g->ln2_b.data : nullptr, drop);
    store(HookKind::ResidMid, L, d_resid);

    // Attention: resid_mid = resid_pre + W_O z + b_O
    store(HookKind::AttnOut, L, d_resid);
    if (wanted[slot({HookKind::Result, L})]) {
      std::vector<float> d_result(static_cast<size_t>(N) * NH * C);
      for (int64_t n = 0; n < N; ++n)
        for (int h = 0; h < NH; ++h)
          std::memcpy(d_result.data() + (n * NH + h) * C, d_resid + n * C, sizeof(float) * C);
      store(HookKind::Result, L, d_result.data());
    }
    const float* z = act(HookKind::Z, L);
    be.matmul_backward(w.d_z.data(), g ? g->W_O.data : nullptr, g ? g->b_O.data : nullptr, d_resid,
                       z, bw.W_O.data, N, C, C);
    store(HookKind::Z, L, w.d_z.data());
    const float* pattern = act(HookKind::Pattern, L);
    const float* q = act(HookKind::Q, L);
    const float* k = act(HookKind::K, L);
    const float* v = act(HookKind::V, L);
    be.attention_values_backward(w.d_pattern.data(), w.d_v.data(), w.d_z.data(), pattern, v, B, T, NH, HS);
    store(HookKind::Pattern, L, w.d_pattern.data());
    store(HookKind::V, L, w.d_v.data());
    be.attention_softmax_backward(w.d_scores.data(), w.d_pattern.data(), pattern, B, NH, T);
    store(HookKind::AttnScores, L, w.d_scores.data());
    be.attention_scores_backward(w.d_q.data(), w.d_k.data(), w.d_scores.data(), q, k, B, T, NH, HS);
    store(HookKind::Q, L, w.d_q.data());
    store(HookKind::K, L, w.d_k.data());
    const float* pre_resid = act(HookKind::ResidPre, L);
    be.layernorm_forward(w.ln_out.data(), w.mean.data(), w.rstd.data(), pre_resid, bw.ln1_w.data,
                         bw.ln1_b.data, N, C, eps);
    be.matmul_backward(w.d_ln.data(), g ? g->W_Q.data : nullptr, g ? g->b_Q.data : nullptr,
                       w.d_q.data(), w.ln_out.data(), bw.W_Q.data, N, C, C);
    for (const auto& [dx, W, gW, gb] :
         {std::tuple{w.d_k.data(), bw.W_K.data, g ? g->W_K.data : nullptr, g ? g->b_K.data : nullptr},
          std::tuple{w.d_v.data(), bw.W_V.data, g ? g->W_V.data : nullptr, g ? g->b_V.data : nullptr}}) {
      be.matmul_backward(w.d_tmp.data(), gW, gb, dx, w.ln_out.data(), W, N, C, C);
      be.add_forward(w.d_ln.data(), w.d_ln.data(), w.d_tmp.data(), N * C);
    }
    norm_backward({HookKind::Ln1Scale, L}, w.d_ln.data(), pre_resid, bw.ln1_w,
                  g ? g->ln1_w.data : nullptr, g ? g->ln1_b.data : nullptr, drop);
    store(HookKind::ResidPre, L, d_resid);
  }
  store(HookKind::Embed, -1, d_resid);
  store(HookKind::PosEmbed, -1, d_resid);
  if (wg) {
    be.embedding_backward(wg->W_E.data, d_resid, batch.ids.data(), N, C);
    be.position_embedding_backward(wg->W_pos.data, d_resid, B, T, C);
  }
}

double TransformerModel::loss_and_gradients(const TokenBatch& batch, const std::vector<int32_t>& targets,
                                     ModelWeights& grads) {
  const int B = batch.B, T = batch.T, C = cfg_.n_embd, V = cfg_.vocab_size;
  const int64_t N = static_cast<int64_t>(B) * T;
  if (static_cast<int64_t>(targets.size()) != N)
    throw std::invalid_argument("loss_and_gradients: one target per token position");
  HookPlan plan(cfg_.n_layer);
  cache_for_backward(plan);
  forward(batch, plan, LogitRows::None);
  if (!bws_) bws_ = std::make_unique<BackwardWorkspace>();
  BackwardWorkspace& w = *bws_;
  BackwardWorkspace::fit(w.logits, N * V);
  BackwardWorkspace::fit(w.mean, N);
  BackwardWorkspace::fit(w.rstd, N);
  std::vector<float> ln_final(static_cast<size_t>(N) * C), d_final(ln_final.size());
  backend_->layernorm_forward(ln_final.data(), w.mean.data(), w.rstd.data(),
                              plan.activations().at(HookPoint{HookKind::ResidPost, cfg_.n_layer - 1}).data,
                              weights_.ln_final_w.data, weights_.ln_final_b.data, N, C,
                              cfg_.layer_norm_epsilon);
  float* logits = w.logits.data();
  backend_->matmul_transposed_forward(logits, ln_final.data(), weights_.W_U.data, N, C, V);
  int64_t count = 0;
  for (int32_t t : targets) count += t >= 0;
  if (count == 0) throw std::invalid_argument("loss_and_gradients: no targets");
  // Softmax cross-entropy; the logits become d(loss)/d(logits) in place.
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
    for (int i = 0; i < V; ++i)
      row[i] = static_cast<float>(std::exp(static_cast<double>(row[i] - mx)) / sum / count);
    row[targets[n]] -= 1.0f / count;
  }
  backend_->matmul_transposed_backward(d_final.data(), grads.W_U.data, logits, ln_final.data(),
                                       weights_.W_U.data, N, C, V);
  BackwardRequest req;
  req.weight_grads = &grads;
  ActivationCache unused;
  backward(batch, plan.activations(), d_final.data(), req, unused);
  return loss / count;
}

}  // namespace causeway
