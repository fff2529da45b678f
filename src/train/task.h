// A synthetic training task: it owns the organism's vocabulary (as tokenizer files) and makes
// seeded batches of sequences with next-token targets at the positions the loss reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/token_batch.h"
#include "train/word_tokenizer.h"

namespace causeway::train {

struct TrainBatch {
  TokenBatch tokens;
  // (B*T): targets[b*T + t] is the token that position t must predict; -1 = no loss there.
  std::vector<int32_t> targets;
  // (B*T): a competing token for the logit difference (the IOI subject); -1 = none.
  std::vector<int32_t> wrongs;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string kind() const = 0;
  virtual const TokenizerFiles& tokenizer_files() const = 0;
  virtual int vocab_size() const = 0;  // embedding rows the model needs
  virtual int max_length() const = 0;  // longest sequence batch() makes (n_positions needed)
  // The same (seed, n) always gives the same batch.
  virtual TrainBatch batch(uint64_t seed, int n) const = 0;
  // Held-out evaluation batches; the same as batch() unless training mixes in helper data.
  virtual TrainBatch eval_batch(uint64_t seed, int n) const { return batch(seed, n); }
  // One line saying what the task is, for the log.
  virtual std::string describe() const = 0;
};

}  // namespace causeway::train
