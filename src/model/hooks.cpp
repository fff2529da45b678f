#include "model/hooks.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "core/error.h"
#include "model/model_config.h"

namespace causeway {

namespace {

// How many heads a hook has per position, and how wide each is.
enum class Heads : uint8_t { One, Query, KeyValue };
enum class Width : uint8_t { Model, Head, Mlp, Scalar, Keys };

// Which configs have a hook.
enum class Needs : uint8_t { Always, LearnedPositions, NoParallelResidual, QkNorm, Rotary,
                             PostNorms, GatedMlp };

// The hook layout table: one row per hook kind, in forward order and in enum order.
struct HookName {
  HookKind kind;
  const char* suffix;  // after "blocks.L." for block hooks, the whole name otherwise
  bool in_block;
  Heads heads;
  Width width;
  Needs needs;
  bool opt_in = false;  // not listed by all_hook_points (TransformerLens: use_split_qkv_input ...)
};

constexpr std::array<HookName, static_cast<size_t>(HookKind::Count)> kHookNames = {{
    {HookKind::Embed, "hook_embed", false, Heads::One, Width::Model, Needs::Always},
    {HookKind::PosEmbed, "hook_pos_embed", false, Heads::One, Width::Model, Needs::LearnedPositions},
    {HookKind::ResidPre, "hook_resid_pre", true, Heads::One, Width::Model, Needs::Always},
    {HookKind::QInput, "hook_q_input", true, Heads::Query, Width::Model, Needs::Always, true},
    {HookKind::KInput, "hook_k_input", true, Heads::KeyValue, Width::Model, Needs::Always, true},
    {HookKind::VInput, "hook_v_input", true, Heads::KeyValue, Width::Model, Needs::Always, true},
    {HookKind::Ln1Scale, "ln1.hook_scale", true, Heads::One, Width::Scalar, Needs::Always},
    {HookKind::Ln1Normalized, "ln1.hook_normalized", true, Heads::One, Width::Model, Needs::Always},
    {HookKind::Q, "attn.hook_q", true, Heads::Query, Width::Head, Needs::Always},
    {HookKind::K, "attn.hook_k", true, Heads::KeyValue, Width::Head, Needs::Always},
    {HookKind::V, "attn.hook_v", true, Heads::KeyValue, Width::Head, Needs::Always},
    {HookKind::QNormScale, "attn.q_norm.hook_scale", true, Heads::Query, Width::Scalar, Needs::QkNorm},
    {HookKind::QNormNormalized, "attn.q_norm.hook_normalized", true, Heads::Query, Width::Head, Needs::QkNorm},
    {HookKind::KNormScale, "attn.k_norm.hook_scale", true, Heads::KeyValue, Width::Scalar, Needs::QkNorm},
    {HookKind::KNormNormalized, "attn.k_norm.hook_normalized", true, Heads::KeyValue, Width::Head, Needs::QkNorm},
    {HookKind::RotQ, "attn.hook_rot_q", true, Heads::Query, Width::Head, Needs::Rotary},
    {HookKind::RotK, "attn.hook_rot_k", true, Heads::KeyValue, Width::Head, Needs::Rotary},
    {HookKind::AttnScores, "attn.hook_attn_scores", true, Heads::Query, Width::Keys, Needs::Always},
    {HookKind::Pattern, "attn.hook_pattern", true, Heads::Query, Width::Keys, Needs::Always},
    {HookKind::Z, "attn.hook_z", true, Heads::Query, Width::Head, Needs::Always},
    {HookKind::Result, "attn.hook_result", true, Heads::Query, Width::Model, Needs::Always},
    {HookKind::Ln1PostScale, "ln1_post.hook_scale", true, Heads::One, Width::Scalar, Needs::PostNorms},
    {HookKind::Ln1PostNormalized, "ln1_post.hook_normalized", true, Heads::One, Width::Model, Needs::PostNorms},
    {HookKind::AttnOut, "hook_attn_out", true, Heads::One, Width::Model, Needs::Always},
    {HookKind::ResidMid, "hook_resid_mid", true, Heads::One, Width::Model, Needs::NoParallelResidual},
    {HookKind::MlpIn, "hook_mlp_in", true, Heads::One, Width::Model, Needs::Always, true},
    {HookKind::Ln2Scale, "ln2.hook_scale", true, Heads::One, Width::Scalar, Needs::Always},
    {HookKind::Ln2Normalized, "ln2.hook_normalized", true, Heads::One, Width::Model, Needs::Always},
    {HookKind::MlpPre, "mlp.hook_pre", true, Heads::One, Width::Mlp, Needs::Always},
    {HookKind::MlpPreLinear, "mlp.hook_pre_linear", true, Heads::One, Width::Mlp, Needs::GatedMlp},
    {HookKind::MlpPost, "mlp.hook_post", true, Heads::One, Width::Mlp, Needs::Always},
    {HookKind::Ln2PostScale, "ln2_post.hook_scale", true, Heads::One, Width::Scalar, Needs::PostNorms},
    {HookKind::Ln2PostNormalized, "ln2_post.hook_normalized", true, Heads::One, Width::Model, Needs::PostNorms},
    {HookKind::MlpOut, "hook_mlp_out", true, Heads::One, Width::Model, Needs::Always},
    {HookKind::ResidPost, "hook_resid_post", true, Heads::One, Width::Model, Needs::Always},
    {HookKind::LnFinalScale, "ln_final.hook_scale", false, Heads::One, Width::Scalar, Needs::Always},
    {HookKind::LnFinalNormalized, "ln_final.hook_normalized", false, Heads::One, Width::Model, Needs::Always},
}};

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < kHookNames.size(); ++i)
    if (static_cast<size_t>(kHookNames[i].kind) != i) return false;
  return true;
}
static_assert(table_in_enum_order(), "kHookNames rows must follow HookKind's order");

