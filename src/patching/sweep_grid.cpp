#include "patching/sweep_grid.h"

#include <map>
#include <stdexcept>

#include "core/error.h"
#include "model/model_config.h"

namespace causeway {

namespace {

struct KindInfo {
  SweepKind kind;
  const char* name;
  HookKind hook;
};

const std::vector<KindInfo>& kinds() {
  static const std::vector<KindInfo> k = {
      {SweepKind::ResidPre, "resid_pre", HookKind::ResidPre},
      {SweepKind::ResidMid, "resid_mid", HookKind::ResidMid},
      {SweepKind::ResidPost, "resid_post", HookKind::ResidPost},
      {SweepKind::AttnOut, "attn_out", HookKind::AttnOut},
      {SweepKind::MlpOut, "mlp_out", HookKind::MlpOut},
      {SweepKind::HeadOut, "attn_head_out", HookKind::Z},
      {SweepKind::HeadQ, "attn_head_q", HookKind::Q},
      {SweepKind::HeadK, "attn_head_k", HookKind::K},
      {SweepKind::HeadV, "attn_head_v", HookKind::V},
      {SweepKind::HeadPattern, "attn_head_pattern", HookKind::Pattern},
      {SweepKind::HeadPatternDestSrc, "attn_head_pattern_dest_src", HookKind::Pattern},
      {SweepKind::MlpNeuron, "mlp_neuron", HookKind::MlpPost},
      {SweepKind::BlockEvery, "block_every", HookKind::ResidPre},
      {SweepKind::HeadEvery, "attn_head_every", HookKind::Z},
  };
  return k;
}

const KindInfo& info(SweepKind kind) {
  for (const KindInfo& k : kinds())
    if (k.kind == kind) return k;
  throw std::logic_error("sweep kind without a name");
}

GridAxis axis(const char* name, int size) { return GridAxis{name, size, {}}; }

GridAxis component_axis(const std::vector<HookKind>& comps) {
  GridAxis a{"component", static_cast<int>(comps.size()), {}};
  for (HookKind k : comps) {
    std::string n = HookPoint{k, 0}.name();
    a.labels.push_back(n.substr(n.find('.', 7) + 1));  // drop "blocks.0."
  }
  return a;
}

}  // namespace

std::string SweepSpec::name() const { return info(kind).name; }

SweepKind SweepSpec::parse_kind(const std::string& name, const std::string& source,
                                const std::string& field) {
  for (const KindInfo& k : kinds())
    if (name == k.name) return k.kind;
  std::string known;
  for (const KindInfo& k : kinds()) known += std::string(known.empty() ? "" : ", ") + k.name;
  throw InputError(source, field, "unknown sweep '" + name + "' (known: " + known + ")");
}

std::vector<int> SweepGrid::shape() const {
  std::vector<int> s;
  for (const GridAxis& a : axes) s.push_back(a.size);
  return s;
}

std::vector<HookKind> patched_kinds(const SweepSpec& spec) {
  switch (spec.kind) {
    case SweepKind::BlockEvery: return {HookKind::ResidPre, HookKind::AttnOut, HookKind::MlpOut};
    case SweepKind::HeadEvery:
      return {HookKind::Z, HookKind::Q, HookKind::K, HookKind::V, HookKind::Pattern};
    default: return {info(spec.kind).hook};
  }
}

SweepGrid make_grid(const SweepSpec& spec, const ModelConfig& cfg, int T) {
  const int L = cfg.n_layer, M = cfg.n_inner;
  SweepGrid g;
  auto& cells = g.cells;
  switch (spec.kind) {
    case SweepKind::ResidPre:
    case SweepKind::ResidMid:
    case SweepKind::ResidPost:
    case SweepKind::AttnOut:
    case SweepKind::MlpOut: {
      const HookKind k = info(spec.kind).hook;
      if (spec.by_pos) {
        g.axes = {axis("layer", L), axis("pos", T)};
        for (int l = 0; l < L; ++l)
          for (int p = 0; p < T; ++p) cells.push_back({k, l, p});
      } else {
        g.axes = {axis("layer", L)};
        for (int l = 0; l < L; ++l) cells.push_back({k, l, -1});
      }
      break;
    }
    case SweepKind::HeadOut:
    case SweepKind::HeadQ:
    case SweepKind::HeadK:
    case SweepKind::HeadV:
    case SweepKind::HeadPattern: {
      const HookKind k = info(spec.kind).hook;
      const int H = static_cast<int>(hook_geometry(k, cfg).heads);  // KV for k and v
      if (spec.by_pos && spec.kind == SweepKind::HeadPattern) {
        // TransformerLens orders this one alone [layer, head, dest_pos]
        g.axes = {axis("layer", L), axis("head", H), axis("dest_pos", T)};
        for (int l = 0; l < L; ++l)
          for (int h = 0; h < H; ++h)
            for (int p = 0; p < T; ++p) cells.push_back({k, l, p, h});
      } else if (spec.by_pos) {
        g.axes = {axis("layer", L), axis("pos", T), axis("head", H)};
        for (int l = 0; l < L; ++l)
          for (int p = 0; p < T; ++p)
            for (int h = 0; h < H; ++h) cells.push_back({k, l, p, h});
      } else {
        g.axes = {axis("layer", L), axis("head", H)};
        for (int l = 0; l < L; ++l)
          for (int h = 0; h < H; ++h) cells.push_back({k, l, -1, h});
      }
      break;
    }
    case SweepKind::HeadPatternDestSrc: {
      const int H = static_cast<int>(hook_geometry(HookKind::Pattern, cfg).heads);
      g.axes = {axis("layer", L), axis("head", H), axis("dest_pos", T), axis("src_pos", T)};
      for (int l = 0; l < L; ++l)
        for (int h = 0; h < H; ++h)
          for (int d = 0; d < T; ++d)
            for (int s = 0; s < T; ++s) cells.push_back({HookKind::Pattern, l, d, h, -1, s});
      break;
    }
    case SweepKind::MlpNeuron:
      g.axes = {axis("layer", L), axis("neuron", M)};
      for (int l = 0; l < L; ++l)
        for (int n = 0; n < M; ++n) cells.push_back({HookKind::MlpPost, l, spec.position, -1, n});
      break;
    case SweepKind::BlockEvery: {
      const auto comps = patched_kinds(spec);
      g.axes = {component_axis(comps), axis("layer", L), axis("pos", T)};
      for (HookKind k : comps)
        for (int l = 0; l < L; ++l)
          for (int p = 0; p < T; ++p) cells.push_back({k, l, p});
      break;
    }
    case SweepKind::HeadEvery: {
      // One head axis for all five rows, as TransformerLens stacks them: the query heads.
      const auto comps = patched_kinds(spec);
      const int H = cfg.n_head;
      if (spec.by_pos) {
        g.axes = {component_axis(comps), axis("layer", L), axis("pos", T), axis("head", H)};
        for (HookKind k : comps)
          for (int l = 0; l < L; ++l)
            for (int p = 0; p < T; ++p)
              for (int h = 0; h < H; ++h) cells.push_back({k, l, p, h});
      } else {
        g.axes = {component_axis(comps), axis("layer", L), axis("head", H)};
        for (HookKind k : comps)
          for (int l = 0; l < L; ++l)
            for (int h = 0; h < H; ++h) cells.push_back({k, l, -1, h});
      }
      const int KV = cfg.kv_heads();
      if (KV < H)
        g.not_applicable =
            "rows attn.hook_k and attn.hook_v: the model has " + std::to_string(KV) +
            (KV == 1 ? " key/value head" : " key/value heads") +
            " (grouped-query attention), so their cells at heads " + std::to_string(KV) +
            ".." + std::to_string(H - 1) +
            " patch nothing and hold the unpatched run's metric (TransformerLens zero-pads them to 0)";
      break;
    }
  }
  return g;
}

bool cell_applicable(const PatchCell& cell, const ModelConfig& cfg) {
  return cell.head < hook_geometry(cell.kind, cfg).heads;
}

void require_sweep_hooks(const SweepSpec& spec, const ModelConfig& cfg, const std::string& file,
                         const std::string& field) {
  for (HookKind k : patched_kinds(spec)) {
    if (model_has_hook(k, cfg)) continue;
    // HookPoint::parse knows why a model lacks a hook; its detail is the reason given here.
    try {
      HookPoint::parse(HookPoint{k, 0}.name(), cfg);
    } catch (const InputError& e) {
      throw InputError(file, field,
                       "sweep '" + spec.name() + "' patches blocks.L." +
                           HookPoint{k, 0}.name().substr(9) + ", but " + e.detail());
    }
    throw std::logic_error("model_has_hook and HookPoint::parse disagree");
  }
}

}  // namespace causeway
