// Sweep grids: which components a sweep patches, one cell per grid point, with axes named and
// ordered as TransformerLens' `patching` module orders them (e.g. attn_head_out_by_pos is
// [layer, pos, head]).
#pragma once

#include <string>
#include <vector>

#include "model/hooks.h"

namespace causeway {

struct ModelConfig;

// One patched component: a hook, and which slice of it (-1 = every index on that axis).
struct PatchCell {
  HookKind kind = HookKind::ResidPre;
  int layer = 0;
  int pos = -1;     // position (query/destination position for patterns)
  int head = -1;
  int neuron = -1;  // mlp.hook_post unit
  int src = -1;     // key/source position, patterns only
};

enum class SweepKind {
  ResidPre, ResidMid, ResidPost, AttnOut, MlpOut,  // [layer, pos] or [layer] over all positions
  HeadOut, HeadQ, HeadK, HeadV, HeadPattern,       // [layer, pos, head] or [layer, head];
                                                   // pattern by pos: [layer, head, dest_pos]
  HeadPatternDestSrc,                              // [layer, head, dest_pos, src_pos]
  MlpNeuron,                                       // [layer, neuron], at one position or all
  BlockEvery,                                      // [component(3), layer, pos]
  HeadEvery,                                       // [component(5), layer, head] / [5, layer, pos, head]
};

struct SweepSpec {
  SweepKind kind = SweepKind::ResidPre;
  bool by_pos = true;     // false: each cell patches every position
  int position = -1;      // MlpNeuron only: the one position patched, or -1 for all
  bool named = false;     // position axes index the pairs' named positions (sweep_positions.h)
  std::string name() const;
  // Parses a sweep name ("resid_pre", "attn_head_out", "mlp_neuron", ...); InputError names
  // `source` and `field` on an unknown one.
  static SweepKind parse_kind(const std::string& name, const std::string& source,
                              const std::string& field);
};

struct GridAxis {
  std::string name;                  // "layer", "pos", "head", "neuron", "component", "dest_pos", "src_pos"
  int size = 0;
  std::vector<std::string> labels;   // "component": hook names in grid order; position axes
                                     // of a named grid: the position names
};

struct SweepGrid {
  std::vector<GridAxis> axes;
  std::vector<PatchCell> cells;      // row-major over axes
  std::vector<std::string> position_names;  // non-empty: positions are these names' indices
  std::string not_applicable;        // which cells patch nothing and why; empty when none
  std::vector<int> shape() const;
};

// Builds the grid of `spec` for prompts of T positions. Head axes have as many heads as the
// patched hook has (hook_geometry): key/value heads for k and v under grouped-query attention.
// attn_head_every keeps TransformerLens' [5, ..., n_heads] layout; its k and v cells at heads
// >= KV patch nothing (cell_applicable false) and `not_applicable` says so.
SweepGrid make_grid(const SweepSpec& spec, const ModelConfig& cfg, int T);

// Whether the model has the component `cell` patches (false: attn_head_every's k/v cells past
// the key/value heads). Such a cell holds the unpatched run's metric: it changes nothing.
bool cell_applicable(const PatchCell& cell, const ModelConfig& cfg);

// InputError naming `file` and `field` (one line: the sweep, the model_type and why) when the
// model lacks a hook the sweep patches: resid_mid of a parallel-residual model (GPT-NeoX).
void require_sweep_hooks(const SweepSpec& spec, const ModelConfig& cfg, const std::string& file,
                         const std::string& field);

// The hook kinds a sweep patches (what the source runs must cache).
std::vector<HookKind> patched_kinds(const SweepSpec& spec);

}  // namespace causeway
