// ACDC over ranks and with prefix reuse (issue 21), in one run:
//   mpiexec -np 2 causeway_bench_acdc --model DIR [--pairs 32] [--receivers 3] [--threads 1]
// times ACDC (logit difference, threshold 0.05, corrupted ablation) over its first receivers
// on rank 0 alone and on every rank, each with and without prefix reuse, and prints the ratios.
// The pairs are IOI-shaped token ids drawn from a fixed seed (15 tokens; the corrupted prompt
// swaps the two name tokens' ids for others), so no tokenizer is needed. Runs without prefix
// reuse are hours on a CPU: --full-batches N times them over their first N batches of 64 rows
// instead (0: over the same receivers). Ratios compare seconds per edge-patched row.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/backend.h"
#include "parallel/collectives.h"
#include "parallel/communicator.h"
#include "patching/acdc.h"
#include "patching/circuit_eval.h"

namespace {

using Clock = std::chrono::steady_clock;
struct EnoughReceivers {};

causeway::PairDataset ioi_shaped(int n, int vocab) {
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  causeway::PairDataset d;
  d.source = "generated";
  for (int i = 0; i < n; ++i) {
    causeway::PromptPair p;
    for (int t = 0; t < 15; ++t) p.clean.push_back(tok(rng));
    p.corrupted = p.clean;
    const int a = tok(rng), b = tok(rng);
    p.clean[2] = p.clean[9] = a, p.clean[4] = b;  // "When A and B ..., A gave ... to" -> B
    p.corrupted[2] = p.corrupted[9] = tok(rng), p.corrupted[4] = tok(rng);
    p.answers = {b};
    p.wrongs = {a};
    d.pairs.push_back(std::move(p));
  }
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace causeway;
  MpiSession session(&argc, &argv);
  const Communicator world;
  CLI::App app{"causeway ACDC scaling benchmark"};
  std::string model_dir;
  int pairs = 32, receivers = 3, threads = 1;
  int full_batches = 0;
  app.add_option("--model", model_dir, "checkpoint folder")->required();
  app.add_option("--pairs", pairs, "IOI-shaped pairs")->capture_default_str();
  app.add_option("--receivers", receivers, "receivers timed, from Resid End back")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads per rank")->capture_default_str();
  app.add_option("--full-batches", full_batches, "time runs without prefix reuse over this many batches (0: the receivers)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  set_cpu_threads(threads);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  TransformerModel model = TransformerModel::load(model_dir);
  const PairDataset data = ioi_shaped(pairs, model.config().vocab_size);
  const CircuitGraph g(model.config());
  const int R = g.n_receivers();
  EdgeRunner runner(model, g);
  const std::unique_ptr<Collectives> all = make_mpi_collectives(world.comm());
  const bool lead = world.rank() == 0;
  if (lead)
    std::printf("ACDC (logit difference, threshold 0.05): %d layers, d_model %d; %d pairs of 15 tokens; "
                "first %d receivers; %d rank(s) x %d thread(s)\n",
                model.config().n_layer, model.config().n_embd, pairs, receivers, world.size(), threads);

  struct Timed {
    double seconds = 0.0;
    int64_t edges = 0, rows = 0;
    AcdcState state;
    double per_row() const { return seconds / static_cast<double>(std::max<int64_t>(rows, 1)); }
  };
  // On every rank of `group` (nullptr: rank 0 alone, the others wait at the barrier).
  auto time_acdc = [&](bool split, bool prefix) {
    Timed t;
    world.barrier();
    if (split || lead) {
      CircuitRuns runs(runner, data, 0, pairs, EdgeAblation::Corrupted);
      runs.set_group(split ? all.get() : nullptr);
      runs.set_prefix_reuse(prefix);
      int64_t rounds = 0;
      const int limit = prefix ? 0 : full_batches, per_round = split ? world.size() : 1;
      runs.set_batch_check([&] {
        if (limit > 0 && rounds == limit) throw EnoughReceivers{};
        ++rounds;
      });
      AcdcRequest req;
      req.metric = AcdcMetric::LogitDiff;
      req.threshold = 0.05;
      const auto t0 = Clock::now();
      try {
        acdc(runs, req, t.state, [&](int done, int) {
          if (done >= receivers) throw EnoughReceivers{};
        });
      } catch (const EnoughReceivers&) {
      }
      t.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      // Rows run: the search's own count, or (stopped by the batch limit) every round's batches
      // but the first, which is the starting metric's `pairs` rows.
      t.rows = limit > 0 ? pairs + (rounds - 1) * per_round * 64 : t.state.forwards;
      if (limit == 0)
        for (int r = R - receivers; r < R; ++r) t.edges += g.senders_into(r);
    }
    world.barrier();
    return t;
  };
  auto line = [&](const char* what, const Timed& t) {
    if (lead)
      std::printf("  %-30s %8.2f s, %lld rows, %.2f ms per row%s\n", what, t.seconds,
                  static_cast<long long>(t.rows), 1e3 * t.per_row(),
                  t.edges ? (", " + std::to_string(t.edges) + " edges into these receivers").c_str() : " (batch limit)");
  };
  {  // warm-up on every rank: the checkpoint's pages and the 64-row workspaces
    CircuitRuns warm(runner, data, 0, pairs, EdgeAblation::Corrupted);
    const std::vector<float> none(static_cast<size_t>(R) * g.n_senders(), 0.0f);
    warm.run({&none, &none}, 64);
  }
  const Timed one = time_acdc(false, true);
  line("1 rank, prefix reuse:", one);
  const Timed one_full = time_acdc(false, false);
  line("1 rank, full forwards:", one_full);
  Timed split = one, split_full = one_full;
  if (world.size() > 1) {
    split = time_acdc(true, true);
    line("every rank, prefix reuse:", split);
    split_full = time_acdc(true, false);
    line("every rank, full forwards:", split_full);
  }
  if (lead) {
    std::printf("ratios (time per row): %d ranks / 1 rank: %.2fx with prefix reuse, %.2fx with full forwards; "
                "prefix reuse / full forwards: %.2fx on 1 rank\n",
                world.size(), one.per_row() / split.per_row(), one_full.per_row() / split_full.per_row(),
                one_full.per_row() / one.per_row());
    const bool same = split.state.ablated == one.state.ablated && split.state.scores == one.state.scores &&
                      split.state.next == one.state.next;
    std::printf("1 rank and %d ranks (prefix reuse): %s\n", world.size(),
                same ? "identical removed edges and scores" : "DIFFERENT");
    // An upper bound: ACDC runs no row for the edges of a node that no longer reaches the output.
    const double rows_all = static_cast<double>(g.edge_count()) * pairs, at_n = split.per_row() * rows_all;
    std::printf("every edge x %d pairs (%.0f rows, an upper bound) at the %d-rank rate per row: %.0f s; at 64 "
                "ranks, if the rate scales linearly: %.0f s\n",
                pairs, rows_all, world.size(), at_n, at_n * world.size() / 64.0);
  }
  return 0;
}
