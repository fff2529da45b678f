// Forwards at edge granularity over a CircuitGraph. A recording forward keeps each row's
// sender outputs, (S, T, C) per row: what every sender adds to the residual stream at every
// position. An edge-patched forward lets each receiver read, instead of the current output of
// a sender, a mix with a source output: receiver r of row b reads
//   its input + sum_s coef[b, r, s] * (source[b, s] - current_s),
// where current_s is s's output in this same forward. coef 1 patches (or ablates) the edge,
// 0 keeps it, values between interpolate. Receivers read through TransformerLens' split inputs
// (hook_q_input, hook_k_input, hook_v_input, hook_mlp_in) and Resid End through the last
// hook_resid_post, and only layers with a non-zero coefficient pay for the split.
#pragma once

#include <vector>

#include "data/prompt_pairs.h"
#include "model/transformer_model.h"
#include "patching/circuit_graph.h"

namespace causeway {

// A block of pairs as edge methods run them: clean and corrupted batches (each pair's two
// prompts must have the same length: edges are patched position by position) and each
// pair's read position.
struct EdgePairs {
  TokenBatch clean, corrupted;
  std::vector<int> read;
  std::vector<const PromptPair*> pairs;
};
// Throws InputError naming the data file and line of a pair whose prompts differ in length.
EdgePairs edge_pairs(const PairDataset& data, int begin, int end);

// Where an edge-patched forward starts (prefix reuse): at block `layer`, from each row's
// resid_pre in `prefix`. The senders before that block (Resid Start and every head and MLP of
// earlier layers) are not recomputed; their current outputs are `outputs` (runs, S, T, C) of
// the run the prefix comes from, row b reading run run_of_row[b]. Valid only when no receiver
// before `layer` has a non-zero coefficient in any row (then the prefix is unpatched).
struct EdgeStart {
  int layer = 0;
  const PrefixSource* prefix = nullptr;
  const float* outputs = nullptr;
  const int* run_of_row = nullptr;
};

class EdgeRunner {
 public:
  EdgeRunner(TransformerModel& model, const CircuitGraph& graph);

  TransformerModel& model() { return model_; }
  const CircuitGraph& graph() const { return graph_; }

  // A forward of `batch` (hooks of `plan` included) writing each row's sender outputs to
  // `outputs` (B, S, T, C). Returns the logits (B, V) at read_pos.
  Tensor run_recording(const TokenBatch& batch, const std::vector<int>& read_pos, HookPlan& plan,
                       float* outputs);
  // The edge-patched forward: source (B, S, T, C), coef (B, R, S), zero where there is no
  // edge. Returns the logits (B, V) at read_pos. With `start`, from block start->layer.
  Tensor run_patched(const TokenBatch& batch, const std::vector<int>& read_pos,
                     const float* source, const float* coef, const EdgeStart* start = nullptr);

 private:
  // Callbacks writing sender outputs to dst (B, S, T, C): the outputs themselves, or, with a
  // source, source - output.
  void add_senders(HookPlan& plan, int B, int T, float* dst, const float* source);

  TransformerModel& model_;
  const CircuitGraph& graph_;
  std::vector<float> diff_;   // source - current, (B, S, T, C)
  std::vector<float> delta_;  // one receiver's added input, (T, C)
};

}  // namespace causeway
