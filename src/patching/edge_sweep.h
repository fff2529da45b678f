// Edge methods as sweeps the batch job drives like any other (work items of pair blocks x
// slabs of the leading axis, done bits, resume, ranks): a grid over the circuit graph.
//   kind "edges": grid [sender, receiver] (axis labels are the graph's names); each cell holds
//     the change of the metric (logit difference) when that edge is patched, measured
//     (edge_patching, path_patching) or estimated (eap, eap_ig_inputs, eap_ig_activations).
//     Cells that are not edges (the sender does not come before the receiver) hold 0.
//   kind "path_patching": grid [layer, head] of sender heads, each cell the metric of the run
//     with that head's paths into `receivers` patched (path_patching.h).
// Estimates (EAP, EAP-IG) come for a pair block's whole grid at once, computed once and served
// to every slab of it; measured edges (edge_patching, path_patching) are computed per slab of
// senders, so work items can split the edges too (edge_sweep_lead_per_item).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "patching/circuit_graph.h"
#include "patching/edge_attribution.h"
#include "patching/path_patching.h"
#include "patching/sweep.h"

namespace causeway {

enum class EdgeSweepMethod { EdgePatching, PathPatching, Eap, EapIgInputs, EapIgActivations };

struct EdgeSweepRequest {
  bool heads_grid = false;  // kind "path_patching": [layer, head] for `receivers`
  EdgeSweepMethod method = EdgeSweepMethod::Eap;
  int steps = 5;            // EAP-IG
  Direction direction = Direction::Noising;
  PathFreeze freeze = PathFreeze::Heads;
  std::vector<int> receivers;  // graph receiver indices (heads grid)
  int max_rows = 64;           // rows of one edge-patched batch (edge_patching)
};

// Parses "eap", "eap_ig_inputs", "eap_ig_activations", "edge_patching", "path_patching";
// InputError naming source and field otherwise.
EdgeSweepMethod parse_edge_method(const std::string& name, const std::string& source,
                                  const std::string& field);
std::string edge_method_name(EdgeSweepMethod m);

// The grid of a request on a model: [sender, receiver] with the graph's names, or [layer, head].
SweepGrid edge_sweep_grid(const EdgeSweepRequest& request, const ModelConfig& cfg);
// Senders (or layers) per work item: all of them for estimates, a slab for measured edges.
int edge_sweep_lead_per_item(const EdgeSweepRequest& request, const ModelConfig& cfg);

class EdgeSweep final : public SweepEngine {
 public:
  EdgeSweep(TransformerModel& model, const PairDataset& data, EdgeSweepRequest request);
  ~EdgeSweep() override;

  const SweepGrid& grid() const override { return grid_; }
  const CircuitGraph& graph() const { return graph_; }
  void run_block(int pair_begin, int pair_end, int cell_begin, int cell_end, float* effect,
                 SweepBaselines& baselines, const SweepProgress& progress = nullptr) override;

 private:
  // Whether cells are measured one edge at a time (edge_patching, path_patching over edges):
  // then an item computes only its slab of senders.
  bool measured_per_edge() const;
  void compute(int pair_begin, int pair_end, int s_begin, int s_end,
               const SweepProgress& progress);
  void edge_patching(int pair_begin, int pair_end, int s_begin, int s_end,
                     const SweepProgress& progress);

  TransformerModel& model_;
  const PairDataset& data_;
  EdgeSweepRequest req_;
  CircuitGraph graph_;
  SweepGrid grid_;
  std::unique_ptr<EdgeRunner> runner_;
  int block_begin_ = -1, block_end_ = -1;
  std::vector<float> block_;            // (pairs of the block, cells)
  std::vector<double> target_ld_, source_ld_;
};

}  // namespace causeway
