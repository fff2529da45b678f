#include "cli/circuit_step.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/fault_hooks.h"
#include "parallel/collectives.h"
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

std::string number(const char* format, double x) {
  char b[48];
  std::snprintf(b, sizeof b, format, x);
  return b;
}

// The circuit group's `complete` attribute, or -1 where it has none (files written before it).
int64_t complete_attribute(const H5File& f, const std::string& group) {
  if (H5Aexists_by_name(f.id(), group.c_str(), "complete", H5P_DEFAULT) <= 0) return -1;
  H5Handle attr(H5Aopen_by_name(f.id(), group.c_str(), "complete", H5P_DEFAULT, H5P_DEFAULT));
  h5_check(attr.get(), "H5Aopen_by_name", f.path(), group + "@complete");
  int64_t v = 0;
  h5_check(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), "H5Aread", f.path(), group + "@complete");
  return v;
}

// A circuit the file holds in full: marked complete, or (older files) with its last dataset.
bool complete_in(const H5File& f, const std::string& group) {
  if (!f.exists(group)) return false;
  const int64_t complete = complete_attribute(f, group);
  if (complete >= 0) return complete == 1;
  return f.exists(group + "/edges") && f.exists(group + "/faithfulness/recovered");
}

// Why a circuit's recovered share is undefined, and what to change.
std::string undefined_recovery(const CircuitConfig& c, const FaithfulnessCurve& base) {
  const std::string cause =
      c.ablation == EdgeAblation::Mean
          ? "mean ablation over one pair (or over identical clean prompts) ablates to the clean "
            "run itself: use more pairs, or ablation = \"corrupted\""
          : "are the corrupted prompts the same as the clean ones?";
  return "the clean and all-ablated logit differences agree within rounding (" +
         number("%.6g", base.clean_metric) + " and " + number("%.6g", base.ablated_metric) +
         "), so the share a circuit recovers, (metric - ablated) / (clean - ablated), is undefined; " +
         cause;
}

struct Found {
  std::vector<std::pair<int, int>> kept, ranking;
  std::vector<double> kept_scores;
  std::string summary;
};

Found find_acdc(CircuitRuns& runs, const CircuitGraph& g, const CircuitConfig& c, bool progress,
                AcdcState& state) {
  auto report = [&](int done, int total) {
    if (progress && (done % 16 == 0 || done == total))
      std::fprintf(stderr, "causeway: circuit %s (ACDC): %d of %d receivers\n", c.name.c_str(), done, total);
  };
  if (progress && state.started())
    std::fprintf(stderr, "causeway: circuit %s (ACDC): continuing after %d of %d receivers\n", c.name.c_str(),
                 g.n_receivers() - 1 - state.next, g.n_receivers());
  else
    report(0, g.n_receivers());
  const AcdcResult res = acdc(runs, c.acdc, state, report);
  Found out;
  out.kept = res.kept;
  out.kept_scores = res.kept_scores;
  out.ranking = ranking_of(g, out.kept, res.scores);
  char b[160];
  std::snprintf(b, sizeof b, "threshold %g, %s %.4g, %lld edge-patched rows", c.acdc.threshold,
                c.acdc.metric == AcdcMetric::Kl ? "KL" : "logit difference drop", res.metric,
                static_cast<long long>(res.forwards));
  out.summary = b;
  return out;
}

// A stopped ACDC search's state in its circuit's group: which settings it was found under
// (a resume with other settings starts afresh), the receiver to visit next, the metric, the
// rows run, the removed edges and every score so far.
std::vector<double> state_settings(const CircuitConfig& c, const CircuitGraph& g, int P) {
  return {c.acdc.threshold, c.acdc.metric == AcdcMetric::Kl ? 1.0 : 0.0,
          c.ablation == EdgeAblation::Mean ? 1.0 : 0.0, static_cast<double>(P),
          static_cast<double>(g.edge_count())};
}

