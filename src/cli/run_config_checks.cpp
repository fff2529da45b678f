// RunConfig::check_against: the checks of a run config that need the model and the pairs, so
// that a bad value stops the job before the result file is laid out, not on some rank later.
#include <algorithm>
#include <string>

#include "cli/run_config.h"
#include "core/error.h"
#include "model/hooks.h"
#include "patching/circuit_graph.h"

namespace causeway {

namespace {

// The pair with the shortest clean prompt (positions past it do not exist for that pair).
const PromptPair& shortest(const PairDataset& data) {
  return *std::min_element(data.pairs.begin(), data.pairs.end(),
                           [](const PromptPair& a, const PromptPair& b) { return a.clean.size() < b.clean.size(); });
}

std::string pair_name(const PairDataset& data, const PromptPair& p) {
  const auto i = &p - data.pairs.data();
  return "pair " + std::to_string(i) + (p.line ? " (" + data.source + " line " + std::to_string(p.line) + ")" : "");
}

void check_position(const std::string& file, const std::string& key, int pos, const PairDataset& data) {
  const PromptPair& s = shortest(data);
  if (pos >= static_cast<int>(s.clean.size()))
    throw InputError(file, key,
                     "position " + std::to_string(pos) + " is outside the prompt (" + pair_name(data, s) +
                         " has " + std::to_string(s.clean.size()) + " tokens, positions 0.." +
                         std::to_string(s.clean.size() - 1) + ")");
}

}  // namespace

void RunConfig::check_edges(const ModelConfig& model, const PairDataset& data) const {
  const std::string file = path.string();
  const bool any = !circuits.empty() ||
                   std::any_of(experiments.begin(), experiments.end(),
                               [](const ExperimentConfig& e) { return e.is_edge_kind(); });
  if (!any) return;
  // Edge forwards do not shard yet.
  if (tp > 1)
    throw InputError(file, "parallel.tp",
                     std::to_string(tp) + ": edge experiments and circuits run with tp = 1; split "
                     "their pairs over data-parallel ranks instead");
  const CircuitGraph graph(model);
  for (size_t i = 0; i < experiments.size(); ++i)
    for (const std::string& name : experiments[i].receivers)
      if (graph.find_receiver(name) < 0)
        throw InputError(file, "experiment[" + std::to_string(i) + "].receivers",
                         "'" + name + "' is not a receiver of this model (receivers are \"A{layer}.{head}.Q\", "
                         "\"A{layer}.{kv head}.K\" / \".V\", \"MLP {layer}\" and \"Resid End\", layers 0.." +
                             std::to_string(model.n_layer - 1) + ", heads 0.." + std::to_string(model.n_head - 1) + ")");
  for (size_t i = 0; i < circuits.size(); ++i) {
    const CircuitConfig& c = circuits[i];
    const std::string where = "circuit[" + std::to_string(i) + "].";
    if (c.pairs > static_cast<int>(data.pairs.size()))
      throw InputError(file, where + "pairs",
                       std::to_string(c.pairs) + " pairs asked, but " + data.source + " has " +
                           std::to_string(data.pairs.size()));
    if (c.ablation == EdgeAblation::Mean)
      for (const PromptPair& p : data.pairs)
        if (p.clean.size() != data.pairs.front().clean.size())
          throw InputError(file, where + "ablation",
                           "mean ablation of edges averages position by position, so every prompt "
                           "needs one length; " + pair_name(data, p) + " has " +
                               std::to_string(p.clean.size()) + " tokens, the first pair " +
                               std::to_string(data.pairs.front().clean.size()));
    // An ablation that reproduces the clean run leaves `recovered` = 0 / 0 (the circuit step
    // also checks the measured metrics); refused before any work, as metric "normalized" is.
    if (allow_nonfinite) continue;
    const int P = c.pairs > 0 ? c.pairs : static_cast<int>(data.pairs.size());
    bool all_same = true;
    for (int p = 0; p < P && all_same; ++p)
      all_same = c.ablation == EdgeAblation::Mean ? data.pairs[p].clean == data.pairs.front().clean
                                                   : data.pairs[p].clean == data.pairs[p].corrupted;
    if (all_same)
      throw InputError(file, where + (c.ablation == EdgeAblation::Mean ? "pairs" : "ablation"),
                       c.ablation == EdgeAblation::Mean
                           ? "mean ablation over " + std::string(P == 1 ? "one pair" : "pairs with one clean prompt") +
                                 " ablates every edge to the clean run itself, so the share a circuit "
                                 "recovers, (metric - ablated) / (clean - ablated), divides by 0; use "
                                 "more pairs or ablation = \"corrupted\""
                           : "every pair's clean and corrupted prompts are the same tokens, so ablating "
                             "to the corrupted run changes nothing and the share a circuit recovers "
                             "divides by 0; give the pairs different corrupted prompts");
  }
}

void RunConfig::check_against(const ModelConfig& model, const PairDataset& data) const {
  const std::string file = path.string();
  if (data.pairs.empty()) throw InputError(data.source, "", "no prompt pairs");
  check_edges(model, data);
  for (size_t i = 0; i < experiments.size(); ++i) {
    const ExperimentConfig& e = experiments[i];
    const SweepRequest& r = e.request;
    const std::string where = "experiment[" + std::to_string(i) + "].";
    if (r.window > model.n_layer)
      throw InputError(file, where + "window",
                       "must be between 1 and n_layer (" + std::to_string(model.n_layer) + "), got " +
                           std::to_string(r.window));
    if (r.spec.kind == SweepKind::MlpNeuron && r.spec.position >= 0)
      check_position(file, where + "positions", r.spec.position, data);
    if (r.source == PatchSource::Noise)
      for (int p : r.noise.positions) check_position(file, where + "noise_positions", p, data);
    if (r.source == PatchSource::Resample && data.pairs.size() < 2)
      throw InputError(file, where + "ablation",
                       "resample ablation takes values from other pairs, but " + data.source +
                           " has only one pair");
    if (r.source == PatchSource::Mean || r.source == PatchSource::Resample) {
      // Values come from other prompts position by position, so every prompt needs one length.
      const PromptPair& first = data.pairs.front();
      for (const PromptPair& p : data.pairs)
        if (p.clean.size() != first.clean.size())
          throw InputError(file, where + "ablation",
                           e.ablation + " ablation needs prompts of one length: " + pair_name(data, p) +
                               " has " + std::to_string(p.clean.size()) + " tokens, " +
                               pair_name(data, first) + " has " + std::to_string(first.clean.size()));
    }
  }
  std::vector<std::string> cached;
  for (const std::string& h : cache_hooks) {
    const std::string name = HookPoint::parse(h, model, file + ": output.cache").name();
    if (std::find(cached.begin(), cached.end(), name) != cached.end())
      throw InputError(file, "output.cache", "'" + h + "' names " + name + ", which is listed twice");
    cached.push_back(name);
  }
}

}  // namespace causeway