const HookName& entry(HookKind k) { return kHookNames[static_cast<size_t>(k)]; }

}  // namespace

bool HookPoint::is_block_hook() const { return entry(kind).in_block; }

bool hook_is_opt_in(HookKind kind) { return entry(kind).opt_in; }

std::string HookPoint::name() const {
  const HookName& e = entry(kind);
  if (!e.in_block) return e.suffix;
  return "blocks." + std::to_string(layer) + "." + e.suffix;
}

HookPoint HookPoint::parse(std::string_view name, int n_layer, const std::string& source) {
  for (const HookName& e : kHookNames)
    if (!e.in_block && name == e.suffix) return HookPoint{e.kind, -1};
  constexpr std::string_view kPrefix = "blocks.";
  if (name.starts_with(kPrefix)) {
    std::string_view rest = name.substr(kPrefix.size());
    int layer = -1;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), layer);
    if (ec == std::errc() && ptr != rest.data() && ptr < rest.data() + rest.size() && *ptr == '.') {
      std::string_view suffix(ptr + 1, rest.data() + rest.size() - (ptr + 1));
      for (const HookName& e : kHookNames) {
        if (!e.in_block || suffix != e.suffix) continue;
        if (layer < 0 || layer >= n_layer)
          throw InputError(source, std::string(name),
                           "layer " + std::to_string(layer) + " is outside the model's 0.." +
                               std::to_string(n_layer - 1));
        return HookPoint{e.kind, layer};
      }
    }
  }
  std::string known;
  for (const HookName& e : kHookNames) known += std::string(known.empty() ? "" : ", ") +
                                                (e.in_block ? "blocks.L." : "") + e.suffix;
  throw InputError(source, std::string(name), "unknown hook point (known: " + known + ")");
}

bool model_has_hook(HookKind kind, const ModelConfig& cfg) {
  switch (entry(kind).needs) {
    case Needs::Always: return true;
    case Needs::LearnedPositions: return cfg.rotary_dim == 0;
    case Needs::NoParallelResidual: return !cfg.parallel_residual;
    case Needs::QkNorm: return cfg.qk_norm;
    case Needs::Rotary: return cfg.rotary_dim > 0;
    case Needs::PostNorms: return cfg.post_norms;
    case Needs::GatedMlp: return cfg.gated_mlp;
  }
  return false;
}

HookGeometry hook_geometry(HookKind kind, const ModelConfig& cfg) {
  const HookName& e = entry(kind);
  HookGeometry g;
  g.heads = e.heads == Heads::Query ? cfg.n_head : e.heads == Heads::KeyValue ? cfg.kv_heads() : 1;
  switch (e.width) {
    case Width::Model: g.width = cfg.n_embd; break;
    case Width::Head: g.width = cfg.d_head(); break;
    case Width::Mlp: g.width = cfg.n_inner; break;
    case Width::Scalar: g.width = 1; break;
    case Width::Keys: g.head_major = true; g.width = 0; break;  // T: known per batch
  }
  return g;
}

