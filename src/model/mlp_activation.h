// The MLP activation a config names ("gelu" = erf, "silu", otherwise GPT-2's tanh "gelu_new";
// gated MLPs: SwiGLU for "silu", GeGLU otherwise), as backend calls, forward and backward side
// by side so the forward and the backward pass read the config the same way.
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "model/model_config.h"

namespace causeway {

inline cpu::GatedActivation gated_activation(const ModelConfig& cfg) {
  return cfg.activation_function == "silu" ? cpu::GatedActivation::kSilu
                                           : cpu::GatedActivation::kGeluTanh;
}

// out = act(pre), elementwise; out may alias pre.
inline void mlp_activation_forward(const Backend& be, const ModelConfig& cfg, float* out,
                                   const float* pre, int64_t n) {
  if (cfg.activation_function == "gelu") be.gelu_erf_forward(out, pre, n);
  else if (cfg.activation_function == "silu") be.silu_forward(out, pre, n);
  else be.gelu_forward(out, pre, n);
}

// d_pre = d_post * act'(pre).
inline void mlp_activation_backward(const Backend& be, const ModelConfig& cfg, float* d_pre,
                                    const float* d_post, const float* pre, int64_t n) {
  if (cfg.activation_function == "gelu") be.gelu_erf_backward(d_pre, d_post, pre, n);
  else if (cfg.activation_function == "silu") be.silu_backward(d_pre, d_post, pre, n);
  else be.gelu_backward(d_pre, d_post, pre, n);
}

}  // namespace causeway
