// Reading the logit difference straight off the residual stream (primer: direct logit
// attribution, logit lens). The final norm is linear once its scale is fixed, so a vector x
// added to the residual at position t moves the (pre-soft-cap) logit difference by
// x . v / s_t, with v = ln_final weight * (mean W_U[answers] - mean W_U[wrongs]) (centred over
// d_model for LayerNorm, whose mean subtraction removes any constant) and s_t the run's
// ln_final.hook_scale. Head and neuron outputs are pulled back through W_O / W_out (and, with
// Gemma 2's post-norms, through the block's post-norm with its scale frozen too), so a head's
// term is z_h . (W_O[h] v) without forming its d_model vector.
#pragma once

#include <vector>

#include "data/prompt_pairs.h"
#include "model/transformer_model.h"
#include "patching/sweep_grid.h"

namespace causeway {

// One pair's answer direction through the final norm's weight.
struct AnswerDirection {
  std::vector<float> v;  // (C)
  double bias = 0.0;     // ln_final bias . (mean W_U[answers] - mean W_U[wrongs]); 0 for RMSNorm
};
// Whole on every rank of a tensor-parallel replica (the vocabulary rows are summed over it).
AnswerDirection answer_direction(const TransformerModel& model, const PromptPair& pair);

// ln_final's scale of a residual vector x (C), recomputed as the model's final norm would:
// sqrt(var(x) + eps) for LayerNorm (biased variance), sqrt(mean(x^2) + eps) for RMSNorm.
double final_norm_scale(const ModelConfig& cfg, const float* x);

// One forward of a batch of prompts (one per pair) caching `kinds` at every layer plus the
// norm scales the direct paths freeze, with every row's answer direction and pull-backs.
class RunReadout {
 public:
  // `pairs[r]` gives row r's answer tokens; read_pos[r] the position its metric is read at.
  void build(TransformerModel& model, const TokenBatch& batch, const std::vector<int>& read_pos,
             const std::vector<const PromptPair*>& pairs, const std::vector<HookKind>& kinds);

  int T() const { return batch_.T; }
  const TokenBatch& batch() const { return batch_; }
  // Row `run` of hook point `p` (local shapes under tensor parallelism), all T positions.
  const float* row(HookPoint p, int run) const;
  // The run's logit difference at its read position (after any soft-cap, as metrics see it).
  double logit_diff(int run) const { return ld_[run]; }
  const AnswerDirection& direction(int run) const { return dirs_[run]; }
  double final_scale(int run, int t) const;

  // The direct logit difference of the cell's component at position t of row `run`, frozen at
  // this run's scales. `x` is the component's value at t: the hook's (heads, width) slice for
  // t of a head cell (hook_z: one head's d_head values), one unit for a neuron cell
  // (hook_post), a d_model vector otherwise. `cell` is in this rank's local numbering.
  double direct(const PatchCell& cell, int run, int t, const float* x) const;
  // The d_model vector that value `x` (as for direct) adds to the residual stream at t: through
  // W_O's head rows or W_out's unit row, then the block's post-norm frozen at this run's scale.
  // direct(...) == residual_term(...) . v / s. Written to out (C).
  void residual_term(const PatchCell& cell, int run, int t, const float* x, float* out) const;

 private:
  const TransformerModel* model_ = nullptr;
  TokenBatch batch_;
  HookPlan plan_{0};
  std::vector<double> ld_;
  std::vector<AnswerDirection> dirs_;
  // Per (run, layer): W_O^T u (local heads x d_head) and W_out^T u (local units), u = v, or
  // v times the block's post-norm weight.
  std::vector<std::vector<float>> head_pull_, unit_pull_;
};

// The slice of a cached hook row (all T positions) that RunReadout::direct reads for the cell
// at position t (local numbering).
const float* component_at(const PatchCell& cell, const float* row, const ModelConfig& local, int t);

}  // namespace causeway