void write_acdc_state(H5File& f, const std::string& group, const std::vector<double>& settings,
                      const AcdcState& st) {
  const std::string at = group + "/acdc_state";
  f.remove(at);
  f.write_doubles(at + "/settings", settings.data(), {static_cast<int64_t>(settings.size())});
  const std::vector<double> where = {static_cast<double>(st.next), st.metric, static_cast<double>(st.forwards)};
  f.write_doubles(at + "/position", where.data(), {3});
  f.write_floats(at + "/ablated", st.ablated.data(), {static_cast<int64_t>(st.ablated.size())});
  f.write_doubles(at + "/scores", st.scores.data(), {static_cast<int64_t>(st.scores.size())});
  f.set_attribute(at, "description",
                  "where a stopped ACDC search continues on --resume: settings (threshold, kl, "
                  "mean ablation, pairs, graph edges), position (next receiver, metric, rows "
                  "run), ablated and scores (receiver-major)");
}

AcdcState read_acdc_state(const H5File& f, const std::string& group, const std::vector<double>& settings) {
  const std::string at = group + "/acdc_state";
  AcdcState st;
  if (!f.exists(at + "/scores") || f.read_doubles(at + "/settings") != settings) return st;
  const std::vector<double> where = f.read_doubles(at + "/position");
  st.next = static_cast<int>(where.at(0));
  st.metric = where.at(1);
  st.forwards = static_cast<int64_t>(where.at(2));
  st.ablated = f.read_floats(at + "/ablated");
  st.scores = f.read_doubles(at + "/scores");
  return st;
}

// What rank 0 reads from the file for one circuit, sent to every rank as bytes.
struct CircuitInputs {
  bool complete = false;
  std::vector<float> ranking_mean;
  AcdcState state;
};

template <class T>
void put(std::vector<uint8_t>& b, const std::vector<T>& v) {
  const uint64_t n = v.size();
  const auto* p = reinterpret_cast<const uint8_t*>(&n);
  b.insert(b.end(), p, p + sizeof n);
  const auto* d = reinterpret_cast<const uint8_t*>(v.data());
  b.insert(b.end(), d, d + n * sizeof(T));
}

template <class T>
std::vector<T> take(const std::vector<uint8_t>& b, size_t& at) {
  uint64_t n = 0;
  std::memcpy(&n, b.data() + at, sizeof n);
  at += sizeof n;
  std::vector<T> v(n);
  if (n) std::memcpy(v.data(), b.data() + at, n * sizeof(T));
  at += n * sizeof(T);
  return v;
}

std::vector<uint8_t> to_bytes(const CircuitInputs& in) {
  std::vector<uint8_t> b;
  put(b, std::vector<double>{in.complete ? 1.0 : 0.0, static_cast<double>(in.state.next), in.state.metric,
                             static_cast<double>(in.state.forwards)});
  put(b, in.ranking_mean);
  put(b, in.state.ablated);
  put(b, in.state.scores);
  return b;
}

CircuitInputs from_bytes(const std::vector<uint8_t>& b) {
  size_t at = 0;
  const std::vector<double> head = take<double>(b, at);
  CircuitInputs in;
  in.complete = head.at(0) != 0.0;
  in.state.next = static_cast<int>(head.at(1));
  in.state.metric = head.at(2);
  in.state.forwards = static_cast<int64_t>(head.at(3));
  in.ranking_mean = take<float>(b, at);
  in.state.ablated = take<float>(b, at);
  in.state.scores = take<double>(b, at);
  return in;
}

// The ranking experiment's mean [sender, receiver]: the change of the metric per edge.
Found find_top(const CircuitGraph& g, const CircuitConfig& c, const std::vector<float>& mean) {
  const int S = g.n_senders();
  std::vector<double> score(static_cast<size_t>(g.n_receivers()) * S, 0.0);
  for (int r = 0; r < g.n_receivers(); ++r)
    for (int s = 0; s < g.senders_into(r); ++s)
      score[static_cast<size_t>(r) * S + s] = std::abs(mean[static_cast<size_t>(s) * g.n_receivers() + r]);
  Found out;
  out.ranking = ranking_of(g, {}, score);
  const int64_t n = std::min<int64_t>(c.size, static_cast<int64_t>(out.ranking.size()));
  out.kept.assign(out.ranking.begin(), out.ranking.begin() + n);
  for (auto [s, r] : out.kept) out.kept_scores.push_back(mean[static_cast<size_t>(s) * g.n_receivers() + r]);
  out.summary = "top " + std::to_string(n) + " by |mean| of " + c.experiment;
  return out;
}

