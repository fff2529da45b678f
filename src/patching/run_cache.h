// Activations of a set of baseline runs (one per prompt, padded to a common T) kept for
// patching: what a part-way forward starts from (every layer's resid_pre, keys and values)
// and the hooks that patch values are taken from.
#pragma once

#include <vector>

#include "model/transformer_model.h"

namespace causeway {

// The hooks a part-way forward reads from its baseline at every layer (RunPrefix below): the
// residual stream, the keys attention reads and the values.
std::vector<HookKind> prefix_hook_kinds(const ModelConfig& cfg);

class RunCache {
 public:
  // Runs `batch` once through `model`, caching the prefix hooks (if `prefix`) and `sources`
  // at every layer. `edit` (optional) is applied to the embeddings first (noise corruption).
  void build(TransformerModel& model, const TokenBatch& batch, const std::vector<int>& read_pos,
             bool prefix, const std::vector<HookKind>& sources,
             const HookFn& edit_embed = nullptr);

  int runs() const { return batch_.B; }
  int T() const { return batch_.T; }
  const TokenBatch& batch() const { return batch_; }
  // The sizes rows are laid out in: the model's local_config() (this rank's heads and units).
  const ModelConfig& config() const { return *cfg_; }
  // Row `run` of hook `kind` at `layer`: the run's value over all T positions.
  const float* row(HookKind kind, int layer, int run) const;
  // Logits over the vocabulary at each run's read position, (runs, V).
  const std::vector<float>& last_logits() const { return last_logits_; }

 private:
  HookPlan plan_{0};
  TokenBatch batch_;
  const ModelConfig* cfg_ = nullptr;
  std::vector<float> last_logits_;
};

// Maps each row of a patched batch to the baseline run it continues from.
class RunPrefix final : public PrefixSource {
 public:
  RunPrefix(const RunCache& cache, std::vector<int> run_of_row)
      : cache_(cache), run_of_row_(std::move(run_of_row)) {}
  const float* resid_pre(int row, int layer) const override {
    return cache_.row(HookKind::ResidPre, layer, run_of_row_[row]);
  }
  const float* keys(int row, int layer) const override {
    return cache_.row(attention_keys_hook(cache_.config()), layer, run_of_row_[row]);
  }
  const float* values(int row, int layer) const override {
    return cache_.row(HookKind::V, layer, run_of_row_[row]);
  }

 private:
  const RunCache& cache_;
  std::vector<int> run_of_row_;
};

}  // namespace causeway
