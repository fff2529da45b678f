#include "train/head_scores.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "train/rng.h"

namespace causeway::train {

namespace {
std::pair<int, int> argmax(const std::vector<double>& v, int n_head) {
  const auto i = static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
  return {i / n_head, i % n_head};
}
}  // namespace

std::pair<int, int> HeadScores::best_prev() const { return argmax(prev_token, n_head); }
std::pair<int, int> HeadScores::best_induction() const { return argmax(induction, n_head); }

HeadScores head_scores(TransformerModel& model, int32_t bos, const std::vector<int32_t>& symbols, int n,
                       int sequences, uint64_t seed) {
  const int L = model.config().n_layer, NH = model.config().n_head, T = 2 * n + 1;
  if (n < 2 || n > static_cast<int>(symbols.size()))
    throw std::invalid_argument("head_scores: need 2 <= n <= number of symbols");
  Rng rng(seed);
  std::vector<std::vector<int32_t>> rows(sequences);
  std::vector<int32_t> pool = symbols;
  for (auto& r : rows) {
    r.push_back(bos);
    for (int i = 0; i < n; ++i) {
      std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
      r.push_back(pool[i]);
    }
    for (int i = 0; i < n; ++i) r.push_back(r[1 + i]);
  }
  const TokenBatch batch = TokenBatch::padded(rows);
  HookPlan plan(L);
  for (int l = 0; l < L; ++l) plan.cache(HookPoint{HookKind::Pattern, l});
  const Tensor logits = model.forward(batch, plan, LogitRows::All);

  HeadScores s;
  s.n_layer = L;
  s.n_head = NH;
  s.prev_token.assign(static_cast<size_t>(L) * NH, 0.0);
  s.induction.assign(s.prev_token.size(), 0.0);
  for (int l = 0; l < L; ++l) {
    const float* p = plan.activations().at(HookPoint{HookKind::Pattern, l}).data;  // [b,h,q,k]
    for (int b = 0; b < sequences; ++b)
      for (int h = 0; h < NH; ++h) {
        const float* ph = p + (static_cast<int64_t>(b) * NH + h) * T * T;
        double prev = 0.0, ind = 0.0;
        for (int t = 1; t < T; ++t) prev += ph[t * T + t - 1];
        for (int t = n + 1; t < T; ++t) ind += ph[t * T + t - n + 1];
        s.prev_token[l * NH + h] += prev / (T - 1) / sequences;
        s.induction[l * NH + h] += ind / n / sequences;
      }
  }
  const int V = model.config().vocab_size;
  int64_t correct = 0;
  for (int b = 0; b < sequences; ++b)
    for (int t = n + 1; t + 1 < T; ++t) {
      const float* row = logits.data + (static_cast<int64_t>(b) * T + t) * V;
      correct += std::max_element(row, row + V) - row == rows[b][t + 1];
    }
  s.repeat_accuracy = static_cast<double>(correct) / (static_cast<double>(sequences) * (n - 1));
  return s;
}

}  // namespace causeway::train
