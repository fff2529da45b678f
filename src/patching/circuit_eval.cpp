#include "patching/circuit_eval.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "core/error.h"
#include "patching/metric.h"
#include "patching/metric_gradient.h"

namespace causeway {

namespace {

// Each batch row's resid_pre from the target run of its pair; a part-way edge forward
// recomputes every position (row_begin 0), so keys and values are never read.
class TargetPrefix final : public PrefixSource {
 public:
  TargetPrefix(const float* resid, int P, int64_t TC, const int* pair_of_row)
      : resid_(resid), P_(P), TC_(TC), pair_(pair_of_row) {}
  const float* resid_pre(int row, int layer) const override {
    return resid_ + (static_cast<int64_t>(layer) * P_ + pair_[row]) * TC_;
  }
  const float* keys(int, int) const override { throw std::logic_error("TargetPrefix: no keys"); }
  const float* values(int, int) const override { throw std::logic_error("TargetPrefix: no values"); }

 private:
  const float* resid_;
  int P_;
  int64_t TC_;
  const int* pair_;
};

}  // namespace

CircuitRuns::CircuitRuns(EdgeRunner& runner, const PairDataset& data, int begin, int end,
                         EdgeAblation ablation, Direction direction)
    : runner_(runner), ep_(causeway::edge_pairs(data, begin, end)) {
  const bool denoise = direction == Direction::Denoising;
  if (denoise && ablation == EdgeAblation::Mean)
    throw std::invalid_argument("CircuitRuns: mean ablation ablates the clean run (noising)");
  target_batch_ = denoise ? &ep_.corrupted : &ep_.clean;
  const ModelConfig& cfg = runner.model().config();
  const int P = pairs(), T = ep_.clean.T;
  const int64_t S = runner.graph().n_senders(), V = cfg.vocab_size, TC = static_cast<int64_t>(T) * cfg.n_embd;
  row_size_ = S * TC;
  target_.resize(static_cast<size_t>(P * row_size_));
  HookPlan plan(cfg.n_layer);
  for (int L = 0; L < cfg.n_layer; ++L) plan.cache({HookKind::ResidPre, L});
  const Tensor logits = runner.run_recording(*target_batch_, ep_.read, plan, target_.data());
  clean_ld_ = logit_diffs(runner.model(), ep_.pairs, logits.data);
  clean_logits_.assign(logits.data, logits.data + P * V);
  resid_.resize(static_cast<size_t>(cfg.n_layer * P * TC));
  for (int L = 0; L < cfg.n_layer; ++L) {
    const Tensor& r = plan.activations().at(HookPoint{HookKind::ResidPre, L});
    std::copy_n(r.data, P * TC, resid_.begin() + L * P * TC);
  }
  if (ablation == EdgeAblation::Corrupted) {
    source_.resize(target_.size());
    HookPlan other(cfg.n_layer);
    const Tensor other_logits =
        runner.run_recording(denoise ? ep_.clean : ep_.corrupted, ep_.read, other, source_.data());
    source_ld_ = logit_diffs(runner.model(), ep_.pairs, other_logits.data);
  } else {
    // Mean ablation: each sender's mean output over the pairs' clean runs, position by
    // position, so the prompts must share one length.
    for (const PromptPair* p : ep_.pairs)
      if (static_cast<int>(p->clean.size()) != T)
        throw InputError(data.source, "line " + std::to_string(p->line),
                         "mean ablation of edges averages position by position, so every prompt "
                         "needs the same length (" + std::to_string(T) + " tokens)");
    std::vector<float> mean(static_cast<size_t>(row_size_), 0.0f);
    for (int p = 0; p < P; ++p)
      for (int64_t i = 0; i < row_size_; ++i) mean[static_cast<size_t>(i)] += target_[static_cast<size_t>(p * row_size_ + i)] / static_cast<float>(P);
    source_.resize(target_.size());
    for (int p = 0; p < P; ++p) std::copy(mean.begin(), mean.end(), source_.begin() + p * row_size_);
  }
  unchanged_.assign(static_cast<size_t>(S), 1);
  for (int64_t s = 0; s < S; ++s)
    for (int p = 0; p < P && unchanged_[static_cast<size_t>(s)]; ++p) {
      const int64_t at = p * row_size_ + s * TC, n = static_cast<int64_t>(ep_.read[static_cast<size_t>(p)] + 1) * cfg.n_embd;
      unchanged_[static_cast<size_t>(s)] = std::equal(source_.begin() + at, source_.begin() + at + n, target_.begin() + at);
    }
}

std::vector<double> CircuitRuns::run(const std::vector<const std::vector<float>*>& variants,
                                     int max_rows, std::vector<double>* kl) {
  const ModelConfig& cfg = runner_.model().config();
  const CircuitGraph& g = runner_.graph();
  const int P = pairs(), T = ep_.clean.T, S = g.n_senders();
  const int64_t RS = static_cast<int64_t>(g.n_receivers()) * S, V = cfg.vocab_size;
  const int64_t N = static_cast<int64_t>(variants.size()) * P, per = std::max(1, max_rows);
  // The layer of each variant's first receiver with an ablated edge (n_layer if none).
  std::vector<int> first_layer(variants.size(), cfg.n_layer);
  for (size_t v = 0; v < variants.size() && prefix_reuse_; ++v)
    for (int r = 0; r < g.n_receivers(); ++r) {
      const float* k = variants[v]->data() + static_cast<int64_t>(r) * S;
      if (std::any_of(k, k + g.senders_into(r), [](float x) { return x != 0.0f; })) {
        first_layer[v] = g.receivers()[static_cast<size_t>(r)].layer;
        break;
      }
    }
  // Batches of `per` rows, the same for any number of ranks; this rank runs [lo, hi).
  const int64_t batches = (N + per - 1) / per;
  const int n = group_ ? group_->size() : 1, k = group_ ? group_->rank() : 0;
  const int64_t lo = batches * k / n, hi = batches * (k + 1) / n, rounds = (batches + n - 1) / n;
  std::vector<double> out(static_cast<size_t>(N), 0.0), kl_rows(kl ? static_cast<size_t>(N) : 0, 0.0);
  std::vector<int> read, pair_of_row;
  std::vector<const PromptPair*> pairs;
  for (int64_t round = 0; round < rounds; ++round) {
    if (batch_check_) batch_check_();
    const int64_t batch = lo + round;
    if (batch >= hi) continue;
    const int64_t row0 = batch * per;
    const int B = static_cast<int>(std::min(per, N - row0));
    rows_batch_.B = B, rows_batch_.T = T;
    rows_batch_.ids.resize(static_cast<size_t>(B) * T);
    rows_batch_.lengths.resize(static_cast<size_t>(B));
    rows_source_.resize(static_cast<size_t>(B * row_size_));
    rows_coef_.resize(static_cast<size_t>(B * RS));
    read.resize(static_cast<size_t>(B));
    pair_of_row.resize(static_cast<size_t>(B));
    pairs.resize(static_cast<size_t>(B));
    int start = prefix_reuse_ ? cfg.n_layer - 1 : 0;
    for (int row = 0; row < B; ++row) {
      const int64_t v = (row0 + row) / P;
      const int p = static_cast<int>((row0 + row) % P);
      std::copy_n(target_batch_->ids.begin() + static_cast<int64_t>(p) * T, T,
                  rows_batch_.ids.begin() + static_cast<int64_t>(row) * T);
      rows_batch_.lengths[static_cast<size_t>(row)] = target_batch_->lengths[static_cast<size_t>(p)];
      read[static_cast<size_t>(row)] = ep_.read[static_cast<size_t>(p)];
      pair_of_row[static_cast<size_t>(row)] = p;
      pairs[static_cast<size_t>(row)] = ep_.pairs[static_cast<size_t>(p)];
      std::copy_n(source_.begin() + p * row_size_, row_size_, rows_source_.begin() + row * row_size_);
      std::copy_n(variants[static_cast<size_t>(v)]->begin(), RS, rows_coef_.begin() + row * RS);
      start = std::min(start, first_layer[static_cast<size_t>(v)]);
    }
    const int64_t TC = static_cast<int64_t>(T) * cfg.n_embd;
    const TargetPrefix prefix(resid_.data(), P, TC, pair_of_row.data());
    const EdgeStart from{start, &prefix, target_.data(), pair_of_row.data()};
    const Tensor logits = runner_.run_patched(rows_batch_, read, rows_source_.data(), rows_coef_.data(),
                                              start > 0 ? &from : nullptr);
    const std::vector<double> ld = logit_diffs(runner_.model(), pairs, logits.data);
    std::copy(ld.begin(), ld.end(), out.begin() + row0);
    if (!kl) continue;
    PairTargets t;
    for (int row = 0; row < B; ++row) {
      t.clean_logits = clean_logits_.data() + static_cast<int64_t>(pair_of_row[static_cast<size_t>(row)]) * V;
      kl_rows[static_cast<size_t>(row0 + row)] =
          pair_metric(MetricKind::KlFromClean, t, 0.0, logits.data + static_cast<int64_t>(row) * V, static_cast<int>(V));
    }
  }
  // Every row was run by one rank and is zero on the others: the sums are the rows' values.
  if (n > 1) {
    group_->allreduce_sum(out.data(), N);
    if (kl) group_->allreduce_sum(kl_rows.data(), N);
  }
  if (kl) *kl = std::move(kl_rows);
  return out;
}

bool recovery_defined(double clean_metric, double ablated_metric) {
  const double span = std::abs(clean_metric - ablated_metric);
  return std::isfinite(span) && span > std::max(1e-3 * std::max(std::abs(clean_metric), std::abs(ablated_metric)), 1e-4);
}

std::vector<int64_t> doubling_sizes(int64_t n) {
  std::vector<int64_t> out = {0};
  for (int64_t k = 1; k < n; k *= 2) out.push_back(k);
  if (n > 0) out.push_back(n);
  return out;
}

FaithfulnessCurve faithfulness_curve(CircuitRuns& runs,
                                     const std::vector<std::pair<int, int>>& ranking,
                                     const std::vector<int64_t>& sizes, int max_rows) {
  const CircuitGraph& g = runs.graph();
  const int64_t S = g.n_senders(), R = g.n_receivers();
  std::vector<float> all_ablated(static_cast<size_t>(R * S), 0.0f);
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < g.senders_into(r); ++s) all_ablated[static_cast<size_t>(r * S + s)] = 1.0f;
  std::vector<std::vector<float>> masks;
  for (int64_t n : sizes) {
    if (n < 0 || n > static_cast<int64_t>(ranking.size()))
      throw std::invalid_argument("faithfulness_curve: size outside the ranking");
    masks.push_back(all_ablated);
    for (int64_t i = 0; i < n; ++i) {
      const auto [s, r] = ranking[static_cast<size_t>(i)];
      masks.back()[static_cast<size_t>(r * S + s)] = 0.0f;
    }
  }
  masks.push_back(all_ablated);
  std::vector<const std::vector<float>*> variants;
  for (const auto& m : masks) variants.push_back(&m);
  const std::vector<double> ld = runs.run(variants, max_rows);
  const int P = runs.pairs();
  auto mean_of = [&](size_t v) {
    double sum = 0.0;
    for (int p = 0; p < P; ++p) sum += ld[v * static_cast<size_t>(P) + static_cast<size_t>(p)];
    return sum / P;
  };
  FaithfulnessCurve c;
  for (double x : runs.clean_ld()) c.clean_metric += x / P;
  c.ablated_metric = mean_of(sizes.size());
  const bool defined = recovery_defined(c.clean_metric, c.ablated_metric);
  for (size_t i = 0; i < sizes.size(); ++i) {
    c.edges.push_back(sizes[i]);
    c.metric.push_back(mean_of(i));
    c.recovered.push_back(defined ? (c.metric.back() - c.ablated_metric) / (c.clean_metric - c.ablated_metric)
                                  : std::numeric_limits<double>::quiet_NaN());
  }
  return c;
}

}  // namespace causeway
