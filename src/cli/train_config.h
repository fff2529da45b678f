// `causeway train` configuration from TOML. Every error names the file, the table and the key.
//
//   [model]   n_layer, n_embd, n_head, n_positions (default: the task's longest sequence),
//             n_inner (default 4 * n_embd), activation_function, layer_norm_epsilon
//   [task]    kind = "induction" | "ioi", seed, eval_sequences,
//             induction: symbols, seq_len, min_repeat, max_repeat, segments,
//             vary_length;
//             ioi: names (a count: the generator's first N names; or an array of names)
//   [train]   steps, batch, lr, schedule = "cosine" | "constant", warmup, min_lr_ratio,
//             weight_decay, decay = "matrices" | "all", beta1, beta2, eps, grad_clip, seed,
//             init_std, log_every
//   [output]  path (relative to the config file's folder)
// vocab_size is not a key: it is the size of the task's vocabulary.
#pragma once

#include <filesystem>
#include <string>

#include "model/model_config.h"
#include "train/induction_task.h"
#include "train/ioi_task.h"
#include "train/trainer.h"

namespace causeway {

struct TrainConfig {
  std::filesystem::path path;  // the config file
  std::string text;            // its contents, copied into the checkpoint as train.toml
  ModelConfig model;           // vocab_size 0 and n_positions 0 (= task's) until completed
  std::string task = "induction";
  train::InductionOptions induction;
  train::IoiTaskOptions ioi;
  int eval_sequences = 1000;
  train::TrainOptions train;
  std::filesystem::path output;  // empty when the config gives none

  static TrainConfig load(const std::filesystem::path& path);
  static TrainConfig parse(const std::string& text, const std::filesystem::path& path);
};

}  // namespace causeway
