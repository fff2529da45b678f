// Self-repair, measured (primer: "Confounds: self-repair and compensation"; Rushing and Nanda;
// McGrath et al. on LayerNorm). For each pair and component cell of an ablation or patching
// sweep over heads (hook_z), MLP outputs or neurons:
//   total        the change of the logit difference when the component is ablated or patched,
//                everything downstream recomputed (the sweep's own forward);
//   direct       the change its own output carries straight to the logits through the final
//                norm with the scale frozen at the unpatched run's (cached activations);
//   ln_share     the final norm's reaction to the component's own change: the unpatched
//                final residual plus that change, read through the final norm at its own
//                (recomputed) scale, minus the same read at the frozen scale. direct +
//                ln_share is path patching into the logits with everything else frozen;
//   self_repair  total - direct: what the rest of the model gave back. Effects are changes
//                (patched - unpatched) here, as in every causeway dataset, so this is Rushing
//                and Nanda's DE - TE (effects as drops): positive where a drop was partly
//                undone. It splits into ln_share (the final norm's part) and
//   repair_rest  = self_repair - ln_share: what downstream components gave back.
// For the last layer's MLP only the final norm lies downstream: total = direct + ln_share and
// repair_rest = 0.
// The grid is the component sweep's with a last axis "quantity" in this order. Direct effects
// are before the final soft-cap (Gemma 2); the total is of the capped logits, as metrics are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "patching/readout.h"
#include "patching/sweep.h"

namespace causeway {

const std::vector<std::string>& self_repair_quantities();

// InputError naming `file` and the experiment's `sweep` field unless the sweep is one of
// attn_head_out, mlp_out or mlp_neuron (the components with an output of their own).
void require_self_repair_sweep(const SweepSpec& spec, const std::string& file, const std::string& field);

SweepGrid self_repair_grid(const SweepSpec& spec, const ModelConfig& cfg, const PairDataset& data,
                           const std::string& file = "experiment",
                           const std::string& field = "positions");

class SelfRepairRunner final : public SweepEngine {
 public:
  SelfRepairRunner(TransformerModel& model, const PairDataset& data, SweepRequest request);
  ~SelfRepairRunner() override;
  const SweepGrid& grid() const override { return grid_; }
  // Cells come in whole components (multiples of the quantity axis), as work items split the
  // grid on its leading axis.
  void run_block(int pair_begin, int pair_end, int cell_begin, int cell_end, float* effect,
                 SweepBaselines& baselines, const SweepProgress& progress = nullptr) override;

 private:
  struct Block;
  void prepare(int pair_begin, int pair_end);
  // The source's value of the component of `cell` (pair numbering, local) at t, or nullptr
  // for zero ablation.
  const float* source_value(const PatchCell& cell, int pair, int sample, int t) const;

  TransformerModel& model_;
  const PairDataset& data_;
  SweepRequest req_;
  SweepRunner total_;
  SweepGrid grid_;
  PairPositions positions_;
  std::unique_ptr<Block> block_;
};

}  // namespace causeway
