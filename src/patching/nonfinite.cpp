#include "patching/nonfinite.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/finite.h"
#include "patching/sweep_positions.h"

namespace causeway {

const char* const kAllowNonfiniteHint =
    "NaN and inf are errors, not results; to keep going and count them in the file, set "
    "[output] allow_nonfinite = true or pass --allow-nonfinite";

bool is_padding_cell(const PatchCell& cell, const PromptPair& pair) {
  return cell.pos >= static_cast<int>(pair.clean.size());
}

std::string pair_label(const PairDataset& data, int pair) {
  const PromptPair& p = data.pairs[pair];
  return data.source + ": pair " + std::to_string(pair) + (p.line ? " (line " + std::to_string(p.line) + ")" : "");
}

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

bool finite_baselines(const SweepBaselines& b, int p) {
  return std::isfinite(b.clean_ld[p]) && std::isfinite(b.corrupted_ld[p]) &&
         std::isfinite(b.clean_metric[p]) && std::isfinite(b.corrupted_metric[p]);
}

[[noreturn]] void fail(const BlockResults& r, int pair, const std::string& what) {
  throw InputError(pair_label(r.data, pair), "experiment '" + r.experiment + "'", what);
}

}  // namespace

void require_finite(const BlockResults& r, const std::function<std::string(int64_t)>& cell_name) {
  const SweepBaselines& b = r.baselines;
  const std::string metric = metric_name(r.metric);
  for (int p = r.pair_begin; p < r.pair_end; ++p) {
    const std::pair<const char*, double> lds[] = {{"clean", b.clean_ld[p]}, {"corrupted", b.corrupted_ld[p]}};
    for (const auto& [run, v] : lds)
      if (!std::isfinite(v))
        fail(r, p, std::string("the ") + run + " run's logit difference is " + nonfinite_name(v) + "; " +
                       kAllowNonfiniteHint);
    if (r.metric == MetricKind::Normalized && b.clean_ld[p] == b.corrupted_ld[p])
      fail(r, p, "the clean and corrupted logit differences are equal (" + number(b.clean_ld[p]) +
                     "), so metric \"normalized\" divides by zero (clean - corrupted = 0); are the "
                     "clean and corrupted prompts the same?");
    const std::pair<const char*, double> ms[] = {{"clean", b.clean_metric[p]}, {"corrupted", b.corrupted_metric[p]}};
    for (const auto& [run, v] : ms)
      if (!std::isfinite(v))
        fail(r, p, std::string("the ") + run + " baseline of metric \"" + metric + "\" is " + nonfinite_name(v) +
                       "; " + kAllowNonfiniteHint);
  }
  const int64_t n_cells = r.cell_end - r.cell_begin;
  const PairPositions positions(r.grid, r.data);
  for (int p = r.pair_begin; p < r.pair_end; ++p)
    for (int64_t c = r.cell_begin; c < r.cell_end; ++c) {
      const float v = r.effect[(p - r.pair_begin) * n_cells + (c - r.cell_begin)];
      if (!std::isfinite(v) && !is_padding_cell(positions.in_pair(r.grid.cells[c], p), r.data.pairs[p]))
        fail(r, p, "metric \"" + metric + "\" of cell " + cell_name(c) + " is " + nonfinite_name(v) + "; " +
                       kAllowNonfiniteHint);
    }
}

void refuse_identical_prompts(const PairDataset& data, const std::string& experiment) {
  for (size_t p = 0; p < data.pairs.size(); ++p)
    if (data.pairs[p].clean == data.pairs[p].corrupted)
      throw InputError(pair_label(data, static_cast<int>(p)), "experiment '" + experiment + "'",
                       "the clean and corrupted prompts are the same tokens, so metric \"normalized\" "
                       "would divide by zero (clean - corrupted logit difference = 0); give the pair "
                       "a different corrupted prompt, or use metric = \"logit_diff\"");
}

NonfiniteCount count_nonfinite(const PairDataset& data, const SweepGrid& grid,
                               const std::vector<float>& effect, const SweepBaselines& b) {
  NonfiniteCount n;
  const int64_t n_cells = static_cast<int64_t>(grid.cells.size());
  const PairPositions positions(grid, data);
  for (size_t p = 0; p < data.pairs.size(); ++p) {
    if (!finite_baselines(b, static_cast<int>(p))) ++n.baselines;
    for (int64_t c = 0; c < n_cells; ++c)
      if (!std::isfinite(effect[p * n_cells + c]) &&
          !is_padding_cell(positions.in_pair(grid.cells[c], static_cast<int>(p)), data.pairs[p]))
        ++n.cells;
  }
  return n;
}

}  // namespace causeway
