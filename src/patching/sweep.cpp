#include "patching/sweep.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>

#include "core/error.h"
#include "patching/patch.h"
#include "patching/run_cache.h"
#include "patching/sharded_metric.h"
#include "patching/sweep_noise.h"

namespace causeway {

namespace {

constexpr int kZeroSource = -1;
constexpr int kMeanSource = -2;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

bool touches(const PatchCell& c, HookKind kind, int layer, int window) {
  return c.kind == kind && layer >= c.layer && layer < c.layer + window;
}

}  // namespace

int read_position(const PromptPair& pair) {
  const int n = static_cast<int>(pair.clean.size());
  return pair.answer_pos < 0 ? n + pair.answer_pos : pair.answer_pos;
}

std::vector<int> SweepRunner::resample_partners(int pair) const {
  std::mt19937_64 rng(req_.seed * 1000003ULL + static_cast<uint64_t>(pair));
  std::uniform_int_distribution<int> other(0, n_pairs() - 2);
  std::vector<int> partners;
  for (int s = 0; s < req_.resample_samples; ++s) {
    const int q = other(rng);
    partners.push_back(q + (q >= pair));
  }
  return partners;
}

// Baselines of one block of pairs and the (pair, sample) instances patched from them.
struct SweepRunner::Block {
  struct Instance {
    int pair;        // within the block
    int target_run;  // row of `target`
    int source_run;  // row of `source`, or kZeroSource / kMeanSource
  };
  int begin = 0, P = 0, T = 0, per_pair = 1;
  std::vector<int> read_pos, length;
  RunCache clean, corrupted, noisy, partners;
  const RunCache* target = nullptr;
  const RunCache* source = nullptr;
  std::vector<Instance> instances;
  std::vector<double> target_metric;  // per pair: the unpatched target run's metric
};

SweepRunner::~SweepRunner() = default;

SweepRunner::SweepRunner(TransformerModel& model, const PairDataset& data, SweepRequest request)
    : model_(model), data_(data), req_(std::move(request)) {
  if (data_.pairs.empty()) throw InputError(data_.source, "", "no prompt pairs");
  data_.require_aligned();
  for (const PromptPair& p : data_.pairs)
    grid_T_ = std::max(grid_T_, static_cast<int>(p.clean.size()));
  grid_ = grid_for(req_.spec, model_.config(), data_);
  positions_ = PairPositions(grid_, data_);
  kinds_ = patched_kinds(req_.spec);
  if (req_.window < 1) throw InputError("experiment", "window", "must be at least 1");
  if (req_.source == PatchSource::Resample && req_.resample_samples < 1)
    throw InputError("experiment", "samples", "must be at least 1");
  if (req_.source == PatchSource::Noise && req_.noise.samples < 1)
    throw InputError("experiment", "noise_samples", "must be at least 1");
  if (req_.source == PatchSource::Resample && n_pairs() < 2)
    throw InputError(data_.source, "", "resample ablation needs at least 2 pairs");
  if (req_.source == PatchSource::Mean || req_.source == PatchSource::Resample)
    require_one_length();
  if (req_.source == PatchSource::Mean) compute_means();
}

// Mean and resample ablation take values from other prompts position by position, so every
// prompt must have the same length.
void SweepRunner::require_one_length() const {
  const size_t first = data_.pairs.front().clean.size();
  for (const PromptPair& p : data_.pairs)
    if (p.clean.size() != first)
      throw InputError(data_.source, "line " + std::to_string(p.line),
                       "mean and resample ablation need prompts of one length (this one has " +
                           std::to_string(p.clean.size()) + " tokens, line " +
                           std::to_string(data_.pairs.front().line) + " has " +
                           std::to_string(first) + ")");
}

// Dataset means of every patched hook at every layer, for mean ablation.
void SweepRunner::compute_means() {
  const ModelConfig& cfg = model_.config();
  means_.assign(kinds_.size() * cfg.n_layer, {});
  const int n = n_pairs();
  for (int b = 0; b < n; b += req_.pairs_per_block) {
    const int e = std::min(n, b + req_.pairs_per_block);
    std::vector<std::vector<int32_t>> rows;
    std::vector<int> read;
    for (int i = b; i < e; ++i) {
      rows.push_back(data_.pairs[i].clean);
      read.push_back(read_position(data_.pairs[i]));
    }
    RunCache cache;
    cache.build(model_, TokenBatch::padded(rows), read, false, kinds_);
    for (size_t k = 0; k < kinds_.size(); ++k)
      for (int L = 0; L < cfg.n_layer; ++L) {
        auto& m = means_[k * cfg.n_layer + L];
        // Under tensor parallelism, the mean of this rank's heads or units (local shapes).
        const int64_t size = hook_row_size(kinds_[k], model_.local_config(), grid_T_, grid_T_);
        m.resize(size, 0.0f);
        for (int r = 0; r < e - b; ++r) {
          const float* x = cache.row(kinds_[k], L, r);
          for (int64_t j = 0; j < size; ++j) m[j] += x[j] / n;
        }
      }
  }
  if (req_.mean_per_position) return;
  for (size_t k = 0; k < kinds_.size(); ++k) {
    if (kinds_[k] == HookKind::Pattern || kinds_[k] == HookKind::AttnScores)
      throw InputError("experiment", "mean_over",
                       "a mean over all positions is not defined for attention patterns");
    for (int L = 0; L < cfg.n_layer; ++L) {
      auto& m = means_[k * cfg.n_layer + L];
      const int64_t width = static_cast<int64_t>(m.size()) / grid_T_;
      for (int64_t j = 0; j < width; ++j) {
        double s = 0.0;
        for (int t = 0; t < grid_T_; ++t) s += m[t * width + j];
        for (int t = 0; t < grid_T_; ++t) m[t * width + j] = static_cast<float>(s / grid_T_);
      }
    }
  }
}

const std::vector<float>& SweepRunner::dataset_mean(HookKind kind, int layer) const {
  static const std::vector<float> kNone;
  const auto k = std::find(kinds_.begin(), kinds_.end(), kind);
  if (means_.empty() || k == kinds_.end()) return kNone;
  return means_[static_cast<size_t>(k - kinds_.begin()) * model_.config().n_layer + layer];
}

void SweepRunner::prepare(Block& blk, int pair_begin, int pair_end) {
  const ModelConfig& cfg = model_.config();
  blk.begin = pair_begin;
  blk.P = pair_end - pair_begin;
  std::vector<std::vector<int32_t>> clean_rows, corrupted_rows;
  blk.read_pos.clear();
  blk.length.clear();
  for (int i = pair_begin; i < pair_end; ++i) {
    const PromptPair& p = data_.pairs[i];
    clean_rows.push_back(p.clean);
    corrupted_rows.push_back(p.corrupted);
    blk.read_pos.push_back(read_position(p));
    blk.length.push_back(static_cast<int>(p.clean.size()));
  }
  const TokenBatch clean = TokenBatch::padded(clean_rows);
  blk.T = clean.T;
  const std::vector<HookKind> none;
  blk.instances.clear();

  switch (req_.source) {
    case PatchSource::Activation: {
      const bool denoise = req_.direction == Direction::Denoising;
      blk.clean.build(model_, clean, blk.read_pos, !denoise, denoise ? kinds_ : none);
      blk.corrupted.build(model_, TokenBatch::padded(corrupted_rows), blk.read_pos, denoise,
                          denoise ? none : kinds_);
      blk.target = denoise ? &blk.corrupted : &blk.clean;
      blk.source = denoise ? &blk.clean : &blk.corrupted;
      for (int p = 0; p < blk.P; ++p) blk.instances.push_back({p, p, p});
      blk.per_pair = 1;
      break;
    }
    case PatchSource::Zero:
    case PatchSource::Mean:
    case PatchSource::Resample: {
      const bool resample = req_.source == PatchSource::Resample;
      blk.clean.build(model_, clean, blk.read_pos, true, none);
      blk.corrupted.build(model_, TokenBatch::padded(corrupted_rows), blk.read_pos, false, none);
      blk.target = blk.source = &blk.clean;
      blk.per_pair = resample ? req_.resample_samples : 1;
      if (!resample) {
        const int src = req_.source == PatchSource::Zero ? kZeroSource : kMeanSource;
        for (int p = 0; p < blk.P; ++p) blk.instances.push_back({p, p, src});
        break;
      }
      // Partners come from the whole data set, seeded by the pair's global index, so results
      // do not depend on how pairs are split into blocks or over ranks.
      std::map<int, int> partner_row;
      std::vector<std::vector<int32_t>> partner_rows;
      std::vector<int> partner_read;
      for (int p = 0; p < blk.P; ++p) {
        for (int q : resample_partners(pair_begin + p)) {
          auto [it, added] = partner_row.try_emplace(q, static_cast<int>(partner_rows.size()));
          if (added) {
            partner_rows.push_back(data_.pairs[q].clean);
            partner_read.push_back(read_position(data_.pairs[q]));
          }
          blk.instances.push_back({p, p, it->second});
        }
      }
      blk.partners.build(model_, TokenBatch::padded(partner_rows), partner_read, false, kinds_);
      blk.source = &blk.partners;
      break;
    }
    case PatchSource::Noise: {
      blk.clean.build(model_, clean, blk.read_pos, false, kinds_);
      const int S = req_.noise.samples;
      std::vector<std::vector<int32_t>> noisy_rows;
      std::vector<int> noisy_read;
      for (int p = 0; p < blk.P; ++p)
        for (int s = 0; s < S; ++s) {
          noisy_rows.push_back(clean_rows[p]);
          noisy_read.push_back(blk.read_pos[p]);
        }
      const float sigma = static_cast<float>(req_.noise.scale * embedding_noise_std(model_));
      const auto positions = req_.noise.positions;
      const int C = cfg.n_embd;
      const int block_begin = pair_begin;
      const uint64_t seed = req_.seed;
      HookFn add_noise = [=](const HookContext& ctx, Tensor& x) {
        for (int r = 0; r < ctx.B; ++r) {
          const int pair = block_begin + r / S, sample = r % S;
          std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(pair) * 7919ULL +
                              static_cast<uint64_t>(sample));
          std::normal_distribution<float> noise(0.0f, sigma);
          for (int t = 0; t < ctx.T; ++t) {
            if (!positions.empty() &&
                std::find(positions.begin(), positions.end(), t) == positions.end())
              continue;
            float* row = x.data + (static_cast<int64_t>(r) * ctx.T + t) * C;
            for (int i = 0; i < C; ++i) row[i] += noise(rng);
          }
        }
      };
      blk.noisy.build(model_, TokenBatch::padded(noisy_rows), noisy_read, true, none, add_noise);
      blk.target = &blk.noisy;
      blk.source = &blk.clean;
      blk.per_pair = S;
      for (int p = 0; p < blk.P; ++p)
        for (int s = 0; s < S; ++s) blk.instances.push_back({p, p * S + s, p});
      break;
    }
  }
}

