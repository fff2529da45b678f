#include "patching/attribution.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "backend/ops_linear.h"
#include "core/error.h"
#include "patching/patch.h"

namespace causeway {

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// The hook attention reads as queries (attention_keys_hook's twin): rotated for rotary models.
HookKind query_hook(const ModelConfig& cfg) {
  return cfg.rotary_dim > 0 ? HookKind::RotQ : HookKind::Q;
}

// One run's activations (and, for the target, gradients) per (kind, layer), batch-major.
struct RunValues {
  TokenBatch batch;
  std::vector<int> read_pos;
  std::vector<double> ld;  // logit difference per row
  HookPlan plan{0};
};

}  // namespace

struct AttributionRunner::Block {
  int begin = 0, P = 0, T = 0;
  RunValues clean, corrupted;
  RunValues* target = nullptr;
  RunValues* source = nullptr;
  // Gradient caches: [0] the plain backward; with GradDrop, [1 + l] with block l dropped.
  std::vector<ActivationCache> grads;
};

AttributionRunner::AttributionRunner(TransformerModel& model, const PairDataset& data,
                                     SweepRequest request, AttributionOptions options,
                                     const std::vector<SweepSpec>& also)
    : model_(model), data_(data), req_(std::move(request)), opt_(options) {
  if (data_.pairs.empty()) throw InputError(data_.source, "", "no prompt pairs");
  data_.require_aligned();
  if (req_.source != PatchSource::Activation)
    throw InputError("experiment", "kind",
                     "attribution patching estimates activation patching (denoising or noising); "
                     "ablation and noise sources are not supported");
  if (req_.metric != MetricKind::LogitDiff && req_.metric != MetricKind::Normalized)
    throw InputError("experiment", "metric",
                     "attribution patching supports logit_diff and normalized metrics");
  if (req_.window != 1) throw InputError("experiment", "window", "attribution patches one layer");
  grid_ = grid_for(req_.spec, model_.config(), data_);
  positions_.emplace_back(grid_, data_);
  kinds_ = patched_kinds(req_.spec);
  for (const SweepSpec& spec : also) {
    also_.push_back(grid_for(spec, model_.config(), data_));
    positions_.emplace_back(also_.back(), data_);
    for (HookKind k : patched_kinds(spec))
      if (std::find(kinds_.begin(), kinds_.end(), k) == kinds_.end()) kinds_.push_back(k);
  }
}

AttributionRunner::~AttributionRunner() = default;

