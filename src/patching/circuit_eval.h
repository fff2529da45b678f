// Evaluating circuits: the model run with only a set of edges kept, every other edge ablated
// (its receivers read the sender's corrupted output, or its mean over the pairs' clean runs),
// on the clean prompts. A faithfulness curve runs this for the top n edges of a ranking, for
// several n.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "parallel/collectives.h"
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
  // Called before every round of batches run() runs (ACDC and faithfulness curves evaluate
  // only through run()): on every rank of the group at the same points, so it may be
  // collective. A check that throws stops the evaluation there, e.g. for SIGTERM.
  void set_batch_check(std::function<void()> check) { batch_check_ = std::move(check); }
  // Splits run()'s rows over the ranks of `group` (every rank of it calls run() with the same
  // variants). The rows are cut into batches of max_rows whatever the number of ranks; rank k
  // runs its contiguous share of the batches, and each row's values reach every rank through
  // a sum in which only the rank that ran the row adds a non-zero term, so every rank holds
  // the same, exact values as one rank alone would: circuits do not depend on the rank count.
  void set_group(const Collectives* group) { group_ = group; }
  // Prefix reuse (on by default): a batch whose rows patch no receiver before block L starts
  // at L from the target run's residual stream instead of at the embeddings.
  void set_prefix_reuse(bool on) { prefix_reuse_ = on; }
  // Whether sender s's ablation source equals its output in the target run at every position
  // up to each pair's read position, in every pair. Patching such an edge while its sender
  // still has the target run's output (no ablated edge upstream of it) adds exactly zero to the
  // receiver at every position that can reach the read position (causal attention).
  bool sender_unchanged(int s) const { return unchanged_[static_cast<size_t>(s)] != 0; }

 private:
  EdgeRunner& runner_;
  EdgePairs ep_;
  int64_t row_size_;             // S * T * C
  std::vector<float> source_;    // ablation outputs (P, S, T, C)
  std::vector<float> target_;    // the target run's sender outputs (P, S, T, C)
  std::vector<float> resid_;     // the target run's resid_pre at every block (L, P, T, C)
  std::vector<char> unchanged_;  // (S) see sender_unchanged
  std::vector<float> clean_logits_;  // the target run's logits at read positions (P, V)
  std::vector<double> clean_ld_, source_ld_;
  const TokenBatch* target_batch_;
  std::vector<float> rows_source_, rows_coef_;
  TokenBatch rows_batch_;
  std::function<void()> batch_check_;
  const Collectives* group_ = nullptr;
  bool prefix_reuse_ = true;
};

struct FaithfulnessCurve {
  std::vector<int64_t> edges;         // edges kept at each point
  std::vector<double> metric;         // mean logit difference over the pairs
  std::vector<double> recovered;      // (metric - ablated) / (clean - ablated); NaN when undefined
  double clean_metric = 0.0, ablated_metric = 0.0;
};

// Whether (metric - ablated) / (clean - ablated) means anything: the clean and all-ablated
// metrics (mean logit differences) must differ by more than the float rounding of the two
// computation paths. fp32 forwards round logits to ~1e-6 relative; a difference below 1e-3 of
// the larger magnitude (1e-4 absolute near 0) is then as much rounding as signal, and its
// ratios run to "300%". (With mean ablation of one pair, or clean = corrupted prompts, both
// runs are the same computation.)
bool recovery_defined(double clean_metric, double ablated_metric);

// ranking: edges (sender, receiver), most important first. sizes: numbers of top edges to keep
// (each <= ranking.size()); with none, only the clean and all-ablated metrics are measured.
FaithfulnessCurve faithfulness_curve(CircuitRuns& runs,
                                     const std::vector<std::pair<int, int>>& ranking,
                                     const std::vector<int64_t>& sizes, int max_rows = 64);

// Sizes 0, 1, 2, 4, ... up to n, and n.
std::vector<int64_t> doubling_sizes(int64_t n);

}  // namespace causeway
