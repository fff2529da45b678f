// Gradients at the circuit graph's receivers. A backward pass sums every reader's gradient
// into d(resid); edge attribution needs each reader's part on its own: head h's query input,
// key/value head g's inputs and the MLP's input, each through ln1 / ln2 as that reader
// normalizes its own copy (TransformerLens' split inputs).
#include <cstring>
#include <stdexcept>
#include <vector>

#include "model/transformer_model.h"

namespace causeway {

int receivers_in_layer(const ModelConfig& cfg, int layer) {
  return layer == cfg.n_layer ? 1 : cfg.n_head + 2 * cfg.kv_heads() + 1;
}

void TransformerModel::receiver_input_gradients(const ActivationCache& acts,
                                                const ActivationCache& grads, int layer, int B,
                                                int T, float* out) const {
  if (tp_) throw std::invalid_argument("receiver_input_gradients: not under tensor parallelism");
  const int C = cfg_.n_embd, H = cfg_.n_head, KV = cfg_.kv_heads(), L = layer;
  const int64_t N = static_cast<int64_t>(B) * T, TC = static_cast<int64_t>(T) * C;
  const int R = receivers_in_layer(cfg_, L);
  if (L == cfg_.n_layer) {  // Resid End: ln_final's input is read by nothing else
    std::memcpy(out, grads.at(HookPoint{HookKind::ResidPost, L - 1}).data,
                sizeof(float) * N * C);
    return;
  }
  const Backend& be = *backend_;
  const BlockWeights& w = weights_.blocks[L];
  const bool layer_norm = cfg_.norm == NormKind::LayerNorm;
  const float eps = cfg_.layer_norm_epsilon;
  // Scratch kept per thread between calls (one call per layer of every backward).
  thread_local std::vector<float> stats, heads, d_in, ones;
  stats.resize(static_cast<size_t>(2 * N));
  heads.resize(static_cast<size_t>(N) * H * C);
  d_in.resize(static_cast<size_t>(N) * C);
  ones.assign(static_cast<size_t>(C), 1.0f);

  // d(norm input) of one reader from d(norm output) `d_norm` (N, C) and the norm's weight,
  // into receiver r's (T, C) block of each row.
  auto through_norm = [&](const float* inp, const float* weight, const float* d_norm, int r) {
    std::fill(d_in.begin(), d_in.end(), 0.0f);
    if (layer_norm)
      be.layernorm_backward(d_in.data(), nullptr, nullptr, d_norm, inp, stats.data(),
                            stats.data() + N, weight, N, C);
    else
      be.rmsnorm_backward(d_in.data(), nullptr, d_norm, inp, stats.data(), weight, N, C);
    for (int b = 0; b < B; ++b)
      std::memcpy(out + (static_cast<int64_t>(b) * R + r) * TC, d_in.data() + b * TC,
                  sizeof(float) * TC);
  };
  auto norm_stats = [&](const float* inp) {
    if (layer_norm) be.layernorm_stats(stats.data(), stats.data() + N, inp, N, C, eps);
    else be.rmsnorm_stats(stats.data(), inp, N, C, eps);
  };

  const float* resid_pre = acts.at(HookPoint{HookKind::ResidPre, L}).data;
  norm_stats(resid_pre);
  struct Part { HookKind grad; const WeightMatrix W; int n; int first; };
  const Part parts[] = {{HookKind::Q, w.W_Q.matrix(), H, 0},
                        {HookKind::K, w.W_K.matrix(), KV, H},
                        {HookKind::V, w.W_V.matrix(), KV, H + KV}};
  for (const Part& p : parts) {
    be.linear_heads_backward(heads.data(), grads.at(HookPoint{p.grad, L}).data, p.W, N, p.n);
    for (int h = 0; h < p.n; ++h)
      through_norm(resid_pre, w.ln1_w.data, heads.data() + h * N * C, p.first + h);
  }

  // The MLP reads resid_mid, or resid_pre with a parallel residual; the backward's gradient at
  // ln2's hook_normalized is the MLP's alone (the norm weight already applied).
  const float* mlp_in = cfg_.parallel_residual
                            ? resid_pre
                            : acts.at(HookPoint{HookKind::ResidMid, L}).data;
  norm_stats(mlp_in);
  through_norm(mlp_in, layer_norm ? ones.data() : nullptr,
               grads.at(HookPoint{HookKind::Ln2Normalized, L}).data, H + 2 * KV);
}

}  // namespace causeway
