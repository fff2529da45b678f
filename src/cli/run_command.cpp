// `causeway run CONFIG.toml`: every experiment of the config over the prompt pairs, one
// result file, and a short table of the strongest components.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>

#include "cli/commands.h"
#include "cli/run_config.h"
#include "core/error.h"
#include "io/result_store.h"
#include "model/gpt2.h"
#include "model/tokenizer.h"

namespace causeway::cli {

namespace {

struct RunOptions {
  std::string config;
  std::string out;
  bool overwrite = false;
  bool quiet = false;
  int threads = -1;
  int top = 8;
};

// Progress on stderr: redrawn in place on a terminal, plain lines every few seconds in logs.
class Progress {
 public:
  Progress(std::string label, bool quiet)
      : label_(std::move(label)), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0),
        start_(std::chrono::steady_clock::now()), last_(start_) {}
  void operator()(int64_t done, int64_t total) {
    if (quiet_ || total == 0) return;
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (done < total && since < (tty_ ? 0.2 : 5.0)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = done / std::max(elapsed, 1e-9);
    const double eta = (total - done) / std::max(rate, 1e-9);
    std::fprintf(stderr, "%s%s: %lld/%lld patched runs (%.0f%%), %.0f/s, ETA %.0fs%s",
                 tty_ ? "\r" : "", label_.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total), 100.0 * done / total, rate, eta,
                 tty_ && done < total ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  std::string label_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

std::string cell_label(const SweepGrid& g, int64_t flat) {
  std::string s;
  for (int d = static_cast<int>(g.axes.size()) - 1; d >= 0; --d) {
    const GridAxis& a = g.axes[d];
    const int64_t i = flat % a.size;
    flat /= a.size;
    const std::string part = a.labels.empty() ? a.name + " " + std::to_string(i) : a.labels[i];
    s = part + (s.empty() ? "" : ", " + s);
  }
  return s;
}

void print_top(const ExperimentConfig& e, const SweepResult& r, int k) {
  std::vector<int64_t> order(r.mean.size());
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t i) { return std::isnan(r.mean[i]) ? -1.0f : std::abs(r.mean[i]); };
  const int64_t n = std::min<int64_t>(k, static_cast<int64_t>(order.size()));
  std::partial_sort(order.begin(), order.begin() + n, order.end(),
                    [&](int64_t a, int64_t b) { return key(a) > key(b); });
  double clean = 0, corrupted = 0;
  for (int p = 0; p < r.n_pairs; ++p) clean += r.baselines.clean_ld[p], corrupted += r.baselines.corrupted_ld[p];
  std::printf("\n%s (%s, %s, %s): clean logit diff %.3f, corrupted %.3f\n", e.name.c_str(),
              e.kind.c_str(), e.request.spec.name().c_str(), metric_name(e.request.metric).c_str(),
              clean / r.n_pairs, corrupted / r.n_pairs);
  for (int64_t i = 0; i < n; ++i)
    std::printf("  %-36s %+.4f\n", cell_label(r.grid, order[i]).c_str(), r.mean[order[i]]);
}

std::map<std::string, std::string> attributes_of(const ExperimentConfig& e, const RunConfig& c) {
  const SweepRequest& r = e.request;
  std::map<std::string, std::string> a = {
      {"kind", e.kind},
      {"sweep", r.spec.name()},
      {"positions", r.spec.by_pos ? "each" : "all"},
      {"metric", metric_name(r.metric)},
      {"mean_definition", r.metric == MetricKind::LogitDiff || r.metric == MetricKind::Normalized
                              ? "(mean patched - mean corrupted) / (mean clean - mean corrupted) of logit differences"
                              : "mean over pairs"},
  };
  if (e.kind == "activation")
    a["direction"] = r.direction == Direction::Denoising ? "denoising" : "noising";
  if (e.kind == "ablation") a["ablation"] = e.ablation;
  if (e.kind == "noise") {
    a["corruption"] = "gaussian_noise";
    a["noise_scale"] = std::to_string(r.noise.scale);
    a["noise_samples"] = std::to_string(r.noise.samples);
  } else {
    a["corruption"] = c.generator == "ioi"
                          ? (c.ioi.corruption == IoiOptions::Corruption::SubjectSwap ? "ioi_subject_swap"
                                                                                     : "ioi_third_name")
                          : "dataset";
  }
  if (r.window > 1) a["window"] = std::to_string(r.window);
  return a;
}

int run_config(const RunOptions& o) {
  RunConfig c = RunConfig::load(o.config);
  if (!o.out.empty()) c.output = o.out;
  set_cpu_threads(o.threads >= 0 ? o.threads : c.threads);
  if (std::filesystem::exists(c.output) && !o.overwrite)
    throw InputError(c.output.string(), "", "output file exists; pass --overwrite to replace it");

  GPT2Model model = GPT2Model::load(c.model);
  std::unique_ptr<Tokenizer> tok;
  if (std::filesystem::exists(c.model / "vocab.json") || std::filesystem::exists(c.model / "tokenizer.json"))
    tok = std::make_unique<Tokenizer>(Tokenizer::from_model_dir(c.model));
  PairDataset data;
  if (!c.generator.empty()) {
    if (!tok) throw InputError(c.model.string(), "vocab.json", "the IOI generator needs the model's tokenizer");
    data.pairs = generate_ioi(*tok, c.ioi);
    data.source = "ioi generator";
  } else {
    data = load_pairs_jsonl(c.data_file, tok.get());
  }
  for (const PromptPair& p : data.pairs) {
    TokenBatch b = TokenBatch::padded({p.clean, p.corrupted});
    model.validate(b, data.source + (p.line ? ": line " + std::to_string(p.line) : ""));
  }
  if (!o.quiet)
    std::fprintf(stderr, "causeway run: %zu pairs, %zu experiments, model %s\n", data.pairs.size(),
                 c.experiments.size(), c.model.string().c_str());

  ResultStore store(c.output, o.overwrite);
  store.write_meta(c.text, c.model.string(), model.config().to_json().dump());
  store.write_data(data, tok.get());
  for (const ExperimentConfig& e : c.experiments) {
    SweepRunner runner(model, data, e.request);
    Progress progress(e.name, o.quiet);
    const auto t0 = std::chrono::steady_clock::now();
    SweepResult r = runner.run([&](int64_t d, int64_t t) { progress(d, t); });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto attributes = attributes_of(e, c);
    attributes["elapsed_seconds"] = std::to_string(seconds);
    store.write_experiment({e.name, attributes, &r});
    if (!o.quiet) print_top(e, r, o.top);
  }
  if (!o.quiet) std::printf("\nwrote %s\n", c.output.string().c_str());
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run the experiments of a TOML config (patching, ablation, noise sweeps) and write "
             "one HDF5 result file.");
  cmd->add_option("config", o->config, "Experiment config (see configs/ for ready ones)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "Result file; overrides [output] path of the config");
  cmd->add_flag("--overwrite", o->overwrite, "Replace the result file if it exists");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress or summary output");
  cmd->add_option("--threads", o->threads, "CPU threads; overrides [model] threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top", o->top, "Components listed per experiment in the summary")
      ->capture_default_str();
  return [o]() { return run_config(*o); };
}

}  // namespace causeway::cli
