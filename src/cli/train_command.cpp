// `causeway train CONFIG.toml`: trains a small GPT-2 on a synthetic task (induction, IOI) and
// saves it as a Hugging Face checkpoint folder with its tokenizer and the config that made it
// (train.toml), plus training.json (final loss, held-out accuracy, time).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "cli/commands.h"
#include "cli/number_options.h"
#include "cli/output_guard.h"
#include "cli/train_config.h"
#include "core/error.h"
#include "model/checkpoint_writer.h"
#include "train/head_scores.h"

namespace causeway::cli {

namespace {

struct TrainCommandOptions {
  std::string config;
  std::string out;
  bool overwrite = false;
  int threads = 0;
};

std::unique_ptr<train::Task> make_task(const TrainConfig& c) {
  if (c.task == "induction") return std::make_unique<train::InductionTask>(c.induction);
  return std::make_unique<train::IoiTask>(c.ioi);
}

int run_train(const TrainCommandOptions& o) {
  TrainConfig c = TrainConfig::load(o.config);
  const std::filesystem::path out =
      (!o.out.empty() ? std::filesystem::path(o.out) : c.output).lexically_normal();
  if (out.empty())
    throw InputError(o.config, "output.path", "no output folder: set [output] path or pass --out");
  // Refuse before any work, so nothing is half-done when the answer is no.
  guard_output_folder(out, {{o.config, "the config"}}, o.out.empty() ? "output.path" : "--out");
  if (std::filesystem::exists(out) && !o.overwrite)
    throw InputError(out.string(), "", "output folder exists; pass --overwrite to replace it");
  set_cpu_threads(o.threads);

  const std::unique_ptr<train::Task> task = make_task(c);
  ModelConfig& mc = c.model;
  mc.vocab_size = task->vocab_size();
  if (mc.n_positions == 0) mc.n_positions = task->max_length();
  if (mc.n_positions < task->max_length())
    throw InputError(o.config, "model.n_positions",
                     std::to_string(mc.n_positions) + " is shorter than the task's sequences (" +
                         std::to_string(task->max_length()) + " tokens)");
  const int threads = cpu_threads();
  std::fprintf(stderr, "task %s\n", task->describe().c_str());
  TransformerModel model = train::make_initialized_model(mc, c.train.init_seed, c.train.init_std);
  int64_t n_params = 0;
  for (size_t i = 0; i < model.weights().arena().specs().size(); ++i)
    n_params += model.weights().arena().at(i).numel();
  std::fprintf(stderr,
               "model %d layers, d_model %d, %d head%s, d_mlp %d, vocab %d, %d positions: %lld "
               "parameters; %d steps of %d sequences, %d thread%s\n",
               mc.n_layer, mc.n_embd, mc.n_head, mc.n_head == 1 ? "" : "s", mc.n_inner,
               mc.vocab_size, mc.n_positions,
               static_cast<long long>(n_params), c.train.steps, c.train.batch, threads,
               threads == 1 ? "" : "s");

  const int width = static_cast<int>(std::to_string(c.train.steps).size());
  const train::TrainResult r =
      train::train(model, *task, c.train, [&](const train::StepLog& s) {
        std::fprintf(stderr, "step %*d/%d  loss %.4f  lr %.2e  grad norm %.3f  %.0f tokens/s\n",
                     width, s.step, c.train.steps, s.loss, s.lr, s.grad_norm, s.tokens_per_s);
      });
  const auto ev0 = std::chrono::steady_clock::now();
  const train::EvalResult ev =
      train::evaluate(model, *task, c.train.data_seed, c.eval_sequences);
  const double eval_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ev0).count();
  const int tail = std::min<int>(100, static_cast<int>(r.losses.size()));
  double final_loss = 0.0;
  for (int i = static_cast<int>(r.losses.size()) - tail; i < static_cast<int>(r.losses.size()); ++i)
    final_loss += r.losses[i] / tail;
  std::fprintf(stderr, "trained in %.1f s; final loss (mean of the last %d steps) %.4f\n",
               r.seconds, tail, final_loss);
  std::string diff;
  if (ev.logit_diff_count) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ", mean logit diff (answer - wrong) %.3f", ev.logit_diff);
    diff = buf;
  }
  std::printf("eval: accuracy %.4f (%lld/%lld predictions in %d held-out sequences), loss %.4f%s\n",
              ev.accuracy(), static_cast<long long>(ev.correct),
              static_cast<long long>(ev.predictions), ev.sequences, ev.loss, diff.c_str());

  nlohmann::ordered_json heads;
  if (const auto* ind = dynamic_cast<const train::InductionTask*>(task.get())) {
    // Which heads attend like a previous-token head and like an induction head.
    const int n = (c.induction.seq_len - 1) / 2;
    const train::HeadScores hs = train::head_scores(model, ind->bos(), ind->symbol_ids(), n, 100,
                                                    train::eval_seed(c.train.data_seed));
    std::fprintf(stderr, "head scores on [BOS] A A, |A| = %d (previous-token / induction):\n", n);
    for (int L = 0; L < mc.n_layer; ++L) {
      std::fprintf(stderr, "  layer %d:", L);
      for (int h = 0; h < mc.n_head; ++h)
        std::fprintf(stderr, "  H%d %.2f/%.2f", h, hs.prev(L, h), hs.ind(L, h));
      std::fprintf(stderr, "\n");
    }
    const auto [pl, ph] = hs.best_prev();
    const auto [il, ih] = hs.best_induction();
    std::printf("heads: best previous-token L%dH%d (%.3f), best induction L%dH%d (%.3f); accuracy "
                "on the repeat %.4f\n",
                pl, ph, hs.prev(pl, ph), il, ih, hs.ind(il, ih), hs.repeat_accuracy);
    heads["previous_token"] = {{"layer", pl}, {"head", ph}, {"score", hs.prev(pl, ph)}};
    heads["induction"] = {{"layer", il}, {"head", ih}, {"score", hs.ind(il, ih)}};
    heads["repeat_accuracy"] = hs.repeat_accuracy;
    heads["repeat_length"] = n;
  }

  nlohmann::ordered_json log;
  log["causeway_version"] = CAUSEWAY_VERSION;
  log["git_hash"] = CAUSEWAY_GIT_HASH;
  log["task"] = task->describe();
  log["parameters"] = n_params;
  log["steps"] = c.train.steps;
  log["batch"] = c.train.batch;
  log["threads"] = threads;
  log["train_seconds"] = r.seconds;
  log["final_loss_mean_last_steps"] = final_loss;
  log["final_loss_steps_averaged"] = tail;
  log["eval"] = {{"sequences", ev.sequences},      {"predictions", ev.predictions},
                 {"accuracy", ev.accuracy()},      {"loss", ev.loss},
                 {"seconds", eval_s}};
  if (ev.logit_diff_count) log["eval"]["logit_diff"] = ev.logit_diff;
  if (!heads.empty()) log["heads"] = heads;
  const train::TokenizerFiles& tok = task->tokenizer_files();
  const Tokenizer t = tok.load();
  nlohmann::json extra;
  if (auto eos = t.eos_id()) extra["bos_token_id"] = extra["eos_token_id"] = *eos;
  save_gpt2_checkpoint(out, mc, model.weights(),
                       {{"vocab.json", tok.vocab_json + "\n"},
                        {"merges.txt", tok.merges_txt},
                        {"train.toml", c.text},
                        {"training.json", log.dump(2) + "\n"}},
                       o.overwrite, extra);
  std::printf("saved %s\n", out.string().c_str());
  return 0;
}

}  // namespace

Command add_train_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a small GPT-2 on a synthetic task (induction, IOI) with AdamW and save it "
               "as a Hugging Face checkpoint folder (config.json, model.safetensors, vocab.json, "
               "merges.txt) with the config that made it (train.toml). Seeded: the same config "
               "and thread count give the same weights.");
  auto o = std::make_shared<TrainCommandOptions>();
  cmd->add_option("config", o->config, "Training config (TOML): [model], [task], [train], [output]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "Checkpoint folder to write (default: [output] path)");
  cmd->add_flag("--overwrite", o->overwrite, "Replace the output folder if it exists");
  cmd->add_option("--threads", o->threads,
                  "CPU threads (default: all cores); weights are reproducible for one count")
      ->check(non_negative_integer());
  return [o]() { return run_train(*o); };
}

}  // namespace causeway::cli