void SweepRunner::run_block(int pair_begin, int pair_end, int cell_begin, int cell_end,
                            float* effect, SweepBaselines& base, const SweepProgress& progress) {
  const ModelConfig& cfg = model_.config();
  const int V = cfg.vocab_size, n_cells = cell_end - cell_begin;
  // Consecutive work items of one pair block share its baseline runs.
  if (!block_ || block_->begin != pair_begin || block_->begin + block_->P != pair_end) {
    block_ = std::make_unique<Block>();
    prepare(*block_, pair_begin, pair_end);
  }
  Block& blk = *block_;
  const bool full_vocab = needs_full_vocab(req_.metric);
  // Under tensor parallelism full-vocabulary metrics of patched rows reduce over the ranks'
  // vocabulary blocks instead of gathering whole rows (baselines, once per block, gather).
  const TensorShard& shard = model_.shard();
  const bool split_vocab = full_vocab && shard.sharded();

  // Baselines: metric of the clean run, the corrupted (or noised) run, and the target run.
  if (base.clean_ld.size() != static_cast<size_t>(n_pairs())) {
    for (auto* v : {&base.clean_ld, &base.corrupted_ld, &base.clean_metric, &base.corrupted_metric})
      v->assign(n_pairs(), std::numeric_limits<double>::quiet_NaN());
  }
  std::vector<PairTargets> targets(blk.P);
  auto ld_of_row = [&](const PromptPair& pair, const float* logits) {
    std::vector<float> a, w;
    for (int t : pair.answers) a.push_back(logits[t]);
    for (int t : pair.wrongs) w.push_back(logits[t]);
    return logit_diff(std::vector<int>(pair.answers.begin(), pair.answers.end()),
                      std::vector<int>(pair.wrongs.begin(), pair.wrongs.end()), a.data(),
                      w.data());
  };
  const RunCache& corrupt_like =
      req_.source == PatchSource::Noise ? blk.noisy : blk.corrupted;
  const int corrupt_per_pair = req_.source == PatchSource::Noise ? blk.per_pair : 1;
  for (int p = 0; p < blk.P; ++p) {
    const PromptPair& pair = data_.pairs[blk.begin + p];
    PairTargets& t = targets[p];
    t.answers.assign(pair.answers.begin(), pair.answers.end());
    t.wrongs.assign(pair.wrongs.begin(), pair.wrongs.end());
    t.read_pos = blk.read_pos[p];
    t.clean_logits = blk.clean.last_logits().data() + static_cast<int64_t>(p) * V;
    t.clean_ld = ld_of_row(pair, t.clean_logits);
    double corr_ld = 0.0;
    for (int s = 0; s < corrupt_per_pair; ++s)
      corr_ld += ld_of_row(pair, corrupt_like.last_logits().data() +
                                     static_cast<int64_t>(p * corrupt_per_pair + s) * V);
    t.corrupted_ld = corr_ld / corrupt_per_pair;
  }
  for (int p = 0; p < blk.P; ++p) {
    const PromptPair& pair = data_.pairs[blk.begin + p];
    PairTargets& t = targets[p];
    const int g = blk.begin + p;
    base.clean_ld[g] = t.clean_ld;
    base.corrupted_ld[g] = t.corrupted_ld;
    base.clean_metric[g] = pair_metric(req_.metric, t, t.clean_ld, t.clean_logits, V);
    double cm = 0.0;
    for (int s = 0; s < corrupt_per_pair; ++s) {
      const float* row = corrupt_like.last_logits().data() +
                         static_cast<int64_t>(p * corrupt_per_pair + s) * V;
      cm += pair_metric(req_.metric, t, ld_of_row(pair, row), row, V);
    }
    base.corrupted_metric[g] = cm / corrupt_per_pair;
  }

  // Work rows: (cell, instance). A cell at a position past the pair's prompt is NaN; one past
  // the read position cannot change the metric, so it gets the target's own value.
  struct Row {
    int cell, instance, start_layer, row_begin;
  };
  std::vector<Row> rows;
  std::fill(effect, effect + static_cast<int64_t>(blk.P) * n_cells, 0.0f);
  for (int c = cell_begin; c < cell_end; ++c) {
    for (int i = 0; i < static_cast<int>(blk.instances.size()); ++i) {
      const auto& inst = blk.instances[i];
      const PatchCell cell = positions_.in_pair(grid_.cells[c], blk.begin + inst.pair);
      float& out = effect[static_cast<int64_t>(inst.pair) * n_cells + (c - cell_begin)];
      const int first = std::max(first_affected_position(cell), cell.src);
      if (cell.pos >= blk.length[inst.pair]) {
        out = kNaN;
        continue;
      }
      // Past the read position, or a head the model lacks: the unpatched target's value.
      if (first > blk.read_pos[inst.pair] || !cell_applicable(cell, cfg)) {
        const float* row = blk.target->last_logits().data() + static_cast<int64_t>(inst.target_run) * V;
        const double ld = ld_of_row(data_.pairs[blk.begin + inst.pair], row);
        out += static_cast<float>(pair_metric(req_.metric, targets[inst.pair], ld, row, V) /
                                  blk.per_pair);
        continue;
      }
      const int rb = req_.optimized ? first_affected_position(cell) : 0;
      rows.push_back({c, i, req_.optimized ? cell.layer : 0, rb});
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.start_layer, a.row_begin) < std::tie(b.start_layer, b.row_begin);
  });

  const int64_t total = static_cast<int64_t>(rows.size());
  int64_t done = 0;
  std::vector<float> answer_logits, local_logits;
  std::vector<double> split_values;
  std::vector<const PairTargets*> row_targets;
  for (size_t begin = 0; begin < rows.size();) {
    size_t end = begin;
    while (end < rows.size() && end - begin < static_cast<size_t>(req_.max_rows) &&
           rows[end].start_layer == rows[begin].start_layer &&
           rows[end].row_begin == rows[begin].row_begin)
      ++end;
    const int B = static_cast<int>(end - begin), start = rows[begin].start_layer,
              rb = rows[begin].row_begin;

    TokenBatch tb;
    tb.B = B, tb.T = blk.T;
    tb.ids.resize(static_cast<size_t>(B) * blk.T);
    std::vector<int> run_of_row(B), read(B);
    for (int r = 0; r < B; ++r) {
      const auto& inst = blk.instances[rows[begin + r].instance];
      run_of_row[r] = inst.target_run;
      read[r] = blk.read_pos[inst.pair];
      tb.lengths.push_back(blk.length[inst.pair]);
      const auto& ids = blk.target->batch().ids;
      std::copy(ids.begin() + static_cast<int64_t>(inst.target_run) * blk.T,
                ids.begin() + static_cast<int64_t>(inst.target_run + 1) * blk.T,
                tb.ids.begin() + static_cast<int64_t>(r) * blk.T);
    }

    HookPlan plan(cfg.n_layer);
    for (size_t k = 0; k < kinds_.size(); ++k)
      for (int L = start; L < cfg.n_layer; ++L) {
        bool any = false;
        for (int r = 0; r < B && !any; ++r)
          any = touches(grid_.cells[rows[begin + r].cell], kinds_[k], L, req_.window);
        if (!any) continue;
        const HookKind kind = kinds_[k];
        // Hook values, caches and means hold this rank's heads and units under tensor
        // parallelism: a cell is patched by the rank holding it, in local numbering.
        plan.add({kind, L}, [&, kind, L, k](const HookContext& ctx, Tensor& value) {
          const ModelConfig& local = model_.local_config();
          const int64_t size = hook_row_size(kind, local, ctx.T - ctx.row_begin, ctx.T);
          for (int r = 0; r < ctx.B; ++r) {
            const auto& inst = blk.instances[rows[begin + r].instance];
            PatchCell cell = positions_.in_pair(grid_.cells[rows[begin + r].cell], blk.begin + inst.pair);
            if (!touches(cell, kind, L, req_.window)) continue;
            cell.layer = L;
            const std::optional<PatchCell> mine = local_cell(cell, model_.shard(), cfg);
            if (!mine) continue;
            const float* src = inst.source_run == kZeroSource ? nullptr
                               : inst.source_run == kMeanSource
                                   ? means_[k * cfg.n_layer + L].data()
                                   : blk.source->row(kind, L, inst.source_run);
            apply_patch(*mine, src, value.data + r * size, local, ctx.T, ctx.row_begin);
          }
        });
      }

    ForwardOptions o;
    o.rows = full_vocab && !split_vocab ? LogitRows::Last : LogitRows::None;
    o.read_pos = &read;
    const bool use_prefix = req_.optimized || req_.source == PatchSource::Noise;
    RunPrefix prefix(*blk.target, run_of_row);
    if (use_prefix) {
      o.prefix = &prefix;
      o.start_layer = start;
      o.row_begin = rb;
    }
    const Tensor logits = model_.forward(tb, plan, o);
    const Tensor final = model_.final_residual();
    if (split_vocab) {
      local_logits.resize(static_cast<size_t>(B) * shard.vocab_rows);
      model_.unembed_local(final, local_logits.data());
      row_targets.clear();
      for (int r = 0; r < B; ++r) row_targets.push_back(&targets[blk.instances[rows[begin + r].instance].pair]);
      split_values.resize(B);
      sharded_pair_metrics(req_.metric, row_targets, local_logits.data(), shard.vocab_begin,
                           shard.vocab_rows, V, *model_.tp(), split_values.data());
    }
    for (int r = 0; r < B; ++r) {
      const Row& row = rows[begin + r];
      const auto& inst = blk.instances[row.instance];
      const PromptPair& pair = data_.pairs[blk.begin + inst.pair];
      const PairTargets& t = targets[inst.pair];
      double value;
      if (split_vocab) {
        value = split_values[r];
      } else if (full_vocab) {
        const float* lrow = logits.data + static_cast<int64_t>(r) * V;
        value = pair_metric(req_.metric, t, ld_of_row(pair, lrow), lrow, V);
      } else {
        const int na = static_cast<int>(t.answers.size()), nw = static_cast<int>(t.wrongs.size());
        answer_logits.resize(na + nw);
        const Tensor one{final.data + static_cast<int64_t>(r) * cfg.n_embd, Shape{1, cfg.n_embd}};
        model_.unembed_tokens(one, pair.answers.data(), na, answer_logits.data());
        model_.unembed_tokens(one, pair.wrongs.data(), nw, answer_logits.data() + na);
        const double ld = logit_diff(t.answers, t.wrongs, answer_logits.data(),
                                     answer_logits.data() + na);
        value = pair_metric(req_.metric, t, ld, nullptr, V);
      }
      effect[static_cast<int64_t>(inst.pair) * n_cells + (row.cell - cell_begin)] +=
          static_cast<float>(value / blk.per_pair);
    }
    done += B;
    if (progress) progress(done, total);
    begin = end;
  }
}

