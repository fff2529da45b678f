#include "parallel/work_plan.h"

#include <algorithm>

#include "core/error.h"

namespace causeway {

WorkPlan WorkPlan::build(const std::vector<ExperimentShape>& experiments, int pairs_per_item,
                         int lead_per_item) {
  if (pairs_per_item < 1 || lead_per_item < 1)
    throw std::logic_error("work items need at least one pair and one leading index");
  WorkPlan plan;
  for (size_t e = 0; e < experiments.size(); ++e) {
    const ExperimentShape& x = experiments[e];
    const int64_t per_lead = x.lead > 0 ? x.cells / x.lead : 0;
    plan.first_.push_back(plan.size());
    int index = 0;
    for (int p = 0; p < x.n_pairs; p += pairs_per_item)
      for (int l = 0, step = x.lead_per_item > 0 ? x.lead_per_item : lead_per_item; l < x.lead;
           l += step) {
        WorkItem it;
        it.experiment = static_cast<int>(e);
        it.index = index++;
        it.pair_begin = p;
        it.pair_end = std::min(x.n_pairs, p + pairs_per_item);
        it.lead_begin = l;
        it.lead_end = std::min(x.lead, l + step);
        it.cell_begin = it.lead_begin * per_lead;
        it.cell_end = it.lead_end * per_lead;
        plan.items_.push_back(it);
      }
    plan.counts_.push_back(index);
  }
  return plan;
}

}  // namespace causeway
