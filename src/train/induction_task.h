// Induction task: random tokens in which a few random segments each occur twice,
//   [BOS] x A B C x x D E x A B C x x D E x ...
// where the loss reads only the positions inside second copies (from a copy's first token
// to its last but one, predicting the next token of the copy): there, and only there, the
// next token is predictable, by finding the earlier occurrence of the current token and
// copying the token after it (an induction head, fed by a previous-token head).
// - Segment lengths and places are random, so no fixed offset between copies exists for
//   position embeddings to learn. (With several heads per layer a model may still learn a
//   variant that attends one token further; see configs/train-induction.toml.)
// - Every token but the repeated ones is distinct, so each token of a second copy has
//   exactly one earlier occurrence (no ambiguous matches) and "predict a token seen once" is
//   no shortcut.
// - Training batches have random lengths (vary_length): short contexts make the heads form
//   sooner; evaluation uses seq_len.
//
// The vocabulary is GPT-2's 256 byte tokens plus <|endoftext|> (the BOS); random tokens are
// drawn from the first `symbols` characters of kSymbolAlphabet (letters, digits, punctuation),
// so a sequence decodes as readable text that encodes back to the same ids.
#pragma once

#include <string_view>

#include "train/task.h"

namespace causeway::train {

inline constexpr std::string_view kSymbolAlphabet =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&*+-/:;<=>?@^_~";

struct InductionOptions {
  int symbols = 62;      // distinct random tokens (<= kSymbolAlphabet.size())
  int seq_len = 48;      // tokens per sequence including BOS
  int min_repeat = 2;    // segment length range
  int max_repeat = 20;   // 2 * max_repeat <= seq_len - 1; seq_len - 1 - min_repeat <= symbols
  int segments = 4;      // repeated segments per sequence, at most (fewer when they do not fit)
  // Each training batch draws its length from 2 * min_repeat + 1..seq_len.
  bool vary_length = true;
};

class InductionTask : public Task {
 public:
  explicit InductionTask(const InductionOptions& o);  // std::invalid_argument on bad options

  std::string kind() const override { return "induction"; }
  const TokenizerFiles& tokenizer_files() const override { return files_; }
  int vocab_size() const override { return vocab_size_; }
  int max_length() const override { return o_.seq_len; }
  TrainBatch batch(uint64_t seed, int n) const override;
  TrainBatch eval_batch(uint64_t seed, int n) const override;
  std::string describe() const override;

  int bos() const { return bos_; }
  const std::vector<int32_t>& symbol_ids() const { return symbols_; }

 private:
  TrainBatch make_batch(uint64_t seed, int n, bool vary) const;
  InductionOptions o_;
  TokenizerFiles files_;
  std::vector<int32_t> symbols_;
  int32_t bos_ = 0;
  int vocab_size_ = 0;
};

}  // namespace causeway::train
