// Edge attribution patching: every edge's patching effect to first order,
//   score(s -> r) = (source_s - target_s) . d(metric)/d(input of r),
// summed over positions, from recording forwards of both runs and backward passes of the
// target (EAP: one; EAP-IG: one per integration step). The receiver gradients are each
// reader's own part of d(resid) (TransformerModel::receiver_input_gradients), so one backward
// scores all edges.
//
// EAP-IG averages the gradient over k points alpha_j = j / k, j = 0..k-1 (a left Riemann sum,
// so k = 1 is EAP) between the target and source runs:
//   inputs:      the target run with its embeddings (hook_embed) moved alpha_j toward the
//                source's;
//   activations: for each sender layer l (Resid Start, or layer l's heads and MLP), the target
//                run with that layer's outputs (hook_embed, or hook_result and hook_mlp_out)
//                moved alpha_j toward the source's and everything after recomputed; edges
//                from layer l's senders take their gradients from those runs.
// Metric: logit difference at each pair's read position.
#pragma once

#include "data/prompt_pairs.h"
#include "patching/edge_forward.h"
#include "patching/sweep.h"

namespace causeway {

enum class EdgeMethod { Eap, EapIgInputs, EapIgActivations };

struct EdgeAttributionRequest {
  EdgeMethod method = EdgeMethod::Eap;
  int steps = 5;                           // k of EAP-IG
  Direction direction = Direction::Noising;  // noising: target clean, source corrupted
};

// Scores of pairs [begin, end) into scores (end - begin, S, R), zero where there is no edge.
// Also each pair's target and source logit differences when the vectors are given.
void edge_attribution(EdgeRunner& runner, const PairDataset& data, int begin, int end,
                      const EdgeAttributionRequest& request, float* scores,
                      std::vector<double>* target_ld = nullptr,
                      std::vector<double>* source_ld = nullptr);

}  // namespace causeway
