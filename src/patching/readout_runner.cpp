#include "patching/readout_runner.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "patching/patch.h"

namespace causeway {

std::vector<HookKind> kinds_of(const SweepGrid& grid) {
  std::vector<HookKind> kinds;
  for (const PatchCell& c : grid.cells)
    if (c.kind != HookKind::LnFinalNormalized &&
        std::find(kinds.begin(), kinds.end(), c.kind) == kinds.end())
      kinds.push_back(c.kind);
  return kinds;
}

SweepGrid over_positions(const GridAxis& lead, const std::vector<PatchCell>& lead_cells,
                         const SweepSpec& spec, const ModelConfig& cfg, const PairDataset& data,
                         const std::string& file, const std::string& field) {
  SweepSpec resid = spec;
  resid.kind = SweepKind::ResidPre;
  const SweepGrid g = grid_for(resid, cfg, data, file, field);
  const size_t per_layer = g.cells.size() / static_cast<size_t>(cfg.n_layer);
  SweepGrid out;
  out.axes.push_back(lead);
  out.axes.insert(out.axes.end(), g.axes.begin() + 1, g.axes.end());
  out.position_names = g.position_names;
  for (const PatchCell& c : lead_cells)
    for (size_t i = 0; i < per_layer; ++i) {
      PatchCell x = c;
      x.pos = g.cells[i].pos;
      out.cells.push_back(x);
    }
  return out;
}

ReadoutRunner::ReadoutRunner(TransformerModel& model, const PairDataset& data, SweepGrid grid,
                             CellReader reader, bool corrupted, bool sum_over_tp)
    : model_(model), data_(data), grid_(std::move(grid)), reader_(std::move(reader)),
      corrupted_(corrupted), sum_over_tp_(sum_over_tp) {
  if (data_.pairs.empty()) throw InputError(data_.source, "", "no prompt pairs");
  data_.require_aligned();
  positions_ = PairPositions(grid_, data_);
}

void ReadoutRunner::prepare(int pair_begin, int pair_end) {
  const ModelConfig& cfg = model_.config();
  const ModelConfig& lc = model_.local_config();
  const TensorShard& shard = model_.shard();
  const int P = pair_end - pair_begin;
  const int64_t n_cells = static_cast<int64_t>(grid_.cells.size());
  std::vector<std::vector<int32_t>> read_rows, other_rows;
  std::vector<int> read;
  std::vector<const PromptPair*> pairs;
  for (int i = pair_begin; i < pair_end; ++i) {
    const PromptPair& p = data_.pairs[i];
    read_rows.push_back(corrupted_ ? p.corrupted : p.clean);
    other_rows.push_back(corrupted_ ? p.clean : p.corrupted);
    read.push_back(read_position(p));
    pairs.push_back(&p);
  }
  RunReadout run, other;
  run.build(model_, TokenBatch::padded(read_rows), read, pairs, kinds_of(grid_));
  other.build(model_, TokenBatch::padded(other_rows), read, pairs, {});
  values_.assign(static_cast<size_t>(P) * n_cells, 0.0f);
  read_ld_.assign(P, 0.0);
  other_ld_.assign(P, 0.0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int p = 0; p < P; ++p) {
    read_ld_[p] = run.logit_diff(p);
    other_ld_[p] = other.logit_diff(p);
    const int length = static_cast<int>(data_.pairs[pair_begin + p].clean.size());
    for (int64_t c = 0; c < n_cells; ++c) {
      float& out = values_[p * n_cells + c];
      const PatchCell cell = positions_.in_pair(grid_.cells[c], pair_begin + p);
      if (cell.pos >= length) {
        out = nan;
        continue;
      }
      const int t = cell.pos >= 0 ? cell.pos : read[p];
      if (cell.kind == HookKind::LnFinalNormalized) {  // the final norm's bias term
        if (!sum_over_tp_ || shard.rank == 0) out = static_cast<float>(run.direction(p).bias);
        continue;
      }
      const std::optional<PatchCell> mine = local_cell(cell, shard, cfg);
      if (!mine) continue;
      if (sum_over_tp_ && shard.rank != 0 && shard_axis(cell.kind, cfg) == ShardAxis::None) continue;
      const HookPoint hp{cell.kind, cell.kind == HookKind::Embed || cell.kind == HookKind::PosEmbed ? -1 : cell.layer};
      const float* x = component_at(*mine, run.row(hp, p), lc, t);
      out = static_cast<float>(reader_(run, *mine, p, t, x));
    }
  }
  if (sum_over_tp_ && shard.sharded() && model_.tp())
    model_.tp()->allreduce_sum(values_.data(), static_cast<int64_t>(values_.size()));
  begin_ = pair_begin;
  end_ = pair_end;
}

void ReadoutRunner::run_block(int pair_begin, int pair_end, int cell_begin, int cell_end, float* effect,
                              SweepBaselines& base, const SweepProgress& progress) {
  if (begin_ != pair_begin || end_ != pair_end) prepare(pair_begin, pair_end);
  const int n = static_cast<int>(data_.pairs.size());
  if (base.clean_ld.size() != static_cast<size_t>(n))
    for (auto* v : {&base.clean_ld, &base.corrupted_ld, &base.clean_metric, &base.corrupted_metric})
      v->assign(n, std::numeric_limits<double>::quiet_NaN());
  const int64_t n_cells = static_cast<int64_t>(grid_.cells.size()), width = cell_end - cell_begin;
  for (int p = 0; p < pair_end - pair_begin; ++p) {
    const int g = pair_begin + p;
    base.clean_ld[g] = base.clean_metric[g] = corrupted_ ? other_ld_[p] : read_ld_[p];
    base.corrupted_ld[g] = base.corrupted_metric[g] = corrupted_ ? read_ld_[p] : other_ld_[p];
    std::copy(values_.begin() + p * n_cells + cell_begin, values_.begin() + p * n_cells + cell_end,
              effect + p * width);
  }
  if (progress) progress(width, width);
}

}  // namespace causeway
