#include "patching/sweep_positions.h"

#include <algorithm>

#include "core/error.h"

namespace causeway {

namespace {

bool is_position_axis(const std::string& name) { return name == "pos" || name.ends_with("_pos"); }

std::string where(const PairDataset& data, size_t i) {
  const PromptPair& p = data.pairs[i];
  return p.line > 0 ? "line " + std::to_string(p.line) : "pair " + std::to_string(i + 1);
}

}  // namespace

bool has_position_axis(const SweepSpec& spec) {
  switch (spec.kind) {
    case SweepKind::MlpNeuron: return false;
    case SweepKind::BlockEvery:
    case SweepKind::HeadPatternDestSrc: return true;
    default: return spec.by_pos;
  }
}

SweepGrid grid_for(const SweepSpec& spec, const ModelConfig& cfg, const PairDataset& data,
                   const std::string& file, const std::string& field) {
  if (data.pairs.empty()) throw InputError(data.source, "", "no prompt pairs");
  // `field` names the experiment's positions key; the sweep key is its sibling.
  const std::string sweep_field =
      field.ends_with("positions") ? field.substr(0, field.size() - 9) + "sweep" : "sweep";
  require_sweep_hooks(spec, cfg, file, sweep_field);
  if (spec.named) {
    if (!has_position_axis(spec))
      throw InputError(file, field,
                       "\"named\" needs a sweep with a position axis; " + spec.name() +
                           (spec.kind == SweepKind::MlpNeuron ? " patches one position or all"
                                                              : " with positions = \"all\" has none"));
    std::vector<std::string> names;
    try {
      names = data.position_names();
    } catch (const InputError& e) {
      throw InputError(e.file(), e.field(),
                       e.detail() + " (" + file + ": " + field + " = \"named\")");
    }
    SweepGrid g = make_grid(spec, cfg, static_cast<int>(names.size()));
    for (GridAxis& a : g.axes)
      if (is_position_axis(a.name)) a.labels = names;
    g.position_names = std::move(names);
    return g;
  }
  size_t shortest = 0, longest = 0;
  for (size_t i = 0; i < data.pairs.size(); ++i) {
    if (data.pairs[i].clean.size() < data.pairs[shortest].clean.size()) shortest = i;
    if (data.pairs[i].clean.size() > data.pairs[longest].clean.size()) longest = i;
  }
  const size_t T_min = data.pairs[shortest].clean.size(), T = data.pairs[longest].clean.size();
  if (has_position_axis(spec) && T_min != T)
    throw InputError(
        file, field,
        spec.name() + " patches position by position, but the prompts of " + data.source +
            " have different lengths (" + where(data, shortest) + ": " + std::to_string(T_min) +
            " tokens, " + where(data, longest) + ": " + std::to_string(T) +
            " tokens), so a position would be a different token in different pairs. Align them: use "
            "positions = \"named\" with named positions in the pairs (a \"positions\" object per "
            "line, e.g. {\"IO\": 2, \"S2\": 10, \"END\": -1}; the IOI generator writes them), or "
            "make the data one length (the IOI generator's default same_length = true, or one "
            "template), or use positions = \"all\"");
  return make_grid(spec, cfg, static_cast<int>(T));
}

PairPositions::PairPositions(const SweepGrid& grid, const PairDataset& data) {
  const std::vector<std::string>& names = grid.position_names;
  n_names_ = static_cast<int>(names.size());
  index_.reserve(data.pairs.size() * names.size());
  for (size_t i = 0; i < data.pairs.size(); ++i) {
    const PromptPair& p = data.pairs[i];
    for (const std::string& name : names) {
      auto it = std::find_if(p.positions.begin(), p.positions.end(),
                             [&](const NamedPosition& np) { return np.name == name; });
      if (it == p.positions.end())
        throw InputError(data.source, where(data, i) + ": positions", "has no position named " + name);
      if (it->index < 0 || it->index >= static_cast<int>(std::min(p.clean.size(), p.corrupted.size())))
        throw InputError(data.source, where(data, i) + ": positions." + name,
                         std::to_string(it->index) + " is outside the prompt (" +
                             std::to_string(p.clean.size()) + " tokens)");
      index_.push_back(it->index);
    }
  }
}

PatchCell PairPositions::in_pair(PatchCell cell, int pair) const {
  if (n_names_ == 0) return cell;
  const int* idx = index_.data() + static_cast<size_t>(pair) * n_names_;
  if (cell.pos >= 0) cell.pos = idx[cell.pos];
  if (cell.src >= 0) cell.src = idx[cell.src];
  return cell;
}

}  // namespace causeway
