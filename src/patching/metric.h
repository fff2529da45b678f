// Per-pair metrics of a run, read at the pair's answer position. Logit difference needs only
// the answer and wrong tokens' logits (answer-only unembedding); the others need the full
// vocabulary row.
#pragma once

#include <string>
#include <vector>

namespace causeway {

enum class MetricKind {
  LogitDiff,        // mean logit(answers) - mean logit(wrongs)
  Normalized,       // (ld - ld_corrupted) / (ld_clean - ld_corrupted), per pair
  AnswerProb,       // total probability of the answer tokens
  AnswerLogProb,    // log of that
  KlFromClean,      // KL(clean distribution || this run's), at the answer position
  Accuracy,         // 1 if the top-1 token is an answer, else 0
  Rank,             // rank of the best answer token (0 = top-1)
};

MetricKind parse_metric(const std::string& name, const std::string& source,
                        const std::string& field);
std::string metric_name(MetricKind m);
bool needs_full_vocab(MetricKind m);

// Inputs of one pair that every metric may use.
struct PairTargets {
  std::vector<int> answers, wrongs;   // token ids
  int read_pos = 0;                   // position whose logits are read
  double clean_ld = 0.0, corrupted_ld = 0.0;
  const float* clean_logits = nullptr;  // (V) clean run at read_pos, for KL
};

double logit_diff(const std::vector<int>& answers, const std::vector<int>& wrongs,
                  const float* answer_logits, const float* wrong_logits);

// `logits`: full vocab row (V) when needs_full_vocab, else nullptr. `ld`: this run's logit
// difference (always computed).
double pair_metric(MetricKind m, const PairTargets& t, double ld, const float* logits, int V);

// TransformerLens' convention for a whole batch: the metric of the batch-mean logit
// difference, normalized by the batch-mean clean and corrupted baselines.
double normalized_batch_mean(double mean_ld, double mean_clean, double mean_corrupted);

// How a sweep's `mean` is made from its per-pair values under metric `m`, in words for the
// result file: the normalized metric's mean is TransformerLens' metric of batch means, every
// other metric's is the plain mean over pairs.
std::string mean_definition(MetricKind m);

}  // namespace causeway
