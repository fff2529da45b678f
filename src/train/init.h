// GPT-2's initialization (Radford et al. 2019; Hugging Face GPT2PreTrainedModel._init_weights):
// weights and embeddings ~ N(0, 0.02), biases 0, layernorm gains 1, and the two projections
// that write into the residual stream (attn.c_proj, mlp.c_proj) ~ N(0, 0.02 / sqrt(2 * L)).
// Drawn in table order from one seeded stream (rng.h), so a seed gives the same model anywhere.
// `std` replaces 0.02: the organisms use TransformerLens' 0.8 / sqrt(d_model) (0.1 for
// d_model 64), whose larger attention logits at the start let induction and IOI circuits form
// within ~2000 steps, where 0.02 leaves the model on a plateau for many thousands.
#pragma once

#include <cstdint>

#include "model/model_weights.h"

namespace causeway::train {

void init_gpt2(ModelWeights& w, const ModelConfig& cfg, uint64_t seed, double std = 0.02);

}  // namespace causeway::train
