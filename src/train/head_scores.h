// Attention-pattern scores of every head on repeated random sequences (Olsson et al. 2022;
// TransformerLens' induction-head detection): each sequence is [BOS] A A with A = n random
// distinct tokens (positions 1..n and n+1..2n).
//   previous-token score: mean attention of position t to t - 1, over t = 1..2n;
//   induction score: mean attention of position t of the second copy to the token after the
//   current token's previous occurrence, t - n + 1, over t = n+1..2n.
// A score near 1 means the head attends there almost entirely. Also the model's accuracy on
// the second copy (where the next token is predictable).
#pragma once

#include <cstdint>
#include <vector>

#include "model/transformer_model.h"

namespace causeway::train {

struct HeadScores {
  int n_layer = 0, n_head = 0;
  std::vector<double> prev_token;  // (L, NH)
  std::vector<double> induction;   // (L, NH)
  double repeat_accuracy = 0.0;    // argmax == next token at positions n+1..2n-1
  double prev(int L, int h) const { return prev_token[L * n_head + h]; }
  double ind(int L, int h) const { return induction[L * n_head + h]; }
  // The (layer, head) with the highest score.
  std::pair<int, int> best_prev() const;
  std::pair<int, int> best_induction() const;
};

// `sequences` sequences of [BOS] A A, A drawn without replacement from `symbols` by `seed`.
HeadScores head_scores(TransformerModel& model, int32_t bos, const std::vector<int32_t>& symbols,
                       int n, int sequences, uint64_t seed);

}  // namespace causeway::train