void AttributionRunner::prepare(Block& blk, int pair_begin, int pair_end) {
  const ModelConfig& cfg = model_.config();
  blk.begin = pair_begin;
  blk.P = pair_end - pair_begin;
  std::vector<std::vector<int32_t>> clean_rows, corrupted_rows;
  std::vector<int> read;
  for (int i = pair_begin; i < pair_end; ++i) {
    clean_rows.push_back(data_.pairs[i].clean);
    corrupted_rows.push_back(data_.pairs[i].corrupted);
    read.push_back(read_position(data_.pairs[i]));
  }
  const bool denoise = req_.direction == Direction::Denoising;
  blk.target = denoise ? &blk.corrupted : &blk.clean;
  blk.source = denoise ? &blk.clean : &blk.corrupted;
  std::vector<HookKind> cached = kinds_;
  if (opt_.qk_fix)
    cached.insert(cached.end(), {query_hook(cfg), attention_keys_hook(cfg), HookKind::Pattern});
  // Per row, each answer's and wrong token's logit and d(logit)/d(logit before the final
  // soft-cap): 1 - (capped / cap)^2, or 1 without a cap.
  std::vector<std::vector<float>> answer_slope(blk.P), wrong_slope(blk.P);
  const float cap = cfg.final_logit_softcap;
  auto slope = [&](float capped) { return cap > 0 ? 1.0f - (capped / cap) * (capped / cap) : 1.0f; };
  for (RunValues* run : {&blk.clean, &blk.corrupted}) {
    run->batch = TokenBatch::padded(run == &blk.clean ? clean_rows : corrupted_rows);
    run->read_pos = read;
    run->plan = HookPlan(cfg.n_layer);
    for (int L = 0; L < cfg.n_layer; ++L)
      for (HookKind k : cached) run->plan.cache({k, L});
    if (run == blk.target) model_.cache_for_backward(run->plan);
    ForwardOptions o;
    o.rows = LogitRows::Last;
    o.read_pos = &run->read_pos;
    const Tensor logits = model_.forward(run->batch, run->plan, o);
    run->ld.assign(blk.P, 0.0);
    for (int p = 0; p < blk.P; ++p) {
      const PromptPair& pair = data_.pairs[pair_begin + p];
      const float* row = logits.data + static_cast<int64_t>(p) * cfg.vocab_size;
      std::vector<float> a, w;
      for (int t : pair.answers) a.push_back(row[t]);
      for (int t : pair.wrongs) w.push_back(row[t]);
      run->ld[p] = logit_diff(pair.answers, pair.wrongs, a.data(), w.data());
      if (run != blk.target) continue;
      for (float v : a) answer_slope[p].push_back(slope(v));
      for (float v : w) wrong_slope[p].push_back(slope(v));
    }
  }
  blk.T = blk.clean.batch.T;

  // The metric's gradient at ln_final's output (what backward takes): the W_U rows of the
  // answers minus the wrongs, averaged, each times its cap slope. The rows are read through
  // the embedding op, which widens a bf16 / f16 W_U.
  // Under tensor parallelism each rank adds the rows of its vocabulary block and the seed is
  // their sum over the group (vocabulary-parallel unembedding backwards).
  const int C = cfg.n_embd;
  std::vector<float> seed(static_cast<size_t>(blk.P) * blk.T * C, 0.0f), unembed(C);
  const WeightMatrix W_U = model_.weights().W_U.matrix();
  const TensorShard& shard = model_.shard();
  auto add_row = [&](float* dst, int token, float slope, float n, float sign) {
    const int32_t id = token - shard.vocab_begin;
    if (shard.sharded() && (id < 0 || id >= shard.vocab_rows)) return;
    cpu::embedding_forward(unembed.data(), &id, W_U, 1, 1.0f);
    for (int i = 0; i < C; ++i) dst[i] += sign * (slope * unembed[i] / n);
  };
  for (int p = 0; p < blk.P; ++p) {
    const PromptPair& pair = data_.pairs[pair_begin + p];
    float* row = seed.data() + (static_cast<int64_t>(p) * blk.T + read[p]) * C;
    const float na = static_cast<float>(pair.answers.size()), nw = static_cast<float>(pair.wrongs.size());
    for (size_t j = 0; j < pair.answers.size(); ++j) add_row(row, pair.answers[j], answer_slope[p][j], na, 1.0f);
    for (size_t j = 0; j < pair.wrongs.size(); ++j) add_row(row, pair.wrongs[j], wrong_slope[p][j], nw, -1.0f);
  }
  if (model_.tp()) model_.tp()->allreduce_sum(seed.data(), static_cast<int64_t>(seed.size()));
  BackwardRequest br;
  for (int L = 0; L < cfg.n_layer; ++L) {
    for (HookKind k : kinds_) br.hooks.push_back({k, L});
    if (opt_.qk_fix) br.hooks.push_back({HookKind::Pattern, L});
  }
  const int passes = opt_.grad_drop ? 1 + cfg.n_layer : 1;
  blk.grads.assign(passes, ActivationCache{});
  for (int g = 0; g < passes; ++g) {
    br.drop_layer = g - 1;
    model_.backward(blk.target->batch, blk.target->plan.activations(), seed.data(), br, blk.grads[g]);
  }
}

