// ACDC (Conmy et al. 2023): automatic circuit discovery by pruning edges. Receivers are visited
// from the logits backwards (reverse forward order), and each receiver's incoming edges from
// the latest sender to the earliest; an edge is removed (ablated: its receiver reads the
// ablation's output of the sender) when the metric grows by less than the threshold over the
// current circuit. Metric: mean over pairs of KL(clean || circuit) at the read position, or of
// clean logit difference - circuit logit difference.
//
// Batched: all candidate edges of one receiver are tested against the same circuit in one
// batch of rows (pairs x candidates). If exactly one passes, or all that pass can be removed
// together and the metric still grows by less than the threshold, they go at once; otherwise
// that receiver's candidates are retested one at a time in ACDC's order. A receiver whose node
// has no kept outgoing edge left is cut without testing (it cannot reach the output).
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "patching/circuit_eval.h"

namespace causeway {

enum class AcdcMetric { Kl, LogitDiff };

struct AcdcRequest {
  double threshold = 0.01;
  AcdcMetric metric = AcdcMetric::Kl;
  int max_rows = 64;  // rows (pairs x candidates) of one edge-patched batch
};

struct AcdcResult {
  std::vector<std::pair<int, int>> kept;  // (sender, receiver), largest metric change first
  std::vector<double> kept_scores;        // each kept edge's metric change when tested
  std::vector<double> scores;             // (R * S, receiver-major) every tested edge's change
  double metric = 0.0;                    // the final circuit's metric
  int64_t forwards = 0;                   // edge-patched rows run
};

// progress(receivers done, receivers).
AcdcResult acdc(CircuitRuns& runs, const AcdcRequest& request,
                const std::function<void(int, int)>& progress = nullptr);

}  // namespace causeway
