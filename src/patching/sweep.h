// Activation patching, ablation and noise-restoration sweeps over a grid of components, with
// the metric recorded for every pair. The engine does the least work that gives the full
// forward's numbers: a patch in block L starts from the baseline's residual at L, a patch at
// position p recomputes only positions >= p, many (pair, cell) variants share one batch, and
// logit difference unembeds only the answer tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/prompt_pairs.h"
#include "model/transformer_model.h"
#include "patching/metric.h"
#include "patching/sweep_grid.h"
#include "patching/sweep_positions.h"

namespace causeway {

enum class Direction {
  Denoising,  // run corrupted, patch in clean values: is the component sufficient?
  Noising,    // run clean, patch in corrupted values: is it necessary?
};

enum class PatchSource {
  Activation,  // the other run of the pair (direction decides which)
  Zero,        // zero ablation of the clean run
  Mean,        // dataset-mean ablation of the clean run
  Resample,    // another pair's clean value (k samples, averaged)
  Noise,       // ROME causal tracing: restore clean values into a Gaussian-noised clean run
};

struct NoiseOptions {
  double scale = 3.0;          // noise std as a multiple of the embedding matrix's std
  int samples = 10;
  std::vector<int> positions;  // positions whose embeddings are noised; empty = all
};

struct SweepRequest {
  SweepSpec spec;
  PatchSource source = PatchSource::Activation;
  Direction direction = Direction::Denoising;
  bool mean_per_position = true;  // Mean: per position, or one mean over all positions
  int resample_samples = 1;
  uint64_t seed = 0;
  NoiseOptions noise;
  int window = 1;                 // patch this many consecutive layers from the cell's layer
  MetricKind metric = MetricKind::LogitDiff;
  int max_rows = 128;             // rows of one patched batch
  int pairs_per_block = 32;       // pairs whose baselines are held at once
  bool optimized = true;          // false: a full forward from the tokens per variant
};

// Per-pair baselines of the unpatched runs.
struct SweepBaselines {
  std::vector<double> clean_ld, corrupted_ld;          // logit differences
  std::vector<double> clean_metric, corrupted_metric;  // the request's metric
};

struct SweepResult {
  SweepGrid grid;
  int n_pairs = 0;
  std::vector<float> effect;  // (pair, cell): the metric of the patched run; NaN where the
                              // cell's position is past the pair's prompt
  std::vector<float> mean;    // (cell)
  SweepBaselines baselines;
};

using SweepProgress = std::function<void(int64_t done, int64_t total)>;

// What a batch job drives: effects of a block of pairs x a range of cells. Activation
// patching measures them (SweepRunner); attribution patching estimates them.
class SweepEngine {
 public:
  virtual ~SweepEngine() = default;
  virtual const SweepGrid& grid() const = 0;
  virtual void run_block(int pair_begin, int pair_end, int cell_begin, int cell_end,
                         float* effect, SweepBaselines& baselines,
                         const SweepProgress& progress = nullptr) = 0;
};

class SweepRunner final : public SweepEngine {
 public:
  SweepRunner(TransformerModel& model, const PairDataset& data, SweepRequest request);
  ~SweepRunner() override;

  const SweepGrid& grid() const override { return grid_; }
  const SweepRequest& request() const { return req_; }
  int n_pairs() const { return static_cast<int>(data_.pairs.size()); }

  // Effects of cells [cell_begin, cell_end) for pairs [pair_begin, pair_end), written to
  // `effect` as (pairs, cells) rows; baselines of those pairs go to `baselines` (resized to
  // n_pairs on first use). A unit of work for a scheduler.
  void run_block(int pair_begin, int pair_end, int cell_begin, int cell_end, float* effect,
                 SweepBaselines& baselines, const SweepProgress& progress = nullptr) override;

  SweepResult run(const SweepProgress& progress = nullptr);

  // Mean ablation's dataset means of `kind` at `layer` ((T, ...) in this rank's local shapes),
  // as the patched runs use them; empty unless the source is Mean.
  const std::vector<float>& dataset_mean(HookKind kind, int layer) const;

  // `mean` of a finished sweep: TransformerLens' normalized batch mean for the normalized
  // metric, the plain mean over pairs otherwise (NaN entries skipped).
  std::vector<float> mean_of(const std::vector<float>& effect, const SweepBaselines& b) const;

  // Resample ablation: the pairs whose clean values replace pair `pair`'s, one per sample.
  std::vector<int> resample_partners(int pair) const;

 private:
  struct Block;
  void prepare(Block& block, int pair_begin, int pair_end);
  void require_one_length() const;
  void compute_means();

  TransformerModel& model_;
  const PairDataset& data_;
  SweepRequest req_;
  SweepGrid grid_;
  PairPositions positions_;                // cells in each pair's token positions
  int grid_T_ = 0;
  std::vector<HookKind> kinds_;
  std::vector<std::vector<float>> means_;  // Mean ablation: per (kind, layer), (T, ...)
  std::unique_ptr<Block> block_;           // the latest pair block's baselines
};

// `mean` of a sweep from its per-pair effects (pair, cell): TransformerLens' normalized batch
// mean for the normalized metric, the plain mean over pairs otherwise (NaN skipped).
std::vector<float> sweep_mean(MetricKind metric, const std::vector<float>& effect,
                              const SweepBaselines& b, int n_pairs, int64_t n_cells);

// The position a pair's metric is read at (answer_pos, negative counts from the end).
int read_position(const PromptPair& pair);

}  // namespace causeway
