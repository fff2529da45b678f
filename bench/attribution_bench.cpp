// Attribution patching's cost against one clean forward of the same batch, and activation
// patching's time on the same grids (heads: measured; neurons: timed on a slice, scaled).
//   causeway_bench_attribution --model DIR [--pairs 32] [--threads 2]
// DIR needs the GPT-2 tokenizer (IOI pairs); tests/reference/make_goldens.py --gpt2-small
// writes a random GPT-2-small-shaped one.
#include <chrono>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/backend.h"
#include "data/ioi.h"
#include "model/transformer_model.h"
#include "model/tokenizer.h"
#include "patching/attribution.h"
#include "patching/sweep.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  using namespace causeway;
  CLI::App app{"causeway attribution patching benchmark"};
  std::string model_dir;
  int pairs = 32, threads = 2;
  app.add_option("--model", model_dir, "GPT-2 checkpoint folder with vocab.json + merges.txt")->required();
  app.add_option("--pairs", pairs, "IOI pairs")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  set_cpu_threads(threads);

  TransformerModel model = TransformerModel::load(model_dir);
  const Tokenizer tok = Tokenizer::from_model_dir(model_dir);
  PairDataset data;
  IoiOptions io;
  io.n = pairs;
  data.pairs = generate_ioi(tok, io);
  data.source = "ioi";
  std::vector<std::vector<int32_t>> rows;
  std::vector<int> read;
  for (const PromptPair& p : data.pairs) rows.push_back(p.clean), read.push_back(read_position(p));
  const TokenBatch clean = TokenBatch::padded(rows);

  ForwardOptions fo;
  fo.rows = LogitRows::Last;
  fo.read_pos = &read;
  HookPlan none(model.config().n_layer);
  model.forward(clean, none, fo);  // warm-up
  double forward_s = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = Clock::now();
    model.forward(clean, none, fo);
    forward_s = std::min(forward_s, since(t0));
  }

  auto attribution = [&](SweepKind kind) {
    SweepRequest req;
    req.spec.kind = kind;
    req.spec.by_pos = false;
    req.pairs_per_block = pairs;
    AttributionRunner atp(model, data, req, {});
    const auto t0 = Clock::now();
    atp.run();
    return std::pair{since(t0), static_cast<int64_t>(atp.grid().cells.size())};
  };
  const auto [heads_s, heads_cells] = attribution(SweepKind::HeadOut);
  const auto [neurons_s, neuron_cells] = attribution(SweepKind::MlpNeuron);

  SweepRequest act;
  act.spec.kind = SweepKind::HeadOut;
  act.spec.by_pos = false;
  SweepRunner heads_truth(model, data, act);
  auto t0 = Clock::now();
  heads_truth.run();
  const double act_heads_s = since(t0);
  act.spec.kind = SweepKind::MlpNeuron;
  SweepRunner neurons_truth(model, data, act);
  // Neurons: one layer's first 32 units timed, scaled to the whole grid.
  const int slice = 32;
  std::vector<float> effect(static_cast<size_t>(pairs) * slice);
  SweepBaselines base;
  t0 = Clock::now();
  neurons_truth.run_block(0, pairs, 0, slice, effect.data(), base);
  const double act_neurons_s = since(t0) * static_cast<double>(neuron_cells) / slice;

  std::printf("%d IOI pairs, %d tokens, %d threads; one clean forward %.3f s\n", pairs, clean.T, threads, forward_s);
  std::printf("attribution, all heads (%lld cells):   %7.3f s = %5.2fx a forward; activation patching %8.1f s (%.0fx slower)\n",
              static_cast<long long>(heads_cells), heads_s, heads_s / forward_s, act_heads_s, act_heads_s / heads_s);
  std::printf("attribution, all neurons (%lld cells): %7.3f s = %5.2fx a forward; activation patching ~%8.1f s (%.0fx slower, from %d cells)\n",
              static_cast<long long>(neuron_cells), neurons_s, neurons_s / forward_s, act_neurons_s, act_neurons_s / neurons_s, slice);
  SweepRequest both;
  both.spec.kind = SweepKind::HeadOut;
  both.spec.by_pos = false;
  both.pairs_per_block = pairs;
  AttributionRunner shared(model, data, both, {}, {SweepSpec{SweepKind::MlpNeuron, false}});
  t0 = Clock::now();
  shared.run_all();
  const double both_s = since(t0);
  std::printf("all heads + all neurons from one pass: %.3f s = %.2fx a forward (target <= 4x)\n",
              both_s, both_s / forward_s);
  return 0;
}
