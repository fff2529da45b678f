#include "cli/readout_experiments.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "patching/direct_logit.h"
#include "patching/logit_lens.h"
#include "patching/self_repair.h"

namespace causeway {

bool is_readout_kind(const std::string& kind) { return kind == "direct_logit" || kind == "logit_lens"; }

bool has_own_engine(const ExperimentConfig& e) { return is_readout_kind(e.kind) || e.kind == "self_repair"; }

ExperimentConfig parse_readout_experiment(ExperimentConfig e, Table& x, const std::string& file, int index,
                                          void (*parse_positions)(Table&, SweepSpec&)) {
  ReadoutRequest& q = e.readout;
  q.kind = e.kind;
  if (e.kind == "direct_logit") {
    const std::string sweep = x.require_string("sweep");
    q.components = sweep == "components";
    q.spec.kind = q.components ? SweepKind::ResidPre
                               : SweepSpec::parse_kind(sweep, file, "experiment[" + std::to_string(index) + "].sweep");
    if (!q.components && q.spec.kind != SweepKind::HeadOut && q.spec.kind != SweepKind::MlpOut &&
        q.spec.kind != SweepKind::MlpNeuron)
      x.fail("sweep", "'" + sweep + "': direct_logit attributes attn_head_out, mlp_out, mlp_neuron or components");
  } else {
    if (x.raw("sweep")) x.fail("sweep", "the logit lens reads every layer's residual stream; remove sweep");
    q.spec.kind = SweepKind::ResidPre;
  }
  // Positions: "all" reads each component at the answer position only; "each" (or "named")
  // reads it at every position, as the logit difference of the pair's answers there.
  q.spec.by_pos = false;
  parse_positions(x, q.spec);
  q.corrupted = choose<bool>(x, "run", "clean", {{"clean", false}, {"corrupted", true}});
  if (x.raw("top_k") && e.kind != "logit_lens") x.fail("top_k", "only the logit lens lists top tokens");
  q.top_k = static_cast<int>(x.integer("top_k", 0, 1, 1000));
  if (x.get_or<std::string>("metric", "logit_diff") != "logit_diff")
    x.fail("metric", "direct_logit and logit_lens read the logit difference; remove metric");
  e.request.spec = q.spec;
  e.request.metric = MetricKind::LogitDiff;
  x.reject_unknown();
  return e;
}

void check_self_repair(const ExperimentConfig& e, Table& x) {
  if (e.request.spec.kind != SweepKind::HeadOut && e.request.spec.kind != SweepKind::MlpOut &&
      e.request.spec.kind != SweepKind::MlpNeuron)
    x.fail("sweep", "'" + e.request.spec.name() + "': self_repair measures attn_head_out, mlp_out or mlp_neuron");
  if (e.request.metric != MetricKind::LogitDiff)
    x.fail("metric", "self_repair measures the logit difference; remove metric");
  if (e.request.window != 1) x.fail("window", "self_repair patches one layer at a time; remove window");
}

SweepGrid own_grid(const ExperimentConfig& e, const ModelConfig& cfg, const PairDataset& data,
                   const std::string& file, const std::string& field) {
  if (e.kind == "direct_logit") return direct_logit_grid(e.readout, cfg, data, file, field);
  if (e.kind == "logit_lens") return logit_lens_grid(e.readout, cfg, data, file, field);
  return self_repair_grid(e.request.spec, cfg, data, file, field);
}

int own_lead_per_item(const ExperimentConfig& e, const SweepGrid& grid) {
  return is_readout_kind(e.kind) ? grid.axes.front().size : 1;
}

std::unique_ptr<SweepEngine> make_own_engine(TransformerModel& model, const PairDataset& data,
                                             const ExperimentConfig& e) {
  if (e.kind == "direct_logit") return make_direct_logit(model, data, e.readout);
  if (e.kind == "logit_lens") return make_logit_lens(model, data, e.readout);
  return std::make_unique<SelfRepairRunner>(model, data, e.request);
}

void add_own_attributes(const ExperimentConfig& e, std::map<std::string, AttributeValue>& a) {
  if (is_readout_kind(e.kind)) {
    a["run"] = e.readout.corrupted ? "corrupted" : "clean";
    if (e.kind == "logit_lens") {
      a["sweep"] = "accumulated_resid";
      a["effect"] = "logit difference read from the residual stream through the final norm (scale "
                    "recomputed from that residual) and the unembedding, before any final soft-cap";
    } else {
      if (e.readout.components) a["sweep"] = "components";
      a["effect"] = "direct logit attribution: the component's contribution to the logit difference "
                    "through the final norm, its scale frozen at the run's own, before any final soft-cap";
    }
    return;
  }
  if (e.request.source == PatchSource::Activation)
    a["direction"] = e.request.direction == Direction::Denoising ? "denoising" : "noising";
  else
    a["ablation"] = e.ablation;
  a["effect"] = "per quantity: total = change of the logit difference with everything downstream "
                "recomputed; direct = the component's own change through the final norm frozen at the "
                "unpatched run's scale; ln_share = the final norm's reaction to that change (the unpatched "
                "final residual plus it, read at its own scale minus at the frozen one; direct + ln_share "
                "= path patching into the logits, all else frozen); self_repair = total - direct (positive: given back); "
                "repair_rest = self_repair - ln_share (given back by downstream components)";
}

void write_lens_top_tokens(TransformerModel& model, const PairDataset& data, const ExperimentConfig& e,
                           H5File& file) {
  const LensTopTokens top = logit_lens_top_tokens(model, data, e.readout);
  const std::string g = "/experiments/" + e.name;
  for (const char* d : {"/top_tokens", "/top_logits"})
    if (file.exists(g + d)) file.remove(g + d);
  file.write_ints(g + "/top_tokens", top.ids.data(), top.shape);
  file.write_floats(g + "/top_logits", top.logits.data(), top.shape);
  const std::string axes = e.readout.spec.by_pos ? "pair,resid,pos,k" : "pair,resid,k";
  for (const char* d : {"/top_tokens", "/top_logits"}) {
    file.set_attribute(g + d, "axes", axes);
    file.set_attribute(g + d, "description",
                       "the k highest-logit tokens of each lens cell, highest first (logits before any "
                       "soft-cap); -1 / NaN past a pair's prompt");
  }
}

void print_self_repair_top(const ExperimentConfig& e, const std::vector<float>& mean,
                           const std::function<std::string(int64_t)>& label, int k) {
  const int Q = static_cast<int>(self_repair_quantities().size());
  const int64_t n = static_cast<int64_t>(mean.size()) / Q;
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t c) { return std::isnan(mean[c * Q + 3]) ? -1.0 : std::abs(mean[c * Q + 3]); };
  const int64_t top = std::min<int64_t>(k, n);
  std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](int64_t a, int64_t b) { return key(a) > key(b); });
  const std::string how = e.request.source == PatchSource::Activation
                              ? (e.request.direction == Direction::Denoising ? "denoising" : "noising")
                              : e.ablation + " ablation";
  std::printf("\n%s (self_repair, %s, %s): ranked by |self_repair| = |total - direct|, means over pairs\n",
              e.name.c_str(), e.request.spec.name().c_str(), how.c_str());
  std::printf("  %-28s %9s %9s %9s %11s %11s\n", "component", "total", "direct", "ln_share", "self_repair", "repair_rest");
  for (int64_t i = 0; i < top; ++i) {
    const float* m = &mean[order[i] * Q];
    std::printf("  %-28s %+9.4f %+9.4f %+9.4f %+11.4f %+11.4f\n", label(order[i]).c_str(), m[0], m[1], m[2], m[3], m[4]);
  }
}

}  // namespace causeway
