// The observational kinds (direct_logit, logit_lens) as work items: one forward per pair block
// of the run read (clean, or corrupted), one of the other run for the baselines, then every
// cell read off the cached activations with no further forwards. What a kind reads per cell is
// its CellReader; grids, blocks, padding and tensor-parallel sums are shared here.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "patching/readout.h"
#include "patching/sweep.h"

namespace causeway {

// Which observational experiment, as the config gives it.
struct ReadoutRequest {
  std::string kind;         // direct_logit | logit_lens
  SweepSpec spec;           // direct_logit: attn_head_out | mlp_out | mlp_neuron; positions
  bool components = false;  // direct_logit sweep = "components": embed, pos_embed, every
                            // layer's attn_out and mlp_out, and the final norm's bias
  bool corrupted = false;   // read the corrupted run (default: the clean one)
  int top_k = 0;            // logit_lens: also the k highest-logit tokens of every cell
  int pairs_per_block = 32;
};

// One cell's value at position t of row `run` of the readout; `cell` in local numbering, `x`
// its component's value at t (component_at).
using CellReader =
    std::function<double(const RunReadout&, const PatchCell& cell, int run, int t, const float* x)>;

// The hook kinds the cells read (what the forward caches).
std::vector<HookKind> kinds_of(const SweepGrid& grid);

// `lead` as the first axis over the position axes of resid_pre's grid for `spec` (pos or
// named, or none): one cell per (lead cell, position).
SweepGrid over_positions(const GridAxis& lead, const std::vector<PatchCell>& lead_cells,
                         const SweepSpec& spec, const ModelConfig& cfg, const PairDataset& data,
                         const std::string& file, const std::string& field);

class ReadoutRunner final : public SweepEngine {
 public:
  // Under tensor parallelism each rank reads the cells it holds (heads, units; residual cells
  // on tp rank 0) and the block is summed over the replica when `sum_over_tp`; otherwise
  // every rank reads every cell (residual-stream readers).
  ReadoutRunner(TransformerModel& model, const PairDataset& data, SweepGrid grid, CellReader reader,
                bool corrupted, bool sum_over_tp);
  const SweepGrid& grid() const override { return grid_; }
  void run_block(int pair_begin, int pair_end, int cell_begin, int cell_end, float* effect,
                 SweepBaselines& baselines, const SweepProgress& progress = nullptr) override;

 private:
  void prepare(int pair_begin, int pair_end);
  TransformerModel& model_;
  const PairDataset& data_;
  SweepGrid grid_;
  PairPositions positions_;
  CellReader reader_;
  bool corrupted_ = false, sum_over_tp_ = true;
  int begin_ = -1, end_ = -1;
  std::vector<float> values_;            // (pairs of the block, cells)
  std::vector<double> read_ld_, other_ld_;
};

}  // namespace causeway