void write_circuit(H5File& f, const std::string& group, const CircuitConfig& c, const CircuitGraph& g,
                   int P, const Found& found, const FaithfulnessCurve& curve, double recovered_at_kept) {
  f.remove(group);  // the layout's empty group, or a circuit a stopped job began
  f.ensure_group(group + "/faithfulness");
  std::vector<std::string> names;
  std::vector<float> scores;
  for (size_t i = 0; i < found.kept.size(); ++i) {
    names.push_back(g.edge_name(found.kept[i].first, found.kept[i].second));
    scores.push_back(static_cast<float>(found.kept_scores[i]));
  }
  f.write_strings(group + "/edges", names);
  f.write_floats(group + "/scores", scores.data(), {static_cast<int64_t>(scores.size())});
  std::vector<int32_t> sizes(curve.edges.begin(), curve.edges.end());
  std::vector<float> metric(curve.metric.begin(), curve.metric.end()),
      recovered(curve.recovered.begin(), curve.recovered.end());
  const int64_t n = static_cast<int64_t>(sizes.size());
  f.write_ints(group + "/faithfulness/edges", sizes.data(), {n});
  f.write_floats(group + "/faithfulness/metric", metric.data(), {n});
  f.write_floats(group + "/faithfulness/recovered", recovered.data(), {n});
  f.set_attribute(group, "method", c.method);
  f.set_attribute(group, "metric", c.method == "acdc" && c.acdc.metric == AcdcMetric::Kl ? "kl" : "logit_diff");
  f.set_attribute(group, "ablation", c.ablation == EdgeAblation::Mean ? "mean" : "corrupted");
  if (c.method == "acdc") f.set_attribute(group, "threshold", c.acdc.threshold);
  else f.set_attribute(group, "ranking", c.experiment), f.set_int_attribute(group, "size", c.size);
  f.set_int_attribute(group, "pairs", P);
  f.set_int_attribute(group, "graph_edges", g.edge_count());
  f.set_attribute(group, "clean_metric", curve.clean_metric);
  f.set_attribute(group, "ablated_metric", curve.ablated_metric);
  f.set_attribute(group, "recovered", recovered_at_kept);
  f.set_attribute(group + "/faithfulness", "description",
                  "metric: mean logit difference over the pairs with the top `edges` edges of "
                  "the ranking kept and every other edge ablated; recovered: (metric - "
                  "ablated_metric) / (clean_metric - ablated_metric), NaN where the two agree "
                  "within rounding (undefined)");
  // Last: it marks the circuit complete for --resume and for analysis tools.
  f.set_int_attribute(group, "complete", 1);
}

}  // namespace

void lay_out_circuits(H5File& f, const RunConfig& cfg) {
  for (const CircuitConfig& c : cfg.circuits) {
    f.ensure_group("/circuits/" + c.name);
    f.set_int_attribute("/circuits/" + c.name, "complete", 0);
  }
}

