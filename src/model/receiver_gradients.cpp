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
  const int64_t N = static_cast<int64_t>(B) * T;
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
  std::vector<float> stats(static_cast<size_t>(2 * N)), heads(static_cast<size_t>(N) * H * C),
      one(static_cast<size_t>(N) * C), d_in(static_cast<size_t>(N) * C);

  // d(norm input) of one reader from d(norm output) `d_norm` (N, C), into receiver r's rows.
  auto through_norm = [&](const float* inp, const Tensor& weight, const float* d_norm, int r) {
    std::fill(d_in.begin(), d_in.end(), 0.0f);
    if (layer_norm)
      be.layernorm_backward(d_in.data(), nullptr, nullptr, d_norm, inp, stats.data(),
                            stats.data() + N, weight.data, N, C);
    else
      be.rmsnorm_backward(d_in.data(), nullptr, d_norm, inp, stats.data(), weight.data, N, C);
    for (int64_t n = 0; n < N; ++n)
      std::memcpy(out + (n * R + r) * C, d_in.data() + n * C, sizeof(float) * C);
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
    for (int h = 0; h < p.n; ++h) {
      for (int64_t n = 0; n < N; ++n)
        std::memcpy(one.data() + n * C, heads.data() + (n * p.n + h) * C, sizeof(float) * C);
      through_norm(resid_pre, w.ln1_w, one.data(), p.first + h);
    }
  }

  // The MLP reads resid_mid, or resid_pre with a parallel residual.
  const float* mlp_in = cfg_.parallel_residual
                            ? resid_pre
                            : acts.at(HookPoint{HookKind::ResidMid, L}).data;
  norm_stats(mlp_in);
  const float* d_pre = grads.at(HookPoint{HookKind::MlpPre, L}).data;
  if (cfg_.gated_mlp) {
    be.linear_backward(one.data(), nullptr, nullptr, d_pre, nullptr, w.W_gate.matrix(), N);
    be.linear_backward(heads.data(), nullptr, nullptr,
                       grads.at(HookPoint{HookKind::MlpPreLinear, L}).data, nullptr,
                       w.W_in.matrix(), N);
    for (int64_t i = 0; i < N * C; ++i) one[static_cast<size_t>(i)] += heads[static_cast<size_t>(i)];
  } else {
    be.linear_backward(one.data(), nullptr, nullptr, d_pre, nullptr, w.W_in.matrix(), N);
  }
  through_norm(mlp_in, w.ln2_w, one.data(), H + 2 * KV);
}

}  // namespace causeway
