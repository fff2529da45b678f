// The work of a job as WorkItems with fixed places in the result file: an experiment's
// (pair x cell) grid cut into blocks of pairs x slabs of the grid's leading axis, so that
// each item writes one regular hyperslab of /experiments/<name>/effect.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace causeway {

struct WorkItem {
  int experiment = 0;    // index into the job's experiments; -1 for activation caching
  int index = 0;         // within the experiment: its bit in /experiments/<name>/done
  int pair_begin = 0, pair_end = 0;
  int lead_begin = 0, lead_end = 0;  // range of the grid's leading axis
  int64_t cell_begin = 0, cell_end = 0;  // the same range as flat cell indices
};

struct ExperimentShape {
  std::string name;
  int n_pairs = 0;
  int lead = 1;            // size of the grid's leading axis
  int64_t cells = 1;       // all cells of the grid
  int lead_per_item = 0;   // slab height of this experiment's items; 0: the plan's
};

class WorkPlan {
 public:
  // Items of every experiment, experiment by experiment, pair block by pair block, then
  // leading-axis slab; consecutive items share their pair block, which a rank's sweep
  // reuses (baselines are computed once per block, not per item).
  static WorkPlan build(const std::vector<ExperimentShape>& experiments, int pairs_per_item,
                        int lead_per_item);

  const std::vector<WorkItem>& items() const { return items_; }
  int64_t size() const { return static_cast<int64_t>(items_.size()); }
  // Items of experiment `e` (its done bitmap's length).
  int items_of(int experiment) const { return counts_[experiment]; }
  // Global index of item `index` of experiment `e`.
  int64_t global_index(int experiment, int index) const { return first_[experiment] + index; }

 private:
  std::vector<WorkItem> items_;
  std::vector<int> counts_;
  std::vector<int64_t> first_;
};

}  // namespace causeway
