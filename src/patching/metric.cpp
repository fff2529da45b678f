#include "patching/metric.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace causeway {

namespace {
const std::vector<std::pair<MetricKind, const char*>> kMetrics = {
    {MetricKind::LogitDiff, "logit_diff"},   {MetricKind::Normalized, "normalized"},
    {MetricKind::AnswerProb, "prob"},        {MetricKind::AnswerLogProb, "logprob"},
    {MetricKind::KlFromClean, "kl"},         {MetricKind::Accuracy, "accuracy"},
    {MetricKind::Rank, "rank"},
};

// log-sum-exp of a vocabulary row in double, stable for any range of logits.
double log_sum_exp(const float* x, int V) {
  const float mx = *std::max_element(x, x + V);
  double s = 0.0;
  for (int i = 0; i < V; ++i) s += std::exp(static_cast<double>(x[i]) - mx);
  return mx + std::log(s);
}
}  // namespace

MetricKind parse_metric(const std::string& name, const std::string& source,
                        const std::string& field) {
  for (const auto& [k, n] : kMetrics)
    if (name == n) return k;
  std::string known;
  for (const auto& [k, n] : kMetrics) known += std::string(known.empty() ? "" : ", ") + n;
  throw InputError(source, field, "unknown metric '" + name + "' (known: " + known + ")");
}

std::string metric_name(MetricKind m) {
  for (const auto& [k, n] : kMetrics)
    if (k == m) return n;
  return "?";
}

bool needs_full_vocab(MetricKind m) {
  return m != MetricKind::LogitDiff && m != MetricKind::Normalized;
}

double logit_diff(const std::vector<int>& answers, const std::vector<int>& wrongs,
                  const float* answer_logits, const float* wrong_logits) {
  double a = 0.0, w = 0.0;
  for (size_t i = 0; i < answers.size(); ++i) a += answer_logits[i];
  for (size_t i = 0; i < wrongs.size(); ++i) w += wrong_logits[i];
  return a / static_cast<double>(answers.size()) - w / static_cast<double>(wrongs.size());
}

double pair_metric(MetricKind m, const PairTargets& t, double ld, const float* logits, int V) {
  switch (m) {
    case MetricKind::LogitDiff: return ld;
    case MetricKind::Normalized: return (ld - t.corrupted_ld) / (t.clean_ld - t.corrupted_ld);
    case MetricKind::AnswerProb:
    case MetricKind::AnswerLogProb: {
      const double lse = log_sum_exp(logits, V);
      double p = 0.0;
      for (int a : t.answers) p += std::exp(logits[a] - lse);
      return m == MetricKind::AnswerProb ? p : std::log(p);
    }
    case MetricKind::KlFromClean: {
      const double lse = log_sum_exp(logits, V), lse_c = log_sum_exp(t.clean_logits, V);
      double kl = 0.0;
      for (int i = 0; i < V; ++i) {
        const double lc = t.clean_logits[i] - lse_c;
        kl += std::exp(lc) * (lc - (logits[i] - lse));
      }
      return kl;
    }
    case MetricKind::Accuracy: {
      const int top = static_cast<int>(std::max_element(logits, logits + V) - logits);
      return std::find(t.answers.begin(), t.answers.end(), top) != t.answers.end() ? 1.0 : 0.0;
    }
    case MetricKind::Rank: {
      float best = logits[t.answers[0]];
      for (int a : t.answers) best = std::max(best, logits[a]);
      int rank = 0;
      for (int i = 0; i < V; ++i) rank += logits[i] > best;
      return rank;
    }
  }
  return 0.0;
}

double normalized_batch_mean(double mean_ld, double mean_clean, double mean_corrupted) {
  return (mean_ld - mean_corrupted) / (mean_clean - mean_corrupted);
}

std::string mean_definition(MetricKind m) {
  if (m == MetricKind::Normalized)
    return "TransformerLens convention, the metric of the batch means: (mean patched - mean "
           "corrupted) / (mean clean - mean corrupted) of raw logit differences over the pairs "
           "defined in the cell; not the mean of the per-pair normalized values in effect";
  return "mean over the pairs defined in the cell of the per-pair " + metric_name(m) + " in effect";
}

}  // namespace causeway
