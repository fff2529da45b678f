// Path patching (Wang et al. 2022): a sender's output from the source run reaches chosen
// receivers only along paths through what is not frozen, everything else held at the target
// run. Three forwards per sender:
//   1. target and source runs, cached;
//   2. the target tokens with every head's hook_z frozen to the target's, the sender's
//      output from the source (a head's hook_z, an MLP's hook_mlp_out, Resid Start's
//      blocks.0.hook_resid_pre), recording each receiver's value: a query / key / value
//      head's hook_q / hook_k / hook_v slice, an MLP's hook_mlp_in, Resid End's last
//      hook_resid_post. Freeze "heads" recomputes the MLPs (Wang et al.); freeze "all" also
//      holds every MLP's output at the target's, leaving only direct paths, so it equals edge
//      patching of {sender -> r : r in receivers}.
//   3. the target tokens with just the receivers' recorded values patched in; the metric
//      (logit difference) per pair.
#pragma once

#include <vector>

#include "patching/edge_forward.h"
#include "patching/sweep.h"

namespace causeway {

enum class PathFreeze { Heads, All };

struct PathPatchRequest {
  std::vector<int> receivers;                // graph receiver indices, patched together
  PathFreeze freeze = PathFreeze::Heads;
  Direction direction = Direction::Noising;  // noising: target clean, source corrupted
};

// out (P, n_layer, n_head): the metric with each head as the sender, for pairs [begin, end).
// The target and source runs' metrics go to target_ld / source_ld when given.
void path_patching_heads(TransformerModel& model, const CircuitGraph& graph,
                         const PairDataset& data, int begin, int end,
                         const PathPatchRequest& request, float* out,
                         std::vector<double>* target_ld = nullptr,
                         std::vector<double>* source_ld = nullptr);

// out (P, S, R): the metric for every sender in [s_begin, s_end) (-1: all) and every receiver
// on its own (receivers ignored in the request); other cells are left alone, non-edges zero.
void path_patching_edges(TransformerModel& model, const CircuitGraph& graph,
                         const PairDataset& data, int begin, int end,
                         const PathPatchRequest& request, float* out,
                         std::vector<double>* target_ld = nullptr,
                         std::vector<double>* source_ld = nullptr, int s_begin = 0,
                         int s_end = -1);

}  // namespace causeway
