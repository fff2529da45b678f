// The logit difference of each row and its gradient with respect to ln_final's output (what
// TransformerModel::backward takes), for methods that backpropagate the metric.
#pragma once

#include <vector>

#include "data/prompt_pairs.h"
#include "model/transformer_model.h"

namespace causeway {

// Each row's logit difference from its logits (B, V) at the read position.
std::vector<double> logit_diffs(const TransformerModel& model,
                                const std::vector<const PromptPair*>& pairs, const float* logits);

// logits (B, V): each row's logits at its read position, pairs[b] its answers and wrongs.
// Writes each row's logit difference to ld (B) and, into seed (B, T, C), zero except at
// read[b]: the mean W_U row of the answers minus that of the wrongs, each times the final
// soft-cap's slope at its logit. W_U rows are widened from bf16 / f16.
void logit_diff_gradient(const TransformerModel& model,
                         const std::vector<const PromptPair*>& pairs, const float* logits,
                         const std::vector<int>& read, int T, std::vector<double>& ld,
                         std::vector<float>& seed);

}  // namespace causeway
