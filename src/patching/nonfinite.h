// NaN and inf in results are errors, not results: the first one of a work item stops the job,
// naming the pair and the experiment, unless the user opted in to keep going; then the file
// counts them. Positions past a shorter prompt are NaN by design (padding) and never count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/prompt_pairs.h"
#include "patching/metric.h"
#include "patching/sweep.h"
#include "patching/sweep_grid.h"

namespace causeway {

// A cell (in the pair's own positions, see PairPositions) past the pair's prompt: NaN by
// design, not a result.
bool is_padding_cell(const PatchCell& cell, const PromptPair& pair);

// "pairs.jsonl: pair 3 (line 4)" (the line only where the pair came from a file).
std::string pair_label(const PairDataset& data, int pair);

// Results of one work item: `effect` is (pair_end - pair_begin, cell_end - cell_begin),
// `baselines` holds every pair of the data set.
struct BlockResults {
  const std::string& experiment;
  MetricKind metric;
  const PairDataset& data;
  const SweepGrid& grid;
  int pair_begin, pair_end;
  int64_t cell_begin, cell_end;
  const float* effect;
  const SweepBaselines& baselines;
};

// InputError naming the pair, the experiment and the value for the first non-finite baseline
// or cell of the block (padding aside); for metric "normalized" equal clean and corrupted
// logit differences are named as the division by zero they are. `cell_name` labels a cell.
void require_finite(const BlockResults& r, const std::function<std::string(int64_t)>& cell_name);

// The normalized metric divides by (clean - corrupted) logit difference, which is 0 for a pair
// whose clean and corrupted prompts are the same tokens: refused before any work, naming it.
void refuse_identical_prompts(const PairDataset& data, const std::string& experiment);

struct NonfiniteCount {
  int64_t cells = 0;      // (pair, cell) values, padding aside
  int64_t baselines = 0;  // pairs with a non-finite baseline
};
// Over a whole experiment: `effect` is (pairs, cells) as the file holds it.
NonfiniteCount count_nonfinite(const PairDataset& data, const SweepGrid& grid,
                               const std::vector<float>& effect, const SweepBaselines& b);

// What every message about non-finite results says the user can do.
extern const char* const kAllowNonfiniteHint;

}  // namespace causeway