std::vector<std::string> hook_axes(HookKind kind, const ModelConfig& cfg) {
  const HookName& e = entry(kind);
  if (hook_geometry(kind, cfg).head_major) return {"head", "dest_pos", "src_pos"};
  const char* width = e.width == Width::Head     ? "d_head"
                      : e.width == Width::Mlp    ? "neuron"
                      : e.width == Width::Scalar ? "one"
                                                 : "d_model";
  if (e.heads == Heads::One) return {"pos", width};
  return {"pos", "head", width};
}

Shape HookPoint::shape(const ModelConfig& cfg, int B, int T) const {
  const HookGeometry g = hook_geometry(kind, cfg);
  if (g.head_major) return Shape{B, g.heads, T, T};
  if (entry(kind).heads == Heads::One) return Shape{B, T, g.width};
  return Shape{B, T, g.heads, g.width};
}

std::vector<HookPoint> all_hook_points(const ModelConfig& cfg) {
  std::vector<HookPoint> out;
  for (const HookName& e : kHookNames)
    if (!e.in_block && e.kind < HookKind::ResidPre && model_has_hook(e.kind, cfg))
      out.push_back({e.kind, -1});
  for (int L = 0; L < cfg.n_layer; ++L)
    for (const HookName& e : kHookNames)
      if (e.in_block && !e.opt_in && model_has_hook(e.kind, cfg)) out.push_back({e.kind, L});
  for (const HookName& e : kHookNames)
    if (!e.in_block && e.kind > HookKind::ResidPre && model_has_hook(e.kind, cfg))
      out.push_back({e.kind, -1});
  return out;
}

HookPoint HookPoint::parse(std::string_view name, const ModelConfig& cfg,
                           const std::string& source) {
  const HookPoint p = parse(name, cfg.n_layer, source);
  if (!model_has_hook(p.kind, cfg))
    throw InputError(source, std::string(name),
                     "a " + cfg.model_type + " model has no such hook (" +
                         std::string(entry(p.kind).suffix) + " exists only in models with " +
                         [&] {
                           switch (entry(p.kind).needs) {
                             case Needs::LearnedPositions: return "learned position embeddings";
                             case Needs::NoParallelResidual: return "a sequential residual stream";
                             case Needs::QkNorm: return "q/k norms";
                             case Needs::Rotary: return "rotary embeddings";
                             case Needs::PostNorms: return "post-norms";
                             case Needs::GatedMlp: return "a gated MLP";
                             default: return "?";
                           }
                         }() + ")");
  return p;
}

const Tensor& ActivationCache::at(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw std::out_of_range("activation cache has no '" + name + "'");
  return it->second.view;
}

std::vector<std::string> ActivationCache::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

void ActivationCache::store(HookPoint p, const Tensor& value) {
  Entry& e = entries_[p.name()];
  if (e.storage.size() != static_cast<size_t>(value.numel()))
    e.storage.resize(static_cast<size_t>(value.numel()));
  std::memcpy(e.storage.data(), value.data, value.bytes());
  e.view = Tensor{e.storage.data(), value.shape, Device::CPU};
}

HookPlan::HookPlan(int n_layer)
    : n_layer_(n_layer),
      flags_(static_cast<size_t>(n_layer + 1) * static_cast<size_t>(HookKind::Count), 0),
      cached_(flags_.size(), 0) {}

void HookPlan::cache(HookPoint p) {
  flags_[index(p)] = 1;
  cached_[index(p)] = 1;
}

void HookPlan::overwrite(HookPoint p, Tensor src) {
  add(p, [src, p](const HookContext&, Tensor& value) {
    if (!(src.shape == value.shape))
      throw InputError("hook plan", p.name(),
                       "overwrite value has shape " + src.shape.str() + " but the hook has " +
                           value.shape.str());
    std::memcpy(value.data, src.data, value.bytes());
  });
}

void HookPlan::add(HookPoint p, HookFn fn) {
  flags_[index(p)] = 1;
  callbacks_[p].push_back(std::move(fn));
}

void HookPlan::clear() {
  std::fill(flags_.begin(), flags_.end(), 0);
  std::fill(cached_.begin(), cached_.end(), 0);
  callbacks_.clear();
}

void HookPlan::run(const HookContext& ctx, Tensor& value) {
  const size_t i = index(ctx.point);
  if (!flags_[i]) return;
  if (auto it = callbacks_.find(ctx.point); it != callbacks_.end())
    for (const HookFn& fn : it->second) fn(ctx, value);
  if (cached_[i]) activations_.store(ctx.point, value);
}

}  // namespace causeway
