// What a sweep's position axes mean. By default a position is a token index, which is the same
// token in every pair only when all prompts have one length; a per-position grid over prompts
// of different lengths is therefore refused. With named positions (SweepSpec::named) the axis
// indexes the names the pairs carry ("IO", "S2", "END", ...) and cell i patches, in each pair,
// that pair's own token index of name i.
#pragma once

#include <string>
#include <vector>

#include "data/prompt_pairs.h"
#include "patching/sweep_grid.h"

namespace causeway {

// Whether the grid of `spec` has a position axis (pos, dest_pos, src_pos).
bool has_position_axis(const SweepSpec& spec);

// The grid of `spec` over `data`: positions up to the longest prompt, or the pairs' named
// positions (labelled with the names). InputError naming `file` and `field` when a per-position
// grid would mix prompts of different lengths, or when named positions are asked of a sweep
// without a position axis or of pairs that do not all name the same positions.
SweepGrid grid_for(const SweepSpec& spec, const ModelConfig& cfg, const PairDataset& data,
                   const std::string& file = "experiment", const std::string& field = "positions");

// Cells of a grid in each pair's own token positions: the identity for a grid of token
// indices, the pair's index of each name for a named grid.
class PairPositions {
 public:
  PairPositions() = default;
  PairPositions(const SweepGrid& grid, const PairDataset& data);
  PatchCell in_pair(PatchCell cell, int pair) const;

 private:
  int n_names_ = 0;
  std::vector<int> index_;  // (pair, name): token index
};

}  // namespace causeway
