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

struct HookName {
  HookKind kind;
  const char* suffix;  // after "blocks.L." for block hooks, the whole name otherwise
  bool in_block;
};

constexpr std::array<HookName, static_cast<size_t>(HookKind::Count)> kHookNames = {{
    {HookKind::Embed, "hook_embed", false},
    {HookKind::PosEmbed, "hook_pos_embed", false},
    {HookKind::ResidPre, "hook_resid_pre", true},
    {HookKind::Ln1Scale, "ln1.hook_scale", true},
    {HookKind::Q, "attn.hook_q", true},
    {HookKind::K, "attn.hook_k", true},
    {HookKind::V, "attn.hook_v", true},
    {HookKind::AttnScores, "attn.hook_attn_scores", true},
    {HookKind::Pattern, "attn.hook_pattern", true},
    {HookKind::Z, "attn.hook_z", true},
    {HookKind::Result, "attn.hook_result", true},
    {HookKind::AttnOut, "hook_attn_out", true},
    {HookKind::ResidMid, "hook_resid_mid", true},
    {HookKind::Ln2Scale, "ln2.hook_scale", true},
    {HookKind::MlpPre, "mlp.hook_pre", true},
    {HookKind::MlpPost, "mlp.hook_post", true},
    {HookKind::MlpOut, "hook_mlp_out", true},
    {HookKind::ResidPost, "hook_resid_post", true},
    {HookKind::LnFinalScale, "ln_final.hook_scale", false},
}};

const HookName& entry(HookKind k) { return kHookNames[static_cast<size_t>(k)]; }

}  // namespace

bool HookPoint::is_block_hook() const { return entry(kind).in_block; }

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

Shape HookPoint::shape(const ModelConfig& cfg, int B, int T) const {
  const int64_t d = cfg.n_embd, h = cfg.n_head, dh = cfg.d_head(), m = cfg.n_inner;
  switch (kind) {
    case HookKind::Ln1Scale:
    case HookKind::Ln2Scale:
    case HookKind::LnFinalScale: return Shape{B, T, 1};
    case HookKind::Q:
    case HookKind::K:
    case HookKind::V:
    case HookKind::Z: return Shape{B, T, h, dh};
    case HookKind::AttnScores:
    case HookKind::Pattern: return Shape{B, h, T, T};
    case HookKind::Result: return Shape{B, T, h, d};
    case HookKind::MlpPre:
    case HookKind::MlpPost: return Shape{B, T, m};
    default: return Shape{B, T, d};
  }
}

std::vector<HookPoint> all_hook_points(int n_layer) {
  std::vector<HookPoint> out{{HookKind::Embed, -1}, {HookKind::PosEmbed, -1}};
  for (int L = 0; L < n_layer; ++L)
    for (const HookName& e : kHookNames)
      if (e.in_block) out.push_back({e.kind, L});
  out.push_back({HookKind::LnFinalScale, -1});
  return out;
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
