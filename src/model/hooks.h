// Hook points named and shaped exactly as TransformerLens names them (DESIGN.md section 3),
// and the HookPlan that says which ones a forward pass caches or edits. A hook the plan does
// not name costs one flag test.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace causeway {

struct ModelConfig;

enum class HookKind : uint8_t {
  Embed,            // hook_embed                       [b,p,d]
  PosEmbed,         // hook_pos_embed                   [b,p,d]  learned positions only
  ResidPre,         // blocks.L.hook_resid_pre          [b,p,d]
  QInput,           // blocks.L.hook_q_input            [b,p,h,d]   opt-in: each head's own
  KInput,           // blocks.L.hook_k_input            [b,p,kv,d]  copy of resid_pre, which
  VInput,           // blocks.L.hook_v_input            [b,p,kv,d]  ln1 then normalizes per head
  Ln1Scale,         // blocks.L.ln1.hook_scale          [b,p,1]
  Ln1Normalized,    // blocks.L.ln1.hook_normalized     [b,p,d]
  Q,                // blocks.L.attn.hook_q             [b,p,h,dh]
  K,                // blocks.L.attn.hook_k             [b,p,kv,dh]
  V,                // blocks.L.attn.hook_v             [b,p,kv,dh]
  QNormScale,       // blocks.L.attn.q_norm.hook_scale  [b,p,h,1]   q/k norm (Qwen3)
  QNormNormalized,  // blocks.L.attn.q_norm.hook_normalized [b,p,h,dh]
  KNormScale,       // blocks.L.attn.k_norm.hook_scale  [b,p,kv,1]
  KNormNormalized,  // blocks.L.attn.k_norm.hook_normalized [b,p,kv,dh]
  RotQ,             // blocks.L.attn.hook_rot_q         [b,p,h,dh]  rotary only
  RotK,             // blocks.L.attn.hook_rot_k         [b,p,kv,dh]
  AttnScores,       // blocks.L.attn.hook_attn_scores   [b,h,q,k]
  Pattern,          // blocks.L.attn.hook_pattern       [b,h,q,k]
  Z,                // blocks.L.attn.hook_z             [b,p,h,dh]
  Result,           // blocks.L.attn.hook_result        [b,p,h,d]
  Ln1PostScale,     // blocks.L.ln1_post.hook_scale     [b,p,1]     post-norms (Gemma 2)
  Ln1PostNormalized,// blocks.L.ln1_post.hook_normalized [b,p,d]
  AttnOut,          // blocks.L.hook_attn_out           [b,p,d]
  ResidMid,         // blocks.L.hook_resid_mid          [b,p,d]     not with a parallel residual
  MlpIn,            // blocks.L.hook_mlp_in             [b,p,d]     opt-in: ln2's input
  Ln2Scale,         // blocks.L.ln2.hook_scale          [b,p,1]
  Ln2Normalized,    // blocks.L.ln2.hook_normalized     [b,p,d]
  MlpPre,           // blocks.L.mlp.hook_pre            [b,p,m]     gated: x @ W_gate
  MlpPreLinear,     // blocks.L.mlp.hook_pre_linear     [b,p,m]     gated only: x @ W_in
  MlpPost,          // blocks.L.mlp.hook_post           [b,p,m]
  Ln2PostScale,     // blocks.L.ln2_post.hook_scale     [b,p,1]
  Ln2PostNormalized,// blocks.L.ln2_post.hook_normalized [b,p,d]
  MlpOut,           // blocks.L.hook_mlp_out            [b,p,d]
  ResidPost,        // blocks.L.hook_resid_post         [b,p,d]
  LnFinalScale,     // ln_final.hook_scale              [b,p,1]
  LnFinalNormalized,// ln_final.hook_normalized         [b,p,d]
  Count
};
inline constexpr int kHookKindCount = static_cast<int>(HookKind::Count);

struct HookPoint {
  HookKind kind = HookKind::Embed;
  int layer = -1;  // -1 for hooks outside the blocks

  bool operator==(const HookPoint&) const = default;
  auto operator<=>(const HookPoint&) const = default;

