// The logit lens (primer; TransformerLens cache.accumulated_resid(apply_ln=True) projected on
// the answer direction): the logit difference read from every layer's resid_pre and the final
// resid_post through the final norm, its scale recomputed from that residual, and the
// unembedding, per pair and position. Before the final soft-cap (Gemma 2); the last row is
// then the run's own pre-cap logit difference.
#pragma once

#include <memory>
#include <string>

#include "patching/readout_runner.h"

namespace causeway {

// Axis "resid": 0_pre .. {L-1}_pre, final_post (TransformerLens' labels), then positions.
SweepGrid logit_lens_grid(const ReadoutRequest& r, const ModelConfig& cfg, const PairDataset& data,
                          const std::string& file = "experiment", const std::string& field = "positions");

std::unique_ptr<SweepEngine> make_logit_lens(TransformerModel& model, const PairDataset& data,
                                             const ReadoutRequest& r);

// The r.top_k tokens with the highest lens logits (the normalized residual, final norm weight
// and bias applied, times W_U; before any soft-cap, which keeps the order) in every cell of
// the lens grid: ids and logits (pair, ...grid, k), -1 and NaN past a pair's prompt. One forward
// per block of pairs, whole vocabulary rows: not under tensor parallelism.
struct LensTopTokens {
  std::vector<int32_t> ids;
  std::vector<float> logits;
  std::vector<int64_t> shape;
};
LensTopTokens logit_lens_top_tokens(TransformerModel& model, const PairDataset& data, const ReadoutRequest& r);

}  // namespace causeway