namespace {

// Exact change of d(metric) through the pattern when the cell's queries or keys take the
// source's values: new softmax rows minus old, times the pattern gradient (AtP*'s QK fix).
// Scores are remade as the forward makes them, from the vectors attention reads (rot_q / rot_k
// for rotary models: a patched hook_q / hook_k row becomes the source's rot_q / rot_k row, as
// both runs rotate by the same positions and q/k norms act per position and head), with the
// family's scale, soft-cap and sliding window. A k cell's kv head is read by its whole group.
double qk_fixed_estimate(const PatchCell& cell, int row, int T, int length, const ModelConfig& cfg,
                         const float* q_tgt, const float* k_tgt, const float* q_src,
                         const float* k_src, const float* pattern, const float* d_pattern) {
  const int NH = cfg.n_head, KV = cfg.kv_heads(), HS = cfg.d_head(), group = NH / KV;
  const int64_t Cq = int64_t{NH} * HS, Ck = int64_t{KV} * HS;
  const float scale = static_cast<float>(1.0 / cfg.attn_scale());
  const double cap = cfg.attn_softcap;
  const bool sliding = !cfg.sliding_layers.empty() && cfg.sliding_layers[cell.layer];
  const int window = sliding ? cfg.sliding_window : 0;
  const int64_t q_off = static_cast<int64_t>(row) * T * Cq, k_off = static_cast<int64_t>(row) * T * Ck;
  const int64_t pat_off = static_cast<int64_t>(row) * NH * T * T;
  const bool is_q = cell.kind == HookKind::Q;
  int h0 = 0, h1 = NH;  // query heads whose scores change
  if (cell.head >= 0) {
    h0 = is_q ? cell.head : cell.head * group;
    h1 = is_q ? cell.head + 1 : (cell.head + 1) * group;
  }
  std::vector<double> scores(T);
  double total = 0.0;
  for (int h = h0; h < h1; ++h)
    for (int t = 0; t < length; ++t) {
      const int s0 = window > 0 ? std::max(0, t - window + 1) : 0;
      // Query rows that change: the patched ones for q; for k, those that see a patched key.
      if (is_q && cell.pos >= 0 && t != cell.pos) continue;
      if (!is_q && cell.pos >= 0 && (t < cell.pos || cell.pos < s0)) continue;
      const float* qv = (is_q ? q_src : q_tgt) + q_off + (static_cast<int64_t>(t) * NH + h) * HS;
      double mx = -std::numeric_limits<double>::infinity();
      for (int s = s0; s <= t; ++s) {
        const bool k_patched = !is_q && (cell.pos < 0 || s == cell.pos);
        const float* kv = (k_patched ? k_src : k_tgt) + k_off +
                          (static_cast<int64_t>(s) * KV + h / group) * HS;
        double dot = 0.0;
        for (int j = 0; j < HS; ++j) dot += qv[j] * kv[j];
        scores[s] = dot * scale;
        if (cap > 0) scores[s] = cap * std::tanh(scores[s] / cap);
        mx = std::max(mx, scores[s]);
      }
      double sum = 0.0;
      for (int s = s0; s <= t; ++s) sum += (scores[s] = std::exp(scores[s] - mx));
      const int64_t prow = pat_off + (static_cast<int64_t>(h) * T + t) * T;
      for (int s = s0; s <= t; ++s) total += (scores[s] / sum - pattern[prow + s]) * d_pattern[prow + s];
    }
  return total;
}

// Whether a cell lies inside its hook: attn_head_every's one head axis over query heads names
// k / v heads a grouped-query model does not have. Such a cell patches nothing (as in
// activation patching): its estimate stays 0 and its effect is the unpatched run's metric.
bool cell_in_hook(const PatchCell& cell, const ModelConfig& cfg) {
  const HookGeometry g = hook_geometry(cell.kind, cfg);
  return g.head_major || cell.head < g.heads;
}

// The part of a cell's estimate a tensor-parallel rank adds (the replica's estimate is the sum
// over its ranks), as this rank's hook values index it: its own heads or units of a sharded
// hook; a whole hook's cell on rank 0 only. A key/value head replicated over several ranks has
// its whole gradient on each holder (the backward sums it), so its first holder counts it;
// the q/k fix instead sums each holder's own query heads. nullopt: this rank adds nothing.
std::optional<PatchCell> rank_part(const PatchCell& cell, bool exact_qk, const ModelConfig& cfg,
                                   const TensorShard& shard) {
  if (!shard.sharded()) return cell;
  const ShardAxis axis = shard_axis(cell.kind, cfg);
  if (axis == ShardAxis::None) return shard.rank == 0 ? std::optional<PatchCell>(cell) : std::nullopt;
  const bool first_kv_holder =
      shard.head_begin == shard.kv_head_begin * (cfg.n_head / cfg.kv_heads());
  if (axis == ShardAxis::KvHeads && !exact_qk && !first_kv_holder) return std::nullopt;
  return local_cell(cell, shard, cfg);
}

}  // namespace

