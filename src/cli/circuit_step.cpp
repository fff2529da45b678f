#include "cli/circuit_step.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "patching/acdc.h"
#include "patching/circuit_eval.h"

namespace causeway {

namespace {

// Every edge, the kept ones first in `kept` order, then the others by decreasing score.
std::vector<std::pair<int, int>> ranking_of(const CircuitGraph& g,
                                            const std::vector<std::pair<int, int>>& kept,
                                            const std::vector<double>& scores) {
  const int S = g.n_senders();
  std::vector<std::pair<int, int>> rest;
  for (int r = 0; r < g.n_receivers(); ++r)
    for (int s = 0; s < g.senders_into(r); ++s)
      if (std::find(kept.begin(), kept.end(), std::pair{s, r}) == kept.end()) rest.push_back({s, r});
  std::stable_sort(rest.begin(), rest.end(), [&](auto a, auto b) {
    return scores[static_cast<size_t>(a.second) * S + a.first] >
           scores[static_cast<size_t>(b.second) * S + b.first];
  });
  std::vector<std::pair<int, int>> out = kept;
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

std::string percent(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f%%", 100.0 * x);
  return b;
}

}  // namespace

std::vector<std::string> write_circuits(TransformerModel& model, const PairDataset& data,
                                        const RunConfig& cfg, ResultStore& store, bool progress) {
  std::vector<std::string> lines;
  H5File& f = store.file();
  const CircuitGraph g(model.config());
  const int S = g.n_senders();
  for (const CircuitConfig& c : cfg.circuits) {
    const std::string group = "/circuits/" + c.name;
    if (f.exists(group + "/edges") && f.exists(group + "/faithfulness/recovered")) {
      lines.push_back("circuit " + c.name + ": complete in the file, kept");
      continue;
    }
    if (f.exists(group)) f.remove(group);  // a circuit a stopped job began
    const int P = c.pairs > 0 ? c.pairs : static_cast<int>(data.pairs.size());
    EdgeRunner runner(model, g);
    CircuitRuns runs(runner, data, 0, P, c.ablation);
    std::vector<std::pair<int, int>> kept, ranking;
    std::vector<double> kept_scores;
    std::string summary;
    if (c.method == "acdc") {
      auto report = [&](int done, int total) {
        if (progress && (done % 16 == 0 || done == total))
          std::fprintf(stderr, "causeway: circuit %s (ACDC): %d of %d receivers\n", c.name.c_str(), done, total);
      };
      const AcdcResult res = acdc(runs, c.acdc, report);
      kept = res.kept;
      kept_scores = res.kept_scores;
      ranking = ranking_of(g, kept, res.scores);
      char b[160];
      std::snprintf(b, sizeof b, "threshold %g, %s %.4g, %lld edge-patched rows", c.acdc.threshold,
                    c.acdc.metric == AcdcMetric::Kl ? "KL" : "logit difference drop", res.metric,
                    static_cast<long long>(res.forwards));
      summary = b;
    } else {
      // The ranking experiment's mean [sender, receiver]: the change of the metric per edge.
      const std::vector<float> mean = f.read_floats("/experiments/" + c.experiment + "/mean");
      std::vector<double> score(static_cast<size_t>(g.n_receivers()) * S, 0.0);
      for (int r = 0; r < g.n_receivers(); ++r)
        for (int s = 0; s < g.senders_into(r); ++s)
          score[static_cast<size_t>(r) * S + s] = std::abs(mean[static_cast<size_t>(s) * g.n_receivers() + r]);
      ranking = ranking_of(g, {}, score);
      const int64_t n = std::min<int64_t>(c.size, static_cast<int64_t>(ranking.size()));
      kept.assign(ranking.begin(), ranking.begin() + n);
      for (auto [s, r] : kept) kept_scores.push_back(mean[static_cast<size_t>(s) * g.n_receivers() + r]);
      summary = "top " + std::to_string(n) + " by |mean| of " + c.experiment;
    }
    const FaithfulnessCurve curve = faithfulness_curve(
        runs, ranking, doubling_sizes(static_cast<int64_t>(ranking.size())), c.acdc.max_rows);
    const FaithfulnessCurve at_kept = faithfulness_curve(
        runs, ranking, {static_cast<int64_t>(kept.size())}, c.acdc.max_rows);

    f.ensure_group(group + "/faithfulness");
    std::vector<std::string> names;
    std::vector<float> scores;
    for (size_t i = 0; i < kept.size(); ++i) {
      names.push_back(g.edge_name(kept[i].first, kept[i].second));
      scores.push_back(static_cast<float>(kept_scores[i]));
    }
    f.write_strings(group + "/edges", names);
    f.write_floats(group + "/scores", scores.data(), {static_cast<int64_t>(scores.size())});
    std::vector<int32_t> sizes(curve.edges.begin(), curve.edges.end());
    std::vector<float> metric(curve.metric.begin(), curve.metric.end()),
        recovered(curve.recovered.begin(), curve.recovered.end());
    const int64_t n = static_cast<int64_t>(sizes.size());
    f.write_ints(group + "/faithfulness/edges", sizes.data(), {n});
    f.write_floats(group + "/faithfulness/metric", metric.data(), {n});
    f.set_attribute(group, "method", c.method);
    f.set_attribute(group, "metric", c.method == "acdc" && c.acdc.metric == AcdcMetric::Kl ? "kl" : "logit_diff");
    f.set_attribute(group, "ablation", c.ablation == EdgeAblation::Mean ? "mean" : "corrupted");
    if (c.method == "acdc") f.set_attribute(group, "threshold", c.acdc.threshold);
    else f.set_attribute(group, "ranking", c.experiment), f.set_int_attribute(group, "size", c.size);
    f.set_int_attribute(group, "pairs", P);
    f.set_int_attribute(group, "graph_edges", g.edge_count());
    f.set_attribute(group, "clean_metric", curve.clean_metric);
    f.set_attribute(group, "ablated_metric", curve.ablated_metric);
    f.set_attribute(group, "recovered", at_kept.recovered.front());
    f.set_attribute(group + "/faithfulness", "description",
                    "metric: mean logit difference over the pairs with the top `edges` edges of "
                    "the ranking kept and every other edge ablated; recovered: (metric - "
                    "ablated_metric) / (clean_metric - ablated_metric)");
    // Last: its presence marks the circuit complete for --resume.
    f.write_floats(group + "/faithfulness/recovered", recovered.data(), {n});
    lines.push_back("circuit " + c.name + ": " + std::to_string(kept.size()) + " of " +
                    std::to_string(g.edge_count()) + " edges kept (" + summary + "); they recover " +
                    percent(at_kept.recovered.front()) + " of the logit difference");
  }
  return lines;
}

}  // namespace causeway
