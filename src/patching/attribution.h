// Attribution patching (AtP): every cell's patching effect estimated to first order from one
// forward of each run and one backward of the target run, (source - target) . d(metric)/d(hook),
// stored exactly like activation patching's effects so the two compare cell by cell. Two AtP*
// fixes (Kramar et al. 2024) are options: the exact softmax for query and key cells (attention
// saturation) and GradDrop (cancellation between paths). Every family works: hook shapes come
// from the hook layout table, the metric's gradient includes a final-logit soft-cap, W_U may
// be bf16 / f16, and the q/k fix remakes scores as the forward does (rot_q / rot_k, scale,
// soft-cap, sliding window, a kv head read by its group). A cell naming a head its hook lacks
// (attn_head_every's k / v rows past the key/value heads) patches nothing: estimate 0.
//
// Under tensor parallelism (a model loaded over a tp group) every rank of the replica calls
// run_block / run_all with the same arguments: each estimates the cells of its own heads and
// units (rank 0 those of whole hooks) and the estimates are summed over the group, so every
// rank gets the full grid, equal to one rank's within float rounding.
#pragma once

#include <memory>
#include <vector>

#include "patching/sweep.h"

namespace causeway {

struct AttributionOptions {
  bool qk_fix = false;     // q/k cells: recompute the attention pattern, linearize from there
  bool grad_drop = false;  // magnitude: mean over layers l of |estimate with block l dropped|
};

class AttributionRunner final : public SweepEngine {
 public:
  // Only activation sources (denoising / noising) and logit-difference metrics have a
  // gradient here; anything else is an InputError naming the experiment's key.
  // `also`: further sweeps served by the same forwards and backward (run_all), e.g. every
  // head and every neuron from one pass.
  AttributionRunner(TransformerModel& model, const PairDataset& data, SweepRequest request,
                    AttributionOptions options, const std::vector<SweepSpec>& also = {});
  ~AttributionRunner() override;

  const SweepGrid& grid() const override { return grid_; }
  void run_block(int pair_begin, int pair_end, int cell_begin, int cell_end, float* effect,
                 SweepBaselines& baselines, const SweepProgress& progress = nullptr) override;
  SweepResult run();
  // The request's sweep, then each of `also`, sharing every pair block's passes.
  std::vector<SweepResult> run_all();

 private:
  struct Block;
  void prepare(Block& blk, int pair_begin, int pair_end);
  void estimate(const SweepGrid& grid, int pair_begin, int pair_end, int cell_begin, int cell_end,
                float* effect, SweepBaselines& baselines);

  TransformerModel& model_;
  const PairDataset& data_;
  SweepRequest req_;
  AttributionOptions opt_;
  SweepGrid grid_;
  std::vector<SweepGrid> also_;
  std::vector<PairPositions> positions_;  // of grid_, then of each of also_
  std::vector<HookKind> kinds_;
  std::unique_ptr<Block> block_;
};

}  // namespace causeway
