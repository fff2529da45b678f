#include "patching/run_cache.h"

#include "patching/patch.h"

namespace causeway {

std::vector<HookKind> prefix_hook_kinds(const ModelConfig& cfg) {
  return {HookKind::ResidPre, attention_keys_hook(cfg), HookKind::V};
}

void RunCache::build(TransformerModel& model, const TokenBatch& batch, const std::vector<int>& read_pos,
                     bool prefix, const std::vector<HookKind>& sources,
                     const HookFn& edit_embed) {
  const ModelConfig& cfg = model.config();
  // Rows are laid out in the shapes this rank computes with (its heads and units under
  // tensor parallelism).
  cfg_ = &model.local_config();
  batch_ = batch;
  plan_ = HookPlan(cfg.n_layer);
  std::vector<HookKind> kinds = sources;
  if (prefix) {
    const std::vector<HookKind> reads = prefix_hook_kinds(cfg);
    kinds.insert(kinds.end(), reads.begin(), reads.end());
  }
  for (int L = 0; L < cfg.n_layer; ++L)
    for (HookKind k : kinds) plan_.cache({k, L});
  if (edit_embed) plan_.add({HookKind::Embed, -1}, edit_embed);
  ForwardOptions o;
  o.rows = LogitRows::Last;
  o.read_pos = &read_pos;
  const Tensor logits = model.forward(batch, plan_, o);
  last_logits_.assign(logits.data, logits.data + logits.numel());
}

const float* RunCache::row(HookKind kind, int layer, int run) const {
  const Tensor& t = plan_.activations().at(HookPoint{kind, layer});
  return t.data + static_cast<int64_t>(run) * hook_row_size(kind, *cfg_, batch_.T, batch_.T);
}

}  // namespace causeway
