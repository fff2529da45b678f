#include "patching/self_repair.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"
#include "patching/patch.h"
#include "patching/run_cache.h"

namespace causeway {

namespace {

constexpr int kQuantities = 5;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

const std::vector<std::string>& self_repair_quantities() {
  static const std::vector<std::string> q = {"total", "direct", "ln_share", "self_repair", "repair_rest"};
  return q;
}

void require_self_repair_sweep(const SweepSpec& spec, const std::string& file, const std::string& field) {
  if (spec.kind != SweepKind::HeadOut && spec.kind != SweepKind::MlpOut && spec.kind != SweepKind::MlpNeuron)
    throw InputError(file, field,
                     "'" + spec.name() + "': self_repair measures components with an output of their own; "
                     "use attn_head_out, mlp_out or mlp_neuron");
}

SweepGrid self_repair_grid(const SweepSpec& spec, const ModelConfig& cfg, const PairDataset& data,
                           const std::string& file, const std::string& field) {
  const SweepGrid g = grid_for(spec, cfg, data, file, field);
  SweepGrid out = g;
  out.axes.push_back({"quantity", kQuantities, self_repair_quantities()});
  out.cells.clear();
  for (const PatchCell& c : g.cells)
    for (int q = 0; q < kQuantities; ++q) out.cells.push_back(c);
  return out;
}

struct SelfRepairRunner::Block {
  int begin = 0, P = 0, S = 1;
  std::vector<int> read_pos, length;
  RunReadout target, source;  // source: the other run (patching only)
  RunCache partners;          // resample: the partners' clean runs
  std::vector<int> partner_row;  // (pair, sample) -> row of partners
};

SelfRepairRunner::~SelfRepairRunner() = default;

SelfRepairRunner::SelfRepairRunner(TransformerModel& model, const PairDataset& data, SweepRequest request)
    : model_(model), data_(data), req_(std::move(request)), total_(model, data, req_) {
  require_self_repair_sweep(req_.spec, "experiment", "sweep");
  if (req_.metric != MetricKind::LogitDiff)
    throw InputError("experiment", "metric", "self_repair measures the logit difference");
  if (req_.source == PatchSource::Noise || req_.window != 1)
    throw InputError("experiment", "kind", "self_repair patches one component of one layer, from an ablation or the other run");
  grid_ = self_repair_grid(req_.spec, model_.config(), data_);
  positions_ = PairPositions(total_.grid(), data_);
  // Mean ablation's dataset means come from total_, the same sweep request's runner.
}

void SelfRepairRunner::prepare(int pair_begin, int pair_end) {
  block_ = std::make_unique<Block>();
  Block& b = *block_;
  b.begin = pair_begin;
  b.P = pair_end - pair_begin;
  const bool patching = req_.source == PatchSource::Activation;
  const bool target_clean = !patching || req_.direction == Direction::Noising;
  std::vector<std::vector<int32_t>> target_rows, source_rows;
  std::vector<const PromptPair*> pairs;
  for (int i = pair_begin; i < pair_end; ++i) {
    const PromptPair& p = data_.pairs[i];
    target_rows.push_back(target_clean ? p.clean : p.corrupted);
    source_rows.push_back(target_clean ? p.corrupted : p.clean);
    b.read_pos.push_back(read_position(p));
    b.length.push_back(static_cast<int>(p.clean.size()));
    pairs.push_back(&p);
  }
  const std::vector<HookKind> kinds = patched_kinds(req_.spec);
  std::vector<HookKind> target_kinds = kinds;
  target_kinds.push_back(HookKind::ResidPost);  // the final norm's input, for the LayerNorm share
  b.target.build(model_, TokenBatch::padded(target_rows), b.read_pos, pairs, target_kinds);
  if (patching) b.source.build(model_, TokenBatch::padded(source_rows), b.read_pos, pairs, kinds);
  if (req_.source != PatchSource::Resample) return;
  // The same partners as the total effect's sweep (seeded by the pair's global index).
  b.S = req_.resample_samples;
  std::map<int, int> row_of;
  std::vector<std::vector<int32_t>> rows;
  std::vector<int> read;
  for (int p = 0; p < b.P; ++p)
    for (int q : total_.resample_partners(pair_begin + p)) {
      auto [it, added] = row_of.try_emplace(q, static_cast<int>(rows.size()));
      if (added) {
        rows.push_back(data_.pairs[q].clean);
        read.push_back(read_position(data_.pairs[q]));
      }
      b.partner_row.push_back(it->second);
    }
  b.partners.build(model_, TokenBatch::padded(rows), read, false, kinds);
}

const float* SelfRepairRunner::source_value(const PatchCell& cell, int pair, int sample, int t) const {
  const Block& b = *block_;
  const ModelConfig& lc = model_.local_config();
  switch (req_.source) {
    case PatchSource::Zero: return nullptr;
    case PatchSource::Mean:
      return component_at(cell, total_.dataset_mean(cell.kind, cell.layer).data(), lc, t);
    case PatchSource::Resample:
      return component_at(cell, b.partners.row(cell.kind, cell.layer, b.partner_row[pair * b.S + sample]), lc, t);
    default:
      return component_at(cell, b.source.row({cell.kind, cell.layer}, pair), lc, t);
  }
}

void SelfRepairRunner::run_block(int pair_begin, int pair_end, int cell_begin, int cell_end, float* effect,
                                 SweepBaselines& base, const SweepProgress& progress) {
  if (cell_begin % kQuantities || cell_end % kQuantities)
    throw std::invalid_argument("self_repair: cells must come in whole components");
  const ModelConfig& cfg = model_.config();
  const ModelConfig& lc = model_.local_config();
  const TensorShard& shard = model_.shard();
  const int c0 = cell_begin / kQuantities, c1 = cell_end / kQuantities, n = c1 - c0;
  const int P = pair_end - pair_begin;
  const int S = req_.source == PatchSource::Resample ? req_.resample_samples : 1;
  std::vector<float> total(static_cast<size_t>(P) * n);
  total_.run_block(pair_begin, pair_end, c0, c1, total.data(), base, progress);
  if (!block_ || block_->begin != pair_begin || block_->P != P) prepare(pair_begin, pair_end);
  const Block& b = *block_;

  // Direct effects and LayerNorm shares, each from the rank holding the component and summed
  // over the replica (residual-stream components by tp rank 0). The share is the final norm's
  // reaction to the component's own change: the unpatched final residual x plus the change's
  // residual term d, read at its own scale, minus the same read at the frozen scale.
  const int C = cfg.n_embd;
  std::vector<float> direct(static_cast<size_t>(P) * n, 0.0f), ln(direct.size(), 0.0f), diff, delta(C), y(C);
  for (int p = 0; p < P; ++p)
    for (int c = 0; c < n; ++c) {
      const PatchCell cell = positions_.in_pair(total_.grid().cells[c0 + c], pair_begin + p);
      const int t = b.read_pos[p];
      if (cell.pos >= b.length[p] || (cell.pos >= 0 && cell.pos != t)) continue;
      const std::optional<PatchCell> mine = local_cell(cell, shard, cfg);
      if (!mine || (shard.rank != 0 && shard_axis(cell.kind, cfg) == ShardAxis::None)) continue;
      const HookGeometry g = hook_geometry(cell.kind, lc);
      const int64_t width = cell.kind == HookKind::MlpPost ? 1 : g.width;
      const float* tgt = component_at(*mine, b.target.row({cell.kind, cell.layer}, p), lc, t);
      const float* x = b.target.row({HookKind::ResidPost, cfg.n_layer - 1}, p) + static_cast<int64_t>(t) * C;
      const std::vector<float>& v = b.target.direction(p).v;
      const double s = b.target.final_scale(p, t);
      diff.resize(width);
      double d_sum = 0.0, ln_sum = 0.0;
      for (int k = 0; k < S; ++k) {
        const float* src = source_value(*mine, p, k, t);
        for (int64_t i = 0; i < width; ++i) diff[i] = (src ? src[i] : 0.0f) - tgt[i];
        d_sum += b.target.direct(*mine, p, t, diff.data());
        b.target.residual_term(*mine, p, t, diff.data(), delta.data());
        double a = 0.0;
        for (int i = 0; i < C; ++i) a += static_cast<double>(y[i] = x[i] + delta[i]) * v[i];
        ln_sum += a / final_norm_scale(cfg, y.data()) - a / s;
      }
      direct[p * n + c] = static_cast<float>(d_sum / S);
      ln[p * n + c] = static_cast<float>(ln_sum / S);
    }
  if (shard.sharded() && model_.tp()) {
    model_.tp()->allreduce_sum(direct.data(), static_cast<int64_t>(direct.size()));
    model_.tp()->allreduce_sum(ln.data(), static_cast<int64_t>(ln.size()));
  }
  for (int p = 0; p < P; ++p)
    for (int c = 0; c < n; ++c) {
      float* out = effect + (static_cast<int64_t>(p) * n + c) * kQuantities;
      const double tot = total[p * n + c] - b.target.logit_diff(p);
      const double d = direct[p * n + c], l = ln[p * n + c];
      const double q[kQuantities] = {tot, d, l, tot - d, tot - d - l};
      for (int i = 0; i < kQuantities; ++i) out[i] = std::isnan(total[p * n + c]) ? kNaN : static_cast<float>(q[i]);
    }
}

}  // namespace causeway
