// TransformerModel's backward buffers (private to the model's sources).
#pragma once

#include <cstdint>
#include <vector>

#include "model/transformer_model.h"

namespace causeway {

// Gradient buffers sized for the largest batch seen, reused across calls. Shape letters as in
// ops.h; Q = NH * HS (may differ from C), KV = kv heads * HS, wide = max(C, Q).
struct TransformerModel::BackwardWorkspace {
  std::vector<float> d_resid,  // (N, C) gradient of the residual stream at the current point
      d_branch,                // (N, C) the attention branch's output gradient (parallel / post-norm)
      raw,                     // (N, C) a branch output before its post-norm, recomputed
      d_ln,                    // (N, C) gradient of a norm's output
      ln_out,                  // (N, C) a norm's output, recomputed for weight gradients
      d_hook,                  // (N, wide) a norm hook's gradient, or a linear's partial input grad
      d_z, d_q, d_q2,          // (N, Q); d_q2: the q-norm input gradient
      d_k, d_v, d_k2,          // (N, KV)
      d_pattern, d_scores,     // (B, NH, T, T)
      d_mlp, d_mlp2, d_up, mlp_post,  // (N, M)
      mean, rstd, scale,       // (N * NH) norm statistics (per head for q/k norms)
      logits,                  // (N, V) training only
      kv_gathered;             // (tp, N, KV) every rank's gradient of a replicated kv head
  std::vector<int32_t> positions;  // (N) each row's position, for the rotary backward
  static void fit(std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  }
};

}  // namespace causeway
