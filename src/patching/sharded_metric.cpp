#include "patching/sharded_metric.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "parallel/exact_sum.h"

namespace causeway {

namespace {

// log-sum-exp of a whole row in double (the clean row of kl is whole on every rank).
double log_sum_exp(const float* x, int V) {
  const float mx = *std::max_element(x, x + V);
  double s = 0.0;
  for (int i = 0; i < V; ++i) s += std::exp(static_cast<double>(x[i]) - mx);
  return mx + std::log(s);
}

}  // namespace

void sharded_pair_metrics(MetricKind m, const std::vector<const PairTargets*>& targets,
                          const float* local, int vb, int Vl, int V, const Collectives& group,
                          double* out) {
  const int R = static_cast<int>(targets.size());
  const int n = std::clamp(V - vb, 0, Vl);  // this block's real tokens
  const float lowest = -std::numeric_limits<float>::infinity();
  // Per row, maxed over the group: the row's largest logit and its best answer logit; then
  // minus the first token holding the largest logit (ids below 2^24 are exact as floats).
  std::vector<float> top(static_cast<size_t>(2) * R), first(static_cast<size_t>(R));
  for (int r = 0; r < R; ++r) {
    const float* x = local + static_cast<int64_t>(r) * Vl;
    float mx = lowest, best = lowest;
    for (int i = 0; i < n; ++i) mx = std::max(mx, x[i]);
    for (int a : targets[r]->answers)
      if (a >= vb && a < vb + n) best = std::max(best, x[a - vb]);
    top[2 * r] = mx, top[2 * r + 1] = best;
  }
  group.allreduce_max(top.data(), 2 * static_cast<int64_t>(R));
  for (int r = 0; r < R; ++r) {
    const float* x = local + static_cast<int64_t>(r) * Vl;
    const int i = static_cast<int>(std::find(x, x + n, top[2 * r]) - x);
    first[r] = i < n ? -static_cast<float>(vb + i) : lowest;
  }
  group.allreduce_max(first.data(), R);
  // Per row, summed over the group: sum of exp(x - max), of the answers' exp(x - max), the
  // count of tokens above the best answer, and for kl the clean probabilities p and
  // p * (log p - (x - max)).
  constexpr int kSums = 5;
  std::vector<double> sums(static_cast<size_t>(kSums) * R, 0.0);
  for (int r = 0; r < R; ++r) {
    const PairTargets& t = *targets[r];
    const float* x = local + static_cast<int64_t>(r) * Vl;
    const double mx = top[2 * r], best = top[2 * r + 1];
    double* s = sums.data() + kSums * r;
    for (int i = 0; i < n; ++i) {
      s[0] += std::exp(x[i] - mx);
      s[2] += x[i] > best;
    }
    for (int a : t.answers)
      if (a >= vb && a < vb + n) s[1] += std::exp(x[a - vb] - mx);
    if (m == MetricKind::KlFromClean) {
      const double lse_c = log_sum_exp(t.clean_logits, V);
      for (int i = 0; i < n; ++i) {
        const double lc = t.clean_logits[vb + i] - lse_c, p = std::exp(lc);
        s[3] += p;
        s[4] += p * (lc - (x[i] - mx));
      }
    }
  }
  allreduce_sum_exact(group, sums.data(), static_cast<int64_t>(sums.size()));
  for (int r = 0; r < R; ++r) {
    const double* s = sums.data() + kSums * r;
    const double log_z = std::log(s[0]);  // log-sum-exp minus the row's max
    switch (m) {
      case MetricKind::AnswerProb: out[r] = s[1] / s[0]; break;
      case MetricKind::AnswerLogProb: out[r] = std::log(s[1] / s[0]); break;
      // sum p (log p - (x - lse)) = sum p (log p - (x - max)) + (lse - max) sum p
      case MetricKind::KlFromClean: out[r] = s[4] + log_z * s[3]; break;
      case MetricKind::Accuracy: {
        const int token = static_cast<int>(-first[r]);
        const auto& a = targets[r]->answers;
        out[r] = std::find(a.begin(), a.end(), token) != a.end() ? 1.0 : 0.0;
        break;
      }
      case MetricKind::Rank: out[r] = s[2]; break;
      case MetricKind::LogitDiff:
      case MetricKind::Normalized: out[r] = std::numeric_limits<double>::quiet_NaN(); break;
    }
  }
}

}  // namespace causeway
