// Induction prompt pairs for the trained induction organism (models/induction-2l): clean
// [BOS] A A[0..k] with A n random symbols, whose answer A[k+1] only induction predicts;
// corrupted with the first copy replaced by other symbols, so nothing is there to copy.
#pragma once

#include <algorithm>
#include <random>
#include <vector>

#include "data/prompt_pairs.h"
#include "train/induction_task.h"

namespace causeway::fixtures {

inline PairDataset induction_pairs(int count, int n, int k, unsigned seed) {
  const train::InductionTask task(train::InductionOptions{});
  const std::vector<int32_t>& symbols = task.symbol_ids();
  std::mt19937 rng(seed);
  PairDataset data;
  data.source = "induction pairs";
  for (int i = 0; i < count; ++i) {
    std::vector<int32_t> pool = symbols;
    std::shuffle(pool.begin(), pool.end(), rng);
    PromptPair p;
    p.clean.push_back(task.bos());
    p.clean.insert(p.clean.end(), pool.begin(), pool.begin() + n);
    p.clean.insert(p.clean.end(), pool.begin(), pool.begin() + k + 1);
    p.corrupted = p.clean;
    std::copy(pool.begin() + n, pool.begin() + 2 * n, p.corrupted.begin() + 1);
    p.answers = {pool[k + 1]};
    p.wrongs = {pool[2 * n + 1]};
    p.line = i + 1;
    data.pairs.push_back(p);
  }
  return data;
}

}  // namespace causeway::fixtures