void write_circuits(TransformerModel& model, const PairDataset& data, const RunConfig& cfg,
                    const std::filesystem::path& file, bool progress,
                    const std::function<void()>& check, CircuitStep& step, JobStop& stop,
                    const Communicator& world) {
  const CircuitGraph g(model.config());
  const bool lead = world.rank() == 0;
  const std::unique_ptr<Collectives> group = world.size() > 1 ? make_mpi_collectives(world.comm()) : nullptr;
  // Every rank stops at the same batch round: any rank's stop stops them all.
  const auto check_together = [&] {
    int sig = 0;
    bool mine = false;
    try {
      check();
    } catch (const Interrupted& i) {
      mine = true, sig = i.signal;
    }
    if (world.size() > 1 ? world.max(mine ? 1.0 : 0.0) > 0.0 : mine) throw Interrupted{sig};
  };
  for (size_t i = 0; i < cfg.circuits.size(); ++i) {
    const CircuitConfig& c = cfg.circuits[i];
    const std::string group_name = "/circuits/" + c.name;
    const int P = c.pairs > 0 ? c.pairs : static_cast<int>(data.pairs.size());
    const std::vector<double> settings = state_settings(c, g, P);
    std::vector<uint8_t> bytes;
    together(stop, true, [&] {
      const H5File f(file, H5Mode::ReadOnly);
      CircuitInputs in;
      in.complete = complete_in(f, group_name);
      if (!in.complete && c.method == "top") in.ranking_mean = f.read_floats("/experiments/" + c.experiment + "/mean");
      if (!in.complete && c.method == "acdc") in.state = read_acdc_state(f, group_name, settings);
      bytes = to_bytes(in);
    });
    world.broadcast(bytes);
    CircuitInputs in = from_bytes(bytes);
    if (in.complete) {
      step.lines.push_back("circuit " + c.name + ": complete in the file, kept");
      ++step.complete;
      continue;
    }
    step.current = c.name;
    if (lead) cli::fault_kill_at_circuit(c.name);
    Found found;
    FaithfulnessCurve base, curve;
    double recovered = 0.0;
    // Every rank computes the circuit (each its share of the rows); a stop mid-ACDC leaves the
    // search's state at its last receiver in the file for --resume.
    together(stop, false, [&] {
      EdgeRunner runner(model, g);
      CircuitRuns runs(runner, data, 0, P, c.ablation);
      runs.set_batch_check(check_together);
      runs.set_group(group.get());
      // Before the search: a circuit measured against an ablation that changes nothing is noise.
      base = faithfulness_curve(runs, {}, {}, c.acdc.max_rows);
      const bool defined = recovery_defined(base.clean_metric, base.ablated_metric);
      if (!defined && !cfg.allow_nonfinite)
        throw InputError(cfg.path.string(), "circuit[" + std::to_string(i) + "]",
                         "circuit '" + c.name + "': " + undefined_recovery(c, base) + "; to store it as NaN and go on, set [output] "
                         "allow_nonfinite = true or pass --allow-nonfinite");
      try {
        found = c.method == "acdc" ? find_acdc(runs, g, c, progress && lead, in.state)
                                   : find_top(g, c, in.ranking_mean);
        curve = faithfulness_curve(runs, found.ranking,
                                   doubling_sizes(static_cast<int64_t>(found.ranking.size())), c.acdc.max_rows);
        const FaithfulnessCurve at_kept =
            faithfulness_curve(runs, found.ranking, {static_cast<int64_t>(found.kept.size())}, c.acdc.max_rows);
        recovered = at_kept.recovered.front();
      } catch (const Interrupted&) {
        if (lead && in.state.started()) {
          H5File f(file, H5Mode::ReadWrite);
          write_acdc_state(f, group_name, settings, in.state);
          f.close();
        }
        throw;
      }
    });

    // Room first (a full disk then stops the job before the file is touched), then one open,
    // write and close, so the circuit is in the file whole or not at all.
    together(stop, true, [&] {
      try {
        reserve_space(file, (int64_t{1} << 20) + int64_t{64} * g.edge_count(), "to write circuit " + c.name);
        H5File f(file, H5Mode::ReadWrite);
        write_circuit(f, group_name, c, g, P, found, curve, recovered);
        f.close();
        release_reserve(file);
      } catch (const IoError& err) {
        throw IoError(std::string(err.what()) +
                      "; every work item is done: free space, then continue with --resume to "
                      "finish the circuits");
      }
    });
    step.current.clear();
    ++step.complete;
    std::string line = "circuit " + c.name + ": " + std::to_string(found.kept.size()) + " of " +
                       std::to_string(g.edge_count()) + " edges kept (" + found.summary + "); ";
    // "-0%" is rounding, not a loss.
    const double percent = std::round(100.0 * recovered) == 0.0 ? 0.0 : std::round(100.0 * recovered);
    line += std::isnan(recovered) ? "recovered undefined, stored as NaN: " + undefined_recovery(c, base)
                                  : "they recover " + number("%.0f%%", percent) + " of the logit difference";
    step.lines.push_back(line);
  }
}

}  // namespace causeway
