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

// How far a search got, at a receiver boundary: what a stopped job writes to its file and
// --resume continues from. `next` is the receiver to visit next (receivers go from R - 1 down
// to 0; -1 when every receiver is done).
struct AcdcState {
  int next = -1;
  std::vector<float> ablated;  // (R * S, receiver-major) 1 = removed so far
  std::vector<double> scores;  // (R * S) every tested edge's change so far
  double metric = 0.0;         // the current circuit's metric
  int64_t forwards = 0;
  bool started() const { return !ablated.empty(); }
};

// progress(receivers done, receivers). `state`: empty to start afresh, or a stopped search's
// state to continue it; it is updated after every receiver, so when the search throws (a stop
// at a batch check) it holds the last receiver boundary. A continued search finds the same
// circuit as one that never stopped.
//
// An edge (s, r) is not run when removing it cannot change the output: when receiver r is
// visited every ablated edge goes into r or a later receiver, so each sender into r still
// has the target run's output; if s's ablation source equals that output at every position up
// to the read position in every pair (CircuitRuns::sender_unchanged), the cut adds exactly
// zero to r's input where it can reach the metric. Its change is 0, it goes when 0 < threshold.
// Receivers that no longer reach the output (see the top of this file) are not run either.
AcdcResult acdc(CircuitRuns& runs, const AcdcRequest& request, AcdcState& state,
                const std::function<void(int, int)>& progress = nullptr);
inline AcdcResult acdc(CircuitRuns& runs, const AcdcRequest& request,
                       const std::function<void(int, int)>& progress = nullptr) {
  AcdcState fresh;
  return acdc(runs, request, fresh, progress);
}

}  // namespace causeway
