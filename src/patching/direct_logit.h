// Direct logit attribution (primer: "direct logit attribution"; TransformerLens
// cache.stack_head_results / decompose_resid / stack_neuron_results with apply_ln=True,
// projected on the answer direction): each head's (z_h @ W_O[h]), MLP's, neuron's
// (post * W_out row) or embedding's contribution to the logit difference through the final
// norm with its scale frozen at the run's own, per pair and position, from one forward.
// Values are before the final logit soft-cap (Gemma 2), which is not linear; through Gemma 2's
// post-norms a head or neuron term also freezes the block's post-norm scale, so the terms of
// a layer sum to its attn_out / mlp_out term. sweep = "components" (embed, pos_embed, each
// layer's attn_out and mlp_out, and the final norm's bias) sums to the pre-cap logit difference.
#pragma once

#include <memory>
#include <string>

#include "patching/readout_runner.h"

namespace causeway {

SweepGrid direct_logit_grid(const ReadoutRequest& r, const ModelConfig& cfg, const PairDataset& data,
                            const std::string& file = "experiment", const std::string& field = "positions");

std::unique_ptr<SweepEngine> make_direct_logit(TransformerModel& model, const PairDataset& data,
                                               const ReadoutRequest& r);

}  // namespace causeway
