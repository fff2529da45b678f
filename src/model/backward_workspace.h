// TransformerModel's backward buffers (private to the model's sources).
#pragma once

#include <cstdint>
#include <vector>

#include "model/transformer_model.h"

namespace causeway {

// Gradient buffers sized for the largest batch seen, reused across calls.
struct TransformerModel::BackwardWorkspace {
  std::vector<float> d_resid, d_tmp, d_ln, d_z, d_q, d_k, d_v, d_pattern, d_scores, d_mlp,
      d_mlp2, ln_out, mlp_post, mean, rstd, logits;
  static void fit(std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  }
};

}  // namespace causeway
