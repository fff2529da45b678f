#include "patching/metric_gradient.h"

#include <algorithm>

#include "backend/ops_linear.h"
#include "patching/metric.h"

namespace causeway {

std::vector<double> logit_diffs(const TransformerModel& model,
                                const std::vector<const PromptPair*>& pairs, const float* logits) {
  const int64_t V = model.config().vocab_size;
  std::vector<double> out;
  std::vector<float> a, w;
  for (size_t b = 0; b < pairs.size(); ++b) {
    const float* row = logits + static_cast<int64_t>(b) * V;
    a.clear(), w.clear();
    for (int t : pairs[b]->answers) a.push_back(row[t]);
    for (int t : pairs[b]->wrongs) w.push_back(row[t]);
    out.push_back(logit_diff(pairs[b]->answers, pairs[b]->wrongs, a.data(), w.data()));
  }
  return out;
}

void logit_diff_gradient(const TransformerModel& model,
                         const std::vector<const PromptPair*>& pairs, const float* logits,
                         const std::vector<int>& read, int T, std::vector<double>& ld,
                         std::vector<float>& seed) {
  const ModelConfig& cfg = model.config();
  const int C = cfg.n_embd, B = static_cast<int>(pairs.size());
  const float cap = cfg.final_logit_softcap;
  // d(capped logit)/d(logit) = 1 - (capped / cap)^2.
  auto slope = [&](float capped) { return cap > 0 ? 1.0f - (capped / cap) * (capped / cap) : 1.0f; };
  const WeightMatrix W_U = model.weights().W_U.matrix();
  std::vector<float> unembed(static_cast<size_t>(C)), a, w;
  ld.assign(static_cast<size_t>(B), 0.0);
  seed.assign(static_cast<size_t>(B) * T * C, 0.0f);
  for (int b = 0; b < B; ++b) {
    const PromptPair& pair = *pairs[static_cast<size_t>(b)];
    const float* row = logits + static_cast<int64_t>(b) * cfg.vocab_size;
    a.clear(), w.clear();
    for (int t : pair.answers) a.push_back(row[t]);
    for (int t : pair.wrongs) w.push_back(row[t]);
    ld[static_cast<size_t>(b)] = logit_diff(pair.answers, pair.wrongs, a.data(), w.data());
    float* dst = seed.data() + (static_cast<int64_t>(b) * T + read[static_cast<size_t>(b)]) * C;
    auto add = [&](const std::vector<int32_t>& tokens, const std::vector<float>& values, float sign) {
      for (size_t j = 0; j < tokens.size(); ++j) {
        cpu::embedding_forward(unembed.data(), &tokens[j], W_U, 1, 1.0f);
        const float k = sign * slope(values[j]) / static_cast<float>(tokens.size());
        for (int i = 0; i < C; ++i) dst[i] += k * unembed[static_cast<size_t>(i)];
      }
    };
    add(pair.answers, a, 1.0f);
    add(pair.wrongs, w, -1.0f);
  }
}

}  // namespace causeway
