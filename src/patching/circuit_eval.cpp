#include "patching/circuit_eval.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/error.h"
#include "patching/metric.h"
#include "patching/metric_gradient.h"

namespace causeway {

CircuitRuns::CircuitRuns(EdgeRunner& runner, const PairDataset& data, int begin, int end,
                         EdgeAblation ablation, Direction direction)
    : runner_(runner), ep_(causeway::edge_pairs(data, begin, end)) {
  const bool denoise = direction == Direction::Denoising;
  if (denoise && ablation == EdgeAblation::Mean)
    throw std::invalid_argument("CircuitRuns: mean ablation ablates the clean run (noising)");
  target_ = denoise ? &ep_.corrupted : &ep_.clean;
  const ModelConfig& cfg = runner.model().config();
  const int P = pairs(), T = ep_.clean.T;
  const int64_t S = runner.graph().n_senders(), V = cfg.vocab_size;
  row_size_ = S * T * cfg.n_embd;
  std::vector<float> clean(static_cast<size_t>(P * row_size_));
  HookPlan plan(cfg.n_layer);
  const Tensor logits = runner.run_recording(*target_, ep_.read, plan, clean.data());
  clean_ld_ = logit_diffs(runner.model(), ep_.pairs, logits.data);
  clean_logits_.assign(logits.data, logits.data + P * V);
  if (ablation == EdgeAblation::Corrupted) {
    source_.resize(clean.size());
    HookPlan other(cfg.n_layer);
    const Tensor other_logits =
        runner.run_recording(denoise ? ep_.clean : ep_.corrupted, ep_.read, other, source_.data());
    source_ld_ = logit_diffs(runner.model(), ep_.pairs, other_logits.data);
    return;
  }
  // Mean ablation: each sender's mean output over the pairs' clean runs, position by position,
  // so the prompts must share one length.
  for (const PromptPair* p : ep_.pairs)
    if (static_cast<int>(p->clean.size()) != T)
      throw InputError(data.source, "line " + std::to_string(p->line),
                       "mean ablation of edges averages position by position, so every prompt "
                       "needs the same length (" + std::to_string(T) + " tokens)");
  std::vector<float> mean(static_cast<size_t>(row_size_), 0.0f);
  for (int p = 0; p < P; ++p)
    for (int64_t i = 0; i < row_size_; ++i) mean[static_cast<size_t>(i)] += clean[static_cast<size_t>(p * row_size_ + i)] / static_cast<float>(P);
  source_.resize(clean.size());
  for (int p = 0; p < P; ++p) std::copy(mean.begin(), mean.end(), source_.begin() + p * row_size_);
}

std::vector<double> CircuitRuns::run(const std::vector<const std::vector<float>*>& variants,
                                     int max_rows, std::vector<double>* kl) {
  const ModelConfig& cfg = runner_.model().config();
  const CircuitGraph& g = runner_.graph();
  const int P = pairs(), T = ep_.clean.T;
  const int64_t RS = static_cast<int64_t>(g.n_receivers()) * g.n_senders(), V = cfg.vocab_size;
  const int per_batch = std::max(1, max_rows / P);
  std::vector<double> out;
  if (kl) kl->clear();
  for (size_t v0 = 0; v0 < variants.size(); v0 += static_cast<size_t>(per_batch)) {
    const int nv = static_cast<int>(std::min(variants.size() - v0, static_cast<size_t>(per_batch)));
    const int B = nv * P;
    rows_batch_.B = B, rows_batch_.T = T;
    rows_batch_.ids.resize(static_cast<size_t>(B) * T);
    rows_batch_.lengths.resize(static_cast<size_t>(B));
    rows_source_.resize(static_cast<size_t>(B * row_size_));
    rows_coef_.resize(static_cast<size_t>(B * RS));
    std::vector<int> read(static_cast<size_t>(B));
    std::vector<const PromptPair*> pairs(static_cast<size_t>(B));
    for (int v = 0; v < nv; ++v)
      for (int p = 0; p < P; ++p) {
        const int row = v * P + p;
        std::copy_n(target_->ids.begin() + static_cast<int64_t>(p) * T, T,
                    rows_batch_.ids.begin() + static_cast<int64_t>(row) * T);
        rows_batch_.lengths[static_cast<size_t>(row)] = target_->lengths[static_cast<size_t>(p)];
        read[static_cast<size_t>(row)] = ep_.read[static_cast<size_t>(p)];
        pairs[static_cast<size_t>(row)] = ep_.pairs[static_cast<size_t>(p)];
        std::copy_n(source_.begin() + p * row_size_, row_size_, rows_source_.begin() + row * row_size_);
        std::copy_n(variants[v0 + static_cast<size_t>(v)]->begin(), RS, rows_coef_.begin() + row * RS);
      }
    const Tensor logits = runner_.run_patched(rows_batch_, read, rows_source_.data(), rows_coef_.data());
    const std::vector<double> ld = logit_diffs(runner_.model(), pairs, logits.data);
    out.insert(out.end(), ld.begin(), ld.end());
    if (!kl) continue;
    PairTargets t;
    for (int row = 0; row < B; ++row) {
      t.clean_logits = clean_logits_.data() + static_cast<int64_t>(row % P) * V;
      kl->push_back(pair_metric(MetricKind::KlFromClean, t, 0.0,
                                logits.data + static_cast<int64_t>(row) * V, static_cast<int>(V)));
    }
  }
  return out;
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
  for (size_t i = 0; i < sizes.size(); ++i) {
    c.edges.push_back(sizes[i]);
    c.metric.push_back(mean_of(i));
    const double span = c.clean_metric - c.ablated_metric;
    c.recovered.push_back(span != 0.0 ? (c.metric.back() - c.ablated_metric) / span : 0.0);
  }
  return c;
}

}  // namespace causeway