void AttributionRunner::run_block(int pair_begin, int pair_end, int cell_begin, int cell_end,
                                  float* effect, SweepBaselines& base,
                                  const SweepProgress& progress) {
  estimate(grid_, pair_begin, pair_end, cell_begin, cell_end, effect, base);
  if (progress) progress(int64_t{1}, int64_t{1});
}

void AttributionRunner::estimate(const SweepGrid& grid, int pair_begin, int pair_end,
                                 int cell_begin, int cell_end, float* effect,
                                 SweepBaselines& base) {
  const ModelConfig& cfg = model_.config();
  const ModelConfig& local = model_.local_config();  // this rank's hook shapes
  const TensorShard& shard = model_.shard();
  if (!block_ || block_->begin != pair_begin || block_->begin + block_->P != pair_end) {
    block_ = std::make_unique<Block>();
    prepare(*block_, pair_begin, pair_end);
  }
  Block& blk = *block_;
  const int n = static_cast<int>(data_.pairs.size()), n_cells = cell_end - cell_begin, T = blk.T;
  if (base.clean_ld.size() != static_cast<size_t>(n))
    for (auto* v : {&base.clean_ld, &base.corrupted_ld, &base.clean_metric, &base.corrupted_metric})
      v->assign(n, std::numeric_limits<double>::quiet_NaN());
  auto metric_of = [&](int p, double ld) {
    if (req_.metric == MetricKind::LogitDiff) return ld;
    const double c = blk.clean.ld[p], k = blk.corrupted.ld[p];
    return (ld - k) / (c - k);
  };
  for (int p = 0; p < blk.P; ++p) {
    const int g = pair_begin + p;
    base.clean_ld[g] = blk.clean.ld[p];
    base.corrupted_ld[g] = blk.corrupted.ld[p];
    base.clean_metric[g] = metric_of(p, blk.clean.ld[p]);
    base.corrupted_metric[g] = metric_of(p, blk.corrupted.ld[p]);
  }

  // (source - target) x gradient per (kind, layer), computed once for all pairs and passes,
  // then summed over each cell's slice.
  const int passes = static_cast<int>(blk.grads.size());
  std::map<HookPoint, std::vector<float>> products;
  auto product = [&](const HookPoint& hp) -> const std::vector<float>& {
    auto it = products.find(hp);
    if (it != products.end()) return it->second;
    const Tensor& src = blk.source->plan.activations().at(hp);
    const Tensor& tgt = blk.target->plan.activations().at(hp);
    const int64_t n = src.numel();
    std::vector<float> out(static_cast<size_t>(n) * passes);
    for (int g = 0; g < passes; ++g) {
      const float* grad = blk.grads[g].at(hp).data;
#pragma omp parallel for schedule(static) if (n > (1 << 18))
      for (int64_t i = 0; i < n; ++i) out[g * n + i] = (src.data[i] - tgt.data[i]) * grad[i];
    }
    return products.emplace(hp, std::move(out)).first->second;
  };
  const PairPositions& in_pair = positions_[&grid == &grid_ ? 0 : 1 + (&grid - also_.data())];
  std::vector<double> est(static_cast<size_t>(blk.P) * n_cells * passes, 0.0);
  for (int c = cell_begin; c < cell_end; ++c) {
    const HookPoint hp{grid.cells[c].kind, grid.cells[c].layer};
    const bool exact_qk = opt_.qk_fix && (hp.kind == HookKind::Q || hp.kind == HookKind::K);
    const std::vector<float>* prod = exact_qk ? nullptr : &product(hp);
    const int64_t n = blk.source->plan.activations().at(hp).numel(), row_size = n / blk.P;
    for (int p = 0; p < blk.P; ++p) {
      const PatchCell whole = in_pair.in_pair(grid.cells[c], pair_begin + p);
      const int length = static_cast<int>(data_.pairs[pair_begin + p].clean.size());
      if (whole.pos >= length || !cell_in_hook(whole, cfg)) continue;
      const std::optional<PatchCell> part = rank_part(whole, exact_qk, cfg, shard);
      if (!part) continue;
      const PatchCell& cell = *part;
      for (int g = 0; g < passes; ++g) {
        double e;
        if (exact_qk) {
          const auto& a_t = blk.target->plan.activations();
          const auto& a_s = blk.source->plan.activations();
          const HookPoint q{query_hook(cfg), cell.layer}, k{attention_keys_hook(cfg), cell.layer};
          e = qk_fixed_estimate(cell, p, T, length, local, a_t.at(q).data, a_t.at(k).data,
                                a_s.at(q).data, a_s.at(k).data,
                                a_t.at(HookPoint{HookKind::Pattern, cell.layer}).data,
                                blk.grads[g].at(HookPoint{HookKind::Pattern, cell.layer}).data);
        } else {
          e = slice_sum(cell, prod->data() + g * n + p * row_size, local, T);
        }
        est[(static_cast<size_t>(p) * n_cells + (c - cell_begin)) * passes + g] = e;
      }
    }
  }
  // Every rank's parts -> the whole grid, in double: a normalized metric divides by the
  // clean - corrupted difference, which would magnify float rounding of the sum.
  if (const Collectives* tp = model_.tp())
    tp->allreduce_sum(est.data(), static_cast<int64_t>(est.size()));
  for (int p = 0; p < blk.P; ++p) {
    const int length = static_cast<int>(data_.pairs[pair_begin + p].clean.size());
    for (int c = cell_begin; c < cell_end; ++c) {
      float& out = effect[static_cast<int64_t>(p) * n_cells + (c - cell_begin)];
      if (in_pair.in_pair(grid.cells[c], pair_begin + p).pos >= length) {
        out = kNaN;
        continue;
      }
      const double* e = &est[(static_cast<size_t>(p) * n_cells + (c - cell_begin)) * passes];
      double delta = e[0];
      if (opt_.grad_drop) {
        // AtP* GradDrop: (1 / (L - 1)) sum_l |estimate with block l dropped|, with AtP's sign.
        double mag = 0.0;
        for (int g = 1; g < passes; ++g) mag += std::abs(e[g]);
        mag /= std::max(1, cfg.n_layer - 1);
        delta = std::copysign(mag, e[0]);
      }
      out = static_cast<float>(metric_of(p, blk.target->ld[p] + delta));
    }
  }
}

SweepResult AttributionRunner::run() { return run_all().front(); }

std::vector<SweepResult> AttributionRunner::run_all() {
  std::vector<const SweepGrid*> grids{&grid_};
  for (const SweepGrid& g : also_) grids.push_back(&g);
  std::vector<SweepResult> out(grids.size());
  const int P = static_cast<int>(data_.pairs.size());
  for (size_t i = 0; i < grids.size(); ++i) {
    out[i].grid = *grids[i];
    out[i].n_pairs = P;
    out[i].effect.assign(static_cast<size_t>(P) * grids[i]->cells.size(), 0.0f);
  }
  for (int b = 0; b < P; b += req_.pairs_per_block) {
    const int e = std::min(P, b + req_.pairs_per_block);
    for (size_t i = 0; i < grids.size(); ++i) {
      const int n_cells = static_cast<int>(grids[i]->cells.size());
      estimate(*grids[i], b, e, 0, n_cells, out[i].effect.data() + static_cast<int64_t>(b) * n_cells,
               out[i].baselines);
    }
  }
  for (SweepResult& r : out)
    r.mean = sweep_mean(req_.metric, r.effect, r.baselines, P, static_cast<int64_t>(r.grid.cells.size()));
  return out;
}

}  // namespace causeway
