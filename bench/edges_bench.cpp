// Edge methods' cost against one forward of the same clean batch: EAP (2 recording forwards +
// 1 forward/backward), EAP-IG (k steps, both variants) and ACDC (timed over its first receivers
// and extrapolated over all of them, since a full ACDC of a GPT-2-small-shaped graph is hours
// on a CPU).
//   causeway_bench_edges --model DIR --pairs FILE.jsonl [--threads 2] [--steps 5] [--repeats 3]
//                        [--activations] [--acdc-receivers 4] [--scores OUT.bin]
// --scores writes EAP's mean score per edge, float32 [sender, receiver], for side-by-side
// comparisons (bench/circuits_vs_autocircuit.py).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/backend.h"
#include "patching/acdc.h"
#include "patching/circuit_eval.h"
#include "patching/edge_attribution.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
struct EnoughReceivers {};

}  // namespace

int main(int argc, char** argv) {
  using namespace causeway;
  CLI::App app{"causeway edge methods benchmark"};
  std::string model_dir, pairs_file, scores_file;
  int threads = 2, steps = 5, acdc_receivers = 4, repeats = 3;
  app.add_option("--model", model_dir, "checkpoint folder")->required();
  app.add_option("--pairs", pairs_file, "prompt pairs (JSONL with token ids)")->required();
  app.add_option("--threads", threads, "CPU threads")->capture_default_str();
  app.add_option("--steps", steps, "EAP-IG steps")->capture_default_str();
  app.add_option("--acdc-receivers", acdc_receivers, "ACDC receivers timed (0: skip)")->capture_default_str();
  app.add_option("--repeats", repeats, "best of this many runs")->capture_default_str();
  app.add_option("--scores", scores_file, "write EAP's mean scores here (float32 [S, R])");
  bool acts = false;
  app.add_flag("--activations", acts, "also time EAP-IG's activation variant (k (n_layer + 1) backward passes)");
  CLI11_PARSE(app, argc, argv);
  set_cpu_threads(threads);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure as soon as it is measured

  TransformerModel model = TransformerModel::load(model_dir);
  const PairDataset data = load_pairs_jsonl(pairs_file, nullptr);
  const int P = static_cast<int>(data.pairs.size());
  const CircuitGraph g(model.config());
  const int S = g.n_senders(), R = g.n_receivers();
  EdgeRunner runner(model, g);
  const EdgePairs ep = edge_pairs(data, 0, P);

  auto best = [&](auto&& fn) {
    double t = 1e30;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = Clock::now();
      fn();
      t = std::min(t, since(t0));
    }
    return t;
  };
  ForwardOptions fo;
  fo.rows = LogitRows::Last;
  fo.read_pos = &ep.read;
  auto forward = [&] {
    HookPlan none(model.config().n_layer);
    model.forward(ep.clean, none, fo);
  };
  std::vector<float> scores(static_cast<size_t>(P) * S * R);
  auto method = [&](EdgeMethod m, int k) {
    EdgeAttributionRequest req;
    req.method = m;
    req.steps = k;
    return best([&] { edge_attribution(runner, data, 0, P, req, scores.data()); });
  };
  forward();  // warm-up: workspaces and caches allocated once
  method(EdgeMethod::Eap, 1);
  const double forward_s = best(forward);
  const double ig_inputs_s = method(EdgeMethod::EapIgInputs, steps);
  const double ig_acts_s = acts ? method(EdgeMethod::EapIgActivations, steps) : 0.0;
  const double eap_s = method(EdgeMethod::Eap, 1);  // last: `scores` holds EAP's

  std::printf("model %s: %d layers, %d heads, d_model %d; %d pairs of %d tokens; %d senders x %d "
              "receivers, %lld edges; %d threads\n",
              model_dir.c_str(), model.config().n_layer, model.config().n_head, model.config().n_embd,
              P, ep.clean.T, S, R, static_cast<long long>(g.edge_count()), threads);
  std::printf("forward (clean batch, logits at the read position): %.4f s\n", forward_s);
  std::printf("EAP, every edge:                 %.4f s = %.2fx one forward\n", eap_s, eap_s / forward_s);
  std::printf("EAP-IG inputs, k = %d:            %.4f s = %.2fx\n", steps, ig_inputs_s, ig_inputs_s / forward_s);
  if (acts)
    std::printf("EAP-IG activations, k = %d:       %.4f s = %.2fx\n", steps, ig_acts_s, ig_acts_s / forward_s);

  if (!scores_file.empty()) {
    std::vector<float> mean(static_cast<size_t>(S) * R, 0.0f);
    for (int p = 0; p < P; ++p)
      for (size_t i = 0; i < mean.size(); ++i) mean[i] += scores[static_cast<size_t>(p) * S * R + i] / P;
    std::ofstream(scores_file, std::ios::binary)
        .write(reinterpret_cast<const char*>(mean.data()), static_cast<std::streamsize>(mean.size() * sizeof(float)));
  }

  if (acdc_receivers > 0) {
    CircuitRuns runs(runner, data, 0, P, EdgeAblation::Corrupted);
    AcdcRequest req;
    req.metric = AcdcMetric::LogitDiff;
    req.threshold = 0.05;
    int64_t tested = 0;
    const auto t0 = Clock::now();
    double seconds = 0.0;
    try {
      acdc(runs, req, [&](int done, int) {
        // Receivers are visited from Resid End back; sum the edges tested so far.
        tested = 0;
        for (int r = R - done; r < R; ++r) tested += g.senders_into(r);
        if (done >= acdc_receivers) {
          seconds = since(t0);
          throw EnoughReceivers{};
        }
      });
      seconds = since(t0);
    } catch (const EnoughReceivers&) {
    }
    const double per_edge = seconds / static_cast<double>(std::max<int64_t>(tested, 1));
    std::printf("ACDC (logit difference, threshold 0.05): %d receivers, %lld edges tested in %.2f s "
                "(%.4f s per edge); all %lld edges at that rate: %.0f s\n",
                acdc_receivers, static_cast<long long>(tested), seconds, per_edge,
                static_cast<long long>(g.edge_count()), per_edge * static_cast<double>(g.edge_count()));
  }
  return 0;
}
