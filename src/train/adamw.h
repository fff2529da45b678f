// AdamW (Loshchilov & Hutter), with torch.optim.AdamW's exact semantics so that a step here
// equals a step there to float rounding:
//   p -= lr * weight_decay * p                       (decoupled decay, before the moments)
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g^2
//   p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)    (eps outside the sqrt)
// The optimizer walks the parameters as the tensors of an Arena (ModelWeights::arena()); the
// gradients come in an Arena of the same table. Which tensors decay is a per-tensor mask:
// torch decays every parameter given to it (decay_all), the usual GPT recipe (nanoGPT,
// Megatron) only matrices and embeddings, not biases or layernorm gains (decay_matrices).
#pragma once

#include <cstdint>
#include <vector>

#include "core/arena.h"

namespace causeway::train {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

class AdamW {
 public:
  // `decay[i]` says whether params.at(i) is decayed; state (m, v) starts at zero.
  AdamW(const Arena& params, const AdamWOptions& options, std::vector<bool> decay);

  static std::vector<bool> decay_all(const Arena& params);
  static std::vector<bool> decay_matrices(const Arena& params);  // rank >= 2 only

  // One update of every tensor of `params` (written in place) from `grads` (same table).
  void step(const Arena& params, const Arena& grads, double lr);
  int64_t steps_taken() const { return t_; }

 private:
  AdamWOptions o_;
  std::vector<bool> decay_;
  std::vector<size_t> offset_;  // start of tensor i in m_ and v_
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

// Global L2 norm of all gradients (accumulated in double, in table order, so the same on every
// thread count), and clip_grad_norm_: scales them by max_norm / norm when norm > max_norm.
double grad_norm(const Arena& grads);
double clip_grad_norm(const Arena& grads, double max_norm);

}  // namespace causeway::train
