// Evaluating circuits: the model run with only a set of edges kept, every other edge ablated
// (its receivers read the sender's corrupted output, or its mean over the pairs' clean runs),
// on the clean prompts. A faithfulness curve runs this for the top n edges of a ranking, for
// several n.
#pragma once

#include <cstdint>
#include <vector>

#include "patching/edge_forward.h"
#include "patching/sweep.h"

namespace causeway {

enum class EdgeAblation { Corrupted, Mean };

// The runs circuits are measured against, for a block of pairs: the target prompts (clean;
// corrupted when denoising), the ablation's sender outputs as the source (the other run's, or
// the mean of the clean runs'), and the target run's full-vocabulary log-probabilities and
// logit differences.
class CircuitRuns {
 public:
  CircuitRuns(EdgeRunner& runner, const PairDataset& data, int begin, int end,
              EdgeAblation ablation, Direction direction = Direction::Noising);
  int pairs() const { return static_cast<int>(ep_.pairs.size()); }
  const CircuitGraph& graph() const { return runner_.graph(); }
  const EdgePairs& edge_pairs() const { return ep_; }
  // The target run's logit differences (the clean run's unless denoising).
  const std::vector<double>& clean_ld() const { return clean_ld_; }
  const std::vector<double>& source_ld() const { return source_ld_; }

  // Logit differences (rows = pairs x variants) of `variants` circuits, each given by its
  // ablated-edge mask (S * R, receiver-major: [r * S + s], 1 = ablated), run as batches of at
  // most max_rows rows. Also each row's KL(clean || circuit) at the read position when kl is
  // given. Row v * P + p is variant v, pair p.
  std::vector<double> run(const std::vector<const std::vector<float>*>& variants, int max_rows,
                          std::vector<double>* kl = nullptr);

 private:
  EdgeRunner& runner_;
  EdgePairs ep_;
  int64_t row_size_;             // S * T * C
  std::vector<float> source_;    // ablation outputs (P, S, T, C)
  std::vector<float> clean_logits_;  // the target run's logits at read positions (P, V)
  std::vector<double> clean_ld_, source_ld_;
  const TokenBatch* target_;
  std::vector<float> rows_source_, rows_coef_;
  TokenBatch rows_batch_;
};

struct FaithfulnessCurve {
  std::vector<int64_t> edges;         // edges kept at each point
  std::vector<double> metric;         // mean logit difference over the pairs
  std::vector<double> recovered;      // (metric - ablated) / (clean - ablated)
  double clean_metric = 0.0, ablated_metric = 0.0;
};

// ranking: edges (sender, receiver), most important first. sizes: numbers of top edges to keep
// (each <= ranking.size()).
FaithfulnessCurve faithfulness_curve(CircuitRuns& runs,
                                     const std::vector<std::pair<int, int>>& ranking,
                                     const std::vector<int64_t>& sizes, int max_rows = 64);

// Sizes 0, 1, 2, 4, ... up to n, and n.
std::vector<int64_t> doubling_sizes(int64_t n);

}  // namespace causeway
