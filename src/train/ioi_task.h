// IOI-style task (Wang et al. 2022) on a small word vocabulary: prompts from the IOI
// generator's templates (src/data/ioi.h), half ABBA and half BABA, with the first `names` of
// its built-in names, all its places and objects, and the template words, each one token.
// The loss reads only the last position, which must predict the indirect object:
//   "When Mary and John went to the store, John gave a drink to" -> " Mary"
// Batches come from generate_ioi_detailed itself, so `causeway data ioi --tokenizer MODEL`
// makes prompts from the very distribution the model was trained on.
#pragma once

#include "train/task.h"

namespace causeway::train {

struct IoiTaskOptions {
  // Names from ioi_names() (without the leading space), at least 3; empty = the first 40.
  std::vector<std::string> names;
};

class IoiTask : public Task {
 public:
  explicit IoiTask(const IoiTaskOptions& o);  // std::invalid_argument on bad options

  std::string kind() const override { return "ioi"; }
  const TokenizerFiles& tokenizer_files() const override { return files_; }
  int vocab_size() const override { return vocab_size_; }
  int max_length() const override { return max_length_; }
  TrainBatch batch(uint64_t seed, int n) const override;
  std::string describe() const override;

  const Tokenizer& tokenizer() const { return tok_; }

 private:
  IoiTaskOptions o_;
  TokenizerFiles files_;
  Tokenizer tok_;
  int vocab_size_ = 0;
  int max_length_ = 0;
};

// The words of the IOI vocabulary: the template words (as GPT-2's pre-tokenizer splits the
// templates), " " + each place and object, and " " + each name.
std::vector<std::string> ioi_vocabulary(const std::vector<std::string>& names);

}  // namespace causeway::train