std::vector<float> SweepRunner::mean_of(const std::vector<float>& effect,
                                        const SweepBaselines& b) const {
  return sweep_mean(req_.metric, effect, b, n_pairs(), static_cast<int64_t>(grid_.cells.size()));
}

std::vector<float> sweep_mean(MetricKind metric, const std::vector<float>& effect,
                              const SweepBaselines& b, int n_pairs, int64_t n_cells) {
  const bool normalized = metric == MetricKind::Normalized;
  std::vector<float> mean(static_cast<size_t>(n_cells));
  for (int64_t c = 0; c < n_cells; ++c) {
    double s = 0.0, clean = 0.0, corrupted = 0.0;
    int n = 0;
    for (int p = 0; p < n_pairs; ++p) {
      const float e = effect[static_cast<int64_t>(p) * n_cells + c];
      if (std::isnan(e)) continue;
      // Normalized values are stored per pair; undo that to average raw logit differences.
      s += normalized ? b.corrupted_ld[p] + e * (b.clean_ld[p] - b.corrupted_ld[p]) : e;
      if (normalized) clean += b.clean_ld[p], corrupted += b.corrupted_ld[p];
      ++n;
    }
    if (n == 0) mean[c] = kNaN;
    else if (normalized) mean[c] = static_cast<float>(normalized_batch_mean(s / n, clean / n, corrupted / n));
    else mean[c] = static_cast<float>(s / n);
  }
  return mean;
}

SweepResult SweepRunner::run(const SweepProgress& progress) {
  SweepResult res;
  res.grid = grid_;
  res.n_pairs = n_pairs();
  const int n_cells = static_cast<int>(grid_.cells.size());
  res.effect.assign(static_cast<size_t>(res.n_pairs) * n_cells, 0.0f);
  for (int b = 0; b < res.n_pairs; b += req_.pairs_per_block) {
    const int e = std::min(res.n_pairs, b + req_.pairs_per_block);
    run_block(b, e, 0, n_cells, res.effect.data() + static_cast<int64_t>(b) * n_cells,
              res.baselines, progress);
  }
  res.mean = mean_of(res.effect, res.baselines);
  return res;
}

}  // namespace causeway
