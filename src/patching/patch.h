// Writing one cell's slice of a source activation over a hook value, for one batch row.
// Hook values of a part-way forward start at position row_begin; sources always hold all T.
#pragma once

#include <cstdint>
#include <optional>

#include "model/tensor_shard.h"
#include "patching/sweep_grid.h"

namespace causeway {

struct ModelConfig;

// Per-row element counts of a hook's value over Tq query positions of T (B axis dropped).
int64_t hook_row_size(HookKind kind, const ModelConfig& cfg, int Tq, int T);

// dst: the row's hook value covering positions row_begin..T-1; src: the source run's value of
// the same hook over all T positions, or nullptr to write zeros (zero ablation).
void apply_patch(const PatchCell& cell, const float* src, float* dst, const ModelConfig& cfg,
                 int T, int row_begin);

// Sum over the cell's slice of `values`, a hook value over all T positions (one batch row):
// the slice apply_patch would write. Attribution patching sums (source - target) x gradient.
double slice_sum(const PatchCell& cell, const float* values, const ModelConfig& cfg, int T);

// The cell as a tensor-parallel rank's hook values index it (their shapes are shard.local(cfg)):
// a head or MLP unit renumbered within the rank's block, or nothing when the rank does not
// hold it (its holder patches it; this rank runs the same forward unpatched). Cells of
// residual-stream hooks, and cells over all heads, are the same on every rank.
std::optional<PatchCell> local_cell(const PatchCell& cell, const TensorShard& shard,
                                    const ModelConfig& cfg);

// The first position a patch can change: everything before it is unchanged under causal
// attention, so a forward for this cell need only recompute from there.
int first_affected_position(const PatchCell& cell);

}  // namespace causeway
