#include "patching/direct_logit.h"

namespace causeway {

SweepGrid direct_logit_grid(const ReadoutRequest& r, const ModelConfig& cfg, const PairDataset& data,
                            const std::string& file, const std::string& field) {
  if (!r.components) return grid_for(r.spec, cfg, data, file, field);
  // The residual stream's decomposition, TransformerLens' decompose_resid order, then the bias.
  GridAxis lead{"component", 0, {}};
  std::vector<PatchCell> cells;
  auto add = [&](const std::string& label, HookKind kind, int layer) {
    lead.labels.push_back(label);
    cells.push_back({kind, layer});
  };
  add("embed", HookKind::Embed, -1);
  if (model_has_hook(HookKind::PosEmbed, cfg)) add("pos_embed", HookKind::PosEmbed, -1);
  for (int L = 0; L < cfg.n_layer; ++L) {
    add(std::to_string(L) + "_attn_out", HookKind::AttnOut, L);
    add(std::to_string(L) + "_mlp_out", HookKind::MlpOut, L);
  }
  add("bias", HookKind::LnFinalNormalized, -1);
  lead.size = static_cast<int>(lead.labels.size());
  return over_positions(lead, cells, r.spec, cfg, data, file, field);
}

std::unique_ptr<SweepEngine> make_direct_logit(TransformerModel& model, const PairDataset& data,
                                               const ReadoutRequest& r) {
  CellReader read = [](const RunReadout& run, const PatchCell& cell, int row, int t, const float* x) {
    return run.direct(cell, row, t, x);
  };
  return std::make_unique<ReadoutRunner>(model, data, direct_logit_grid(r, model.config(), data),
                                         std::move(read), r.corrupted, true);
}

}  // namespace causeway
