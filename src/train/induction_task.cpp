#include "train/induction_task.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "train/rng.h"

namespace causeway::train {

InductionTask::InductionTask(const InductionOptions& o) : o_(o), files_(make_word_tokenizer({})) {
  if (o.symbols < 2 || o.symbols > static_cast<int>(kSymbolAlphabet.size()))
    throw std::invalid_argument("symbols must be in 2.." + std::to_string(kSymbolAlphabet.size()));
  if (o.segments < 1) throw std::invalid_argument("segments must be at least 1");
  if (o.min_repeat < 2 || o.max_repeat < o.min_repeat)
    throw std::invalid_argument("min_repeat must be >= 2 and <= max_repeat");
  if (o.symbols < o.seq_len - 1 - o.min_repeat)
    throw std::invalid_argument("symbols must be at least seq_len - 1 - min_repeat");
  if (2 * o.max_repeat > o.seq_len - 1)
    throw std::invalid_argument("seq_len must be at least 2 * max_repeat + 1");
  const Tokenizer tok = files_.load();
  for (int i = 0; i < o.symbols; ++i)
    symbols_.push_back(*tok.token_id(std::string(1, kSymbolAlphabet[i])));
  bos_ = *tok.eos_id();
  vocab_size_ = tok.vocab_size();
}

TrainBatch InductionTask::batch(uint64_t seed, int n) const {
  return make_batch(seed, n, o_.vary_length);
}

TrainBatch InductionTask::eval_batch(uint64_t seed, int n) const {
  return make_batch(seed, n, false);
}

TrainBatch InductionTask::make_batch(uint64_t seed, int n, bool vary) const {
  Rng rng(seed);
  const int T = vary ? static_cast<int>(rng.between(2 * o_.min_repeat + 1, o_.seq_len)) : o_.seq_len;
  const int max_len = std::min(o_.max_repeat, (T - 1) / 2);
  TrainBatch b;
  b.tokens.B = n;
  b.tokens.T = T;
  b.tokens.ids.assign(static_cast<size_t>(n) * T, 0);
  b.tokens.lengths.assign(n, T);
  b.targets.assign(b.tokens.ids.size(), -1);
  b.wrongs.assign(b.tokens.ids.size(), -1);
  std::vector<int32_t> pool = symbols_;
  const size_t S = pool.size();
  for (int r = 0; r < n; ++r) {
    int32_t* row = b.tokens.ids.data() + static_cast<size_t>(r) * T;
    int32_t* tgt = b.targets.data() + static_cast<size_t>(r) * T;
    // Up to `segments` segments, each placed twice on free positions (the second copy after
    // the first); a placement that does not fit is retried a few times, then skipped.
    std::vector<int> source(T, -1);  // second-copy position -> its first occurrence
    std::vector<char> used(T, 0);
    used[0] = 1;
    int repeated = 0;
    for (int seg = 0; seg < o_.segments; ++seg)
      for (int attempt = 0; attempt < 8; ++attempt) {
        const int len = static_cast<int>(rng.between(o_.min_repeat, max_len));
        const int a = static_cast<int>(rng.between(1, T - 2 * len));
        const int c = static_cast<int>(rng.between(a + len, T - len));
        bool fits = true;
        for (int j = 0; j < len; ++j) fits = fits && !used[a + j] && !used[c + j];
        if (!fits) continue;
        for (int j = 0; j < len; ++j) {
          used[a + j] = used[c + j] = 1;
          source[c + j] = a + j;
          if (j + 1 < len) tgt[c + j] = -2;  // filled in below, once the tokens are known
        }
        repeated += len;
        break;
      }
    // Every other position gets a distinct symbol (a partial Fisher-Yates shuffle of the
    // pool), so each token of a second copy has exactly one earlier occurrence, and "predict
    // a token seen once" is no shortcut.
    const int distinct = T - 1 - repeated;
    for (int i = 0; i < distinct; ++i) std::swap(pool[i], pool[i + rng.below(S - i)]);
    row[0] = bos_;
    for (int t = 1, f = 0; t < T; ++t) row[t] = source[t] >= 0 ? row[source[t]] : pool[f++];
    for (int t = 1; t < T; ++t)
      if (tgt[t] == -2) tgt[t] = row[t + 1];
  }
  return b;
}

std::string InductionTask::describe() const {
  return "induction: " + std::to_string(o_.symbols) + " symbols, sequences of up to " +
         std::to_string(o_.seq_len) + " tokens with up to " + std::to_string(o_.segments) +
         " segments of " + std::to_string(o_.min_repeat) + "-" + std::to_string(o_.max_repeat) +
         " tokens repeated; loss on the repeats";
}

}  // namespace causeway::train
