// Full-vocabulary metrics (prob, logprob, kl, accuracy, rank) of logits rows split over a
// tensor-parallel replica's vocabulary blocks (DESIGN.md section 5): each rank reduces its own
// block, and one max and one sum over the group per quantity give what a whole row would, so
// no rank gathers a whole row. Every rank of the group calls it with the same rows.
#pragma once

#include <vector>

#include "parallel/collectives.h"
#include "patching/metric.h"

namespace causeway {

// `local` (rows, vocab_rows): logits of tokens [vocab_begin, vocab_begin + vocab_rows), rows
// past V padding; `targets[r]` is row r's pair (its clean_logits a whole row, for kl). out[r] =
// pair_metric(m, ...) of the whole row r. Collective over `group`.
void sharded_pair_metrics(MetricKind m, const std::vector<const PairTargets*>& targets,
                          const float* local, int vocab_begin, int vocab_rows, int V,
                          const Collectives& group, double* out);

}  // namespace causeway
