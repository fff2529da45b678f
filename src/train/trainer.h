// The training loop: next-token cross-entropy on a Task's batches, AdamW, a warmup + cosine
// (or constant) learning rate, optional global-norm gradient clipping.
//
// Reproducible: the initial weights come from `init_seed`, and step k's batch from
// mix_seed(data_seed, k) alone, so the same options give bit-identical weights on the same
// thread count (OpenMP reductions and OpenBLAS may round differently with another count).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/transformer_model.h"
#include "train/adamw.h"
#include "train/lr_schedule.h"
#include "train/task.h"

namespace causeway::train {

struct TrainOptions {
  int steps = 1000;
  int batch = 32;                 // sequences per step
  LrSchedule schedule;            // schedule.total is set to `steps` by train()
  AdamWOptions adamw;
  bool decay_all = false;         // false: decay matrices and embeddings only
  double grad_clip = 1.0;         // max global gradient norm; 0 = no clipping
  uint64_t init_seed = 0;
  double init_std = 0.02;         // GPT-2's; TransformerLens uses 0.8 / sqrt(d_model)
  uint64_t data_seed = 0;
  int log_every = 100;            // steps between progress reports
};

struct StepLog {
  int step = 0;                   // 1-based: steps done
  double loss = 0.0;              // mean training loss over the steps since the last report
  double lr = 0.0;
  double grad_norm = 0.0;         // before clipping, at this step
  double tokens_per_s = 0.0;      // since the last report
};

struct EvalResult {
  int sequences = 0;
  int64_t predictions = 0;        // positions with a target
  int64_t correct = 0;            // argmax over the whole vocabulary == target
  double loss = 0.0;              // mean cross-entropy at those positions
  double logit_diff = 0.0;        // mean logit(target) - logit(wrong) where the task names one
  int64_t logit_diff_count = 0;
  double accuracy() const { return predictions ? static_cast<double>(correct) / predictions : 0.0; }
};

struct TrainResult {
  std::vector<double> losses;     // one per step
  double seconds = 0.0;
};

// A model of `cfg` with GPT-2's initialization from `seed`, on the CPU backend.
TransformerModel make_initialized_model(const ModelConfig& cfg, uint64_t seed, double std = 0.02);

// Trains `model` in place; `on_log` (may be empty) gets a report every log_every steps and
// after the last step.
TrainResult train(TransformerModel& model, const Task& task, const TrainOptions& options,
                  const std::function<void(const StepLog&)>& on_log = {});

// Accuracy and loss at the target positions of `sequences` held-out sequences: batches from
// a seed stream that training never uses (eval_seed(data_seed)).
EvalResult evaluate(TransformerModel& model, const Task& task, uint64_t data_seed, int sequences,
                    int batch = 64);
uint64_t eval_seed(uint64_t data_seed);

}  // namespace causeway::train