  std::string name() const;
  // Parses a full TransformerLens name; throws InputError naming `source` on an unknown name
  // or a layer outside [0, n_layer).
  static HookPoint parse(std::string_view name, int n_layer, const std::string& source = "hook");
  // As above, and refuses a hook the model does not have (hook_pos_embed of a rotary model).
  static HookPoint parse(std::string_view name, const ModelConfig& cfg,
                         const std::string& source = "hook");
  // The hook's shape for a batch of B sequences of T positions.
  Shape shape(const ModelConfig& cfg, int B, int T) const;
  bool is_block_hook() const;
};

// How a hook's value is laid out for one sequence, from the hook layout table: position-major
// [T, heads, width] (residual-like: heads 1, width d; heads: width dh or d), or head-major
// [heads, Tq, T] (scores and patterns: width = T). Patching and attribution slice hooks
// through this, so no sweep code knows a family's shapes.
struct HookGeometry {
  bool head_major = false;
  int64_t heads = 1;
  int64_t width = 0;
};
HookGeometry hook_geometry(HookKind kind, const ModelConfig& cfg);
// Axis names of one sequence's value of a hook (batch axis dropped), as result files label
// them: "pos", "head", "d_head", "d_model", "neuron", "one", "dest_pos", "src_pos".
std::vector<std::string> hook_axes(HookKind kind, const ModelConfig& cfg);
// Whether the model `cfg` has this hook at all (rotary models have no hook_pos_embed, ...).
bool model_has_hook(HookKind kind, const ModelConfig& cfg);

// Every hook point of a model, in forward order, without the opt-in ones (the split inputs
// hook_q_input / hook_k_input / hook_v_input and hook_mlp_in, which TransformerLens also only
// has when asked for: caching them costs a per-head normalization).
std::vector<HookPoint> all_hook_points(const ModelConfig& cfg);
// Whether the hook is opt-in (see all_hook_points).
bool hook_is_opt_in(HookKind kind);

// What a hook callback sees: the batch geometry. A part-way forward recomputes positions
// row_begin..T-1 only, and hook values then hold just those positions (index t - row_begin).
struct HookContext {
  HookPoint point;
  int B = 0, T = 0;
  int row_begin = 0;
};

// A callback reads or edits the hook's value in place (patching, ablation, noise).
using HookFn = std::function<void(const HookContext&, Tensor& value)>;

// Cached activations by hook name; storage is kept across forwards of the same shape.
class ActivationCache {
 public:
  const Tensor& at(const std::string& name) const;
  const Tensor& at(HookPoint p) const { return at(p.name()); }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const;
  void store(HookPoint p, const Tensor& value);
  void clear() { entries_.clear(); }

 private:
  struct Entry {
    std::vector<float> storage;
    Tensor view;
  };
  std::map<std::string, Entry> entries_;
};

class HookPlan {
 public:
  explicit HookPlan(int n_layer);

  // Keep a copy of the hook's value (after any edits) in activations().
  void cache(HookPoint p);
  void cache(std::string_view name) { cache(HookPoint::parse(name, n_layer_)); }
  // Replace the hook's value by `src` (same shape; batch geometry must match the forward).
  void overwrite(HookPoint p, Tensor src);
  // Run `fn` on the value; callbacks on one hook run in the order they were added, before
  // caching, so the cache holds what the rest of the model saw.
  void add(HookPoint p, HookFn fn);
  void clear();

  bool wants(HookPoint p) const { return flags_[index(p)] != 0; }
  // Called by the model at each hook point it reaches; a no-op for unnamed hooks.
  void run(const HookContext& ctx, Tensor& value);

  ActivationCache& activations() { return activations_; }
  const ActivationCache& activations() const { return activations_; }
  int n_layer() const { return n_layer_; }

 private:
  size_t index(HookPoint p) const {
    return static_cast<size_t>(p.layer + 1) * static_cast<size_t>(HookKind::Count) +
           static_cast<size_t>(p.kind);
  }
  int n_layer_;
  std::vector<uint8_t> flags_;
  std::vector<uint8_t> cached_;
  std::map<HookPoint, std::vector<HookFn>> callbacks_;
  ActivationCache activations_;
};

}  // namespace causeway
