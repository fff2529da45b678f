#include "patching/edge_sweep.h"

#include <algorithm>

#include "core/error.h"
#include "patching/circuit_eval.h"

namespace causeway {

namespace {

struct MethodName {
  EdgeSweepMethod method;
  const char* name;
};
constexpr MethodName kMethods[] = {{EdgeSweepMethod::EdgePatching, "edge_patching"},
                                   {EdgeSweepMethod::PathPatching, "path_patching"},
                                   {EdgeSweepMethod::Eap, "eap"},
                                   {EdgeSweepMethod::EapIgInputs, "eap_ig_inputs"},
                                   {EdgeSweepMethod::EapIgActivations, "eap_ig_activations"}};

}  // namespace

EdgeSweepMethod parse_edge_method(const std::string& name, const std::string& source,
                                  const std::string& field) {
  std::string known;
  for (const MethodName& m : kMethods) {
    if (name == m.name) return m.method;
    known += std::string(known.empty() ? "" : ", ") + m.name;
  }
  throw InputError(source, field, "unknown edge method '" + name + "' (known: " + known + ")");
}

std::string edge_method_name(EdgeSweepMethod m) {
  for (const MethodName& x : kMethods)
    if (x.method == m) return x.name;
  return "?";
}

SweepGrid edge_sweep_grid(const EdgeSweepRequest& req, const ModelConfig& cfg) {
  SweepGrid grid;
  if (req.heads_grid) {
    grid.axes = {{"layer", cfg.n_layer, {}}, {"head", cfg.n_head, {}}};
    grid.cells.resize(static_cast<size_t>(cfg.n_layer) * cfg.n_head);
    return grid;
  }
  const CircuitGraph g(cfg);
  GridAxis senders{"sender", g.n_senders(), {}}, receivers{"receiver", g.n_receivers(), {}};
  for (const GraphSender& s : g.senders()) senders.labels.push_back(s.name);
  for (const GraphReceiver& r : g.receivers()) receivers.labels.push_back(r.name);
  grid.axes = {senders, receivers};
  grid.cells.resize(static_cast<size_t>(g.n_senders()) * g.n_receivers());
  grid.not_applicable =
      "cells whose sender does not come before the receiver are not edges and hold 0";
  return grid;
}

EdgeSweep::EdgeSweep(TransformerModel& model, const PairDataset& data, EdgeSweepRequest request)
    : model_(model), data_(data), req_(std::move(request)), graph_(model.config()),
      grid_(edge_sweep_grid(req_, model.config())) {
  runner_ = std::make_unique<EdgeRunner>(model_, graph_);
}

EdgeSweep::~EdgeSweep() = default;

int edge_sweep_lead_per_item(const EdgeSweepRequest& req, const ModelConfig& cfg) {
  const SweepGrid grid = edge_sweep_grid(req, cfg);
  const bool per_edge = !req.heads_grid && (req.method == EdgeSweepMethod::EdgePatching ||
                                            req.method == EdgeSweepMethod::PathPatching);
  return per_edge ? 8 : grid.axes.front().size;
}

bool EdgeSweep::measured_per_edge() const {
  return !req_.heads_grid && (req_.method == EdgeSweepMethod::EdgePatching ||
                              req_.method == EdgeSweepMethod::PathPatching);
}

void EdgeSweep::edge_patching(int pair_begin, int pair_end, int s_begin, int s_end,
                              const SweepProgress& progress) {
  CircuitRuns runs(*runner_, data_, pair_begin, pair_end, EdgeAblation::Corrupted,
                   req_.direction);
  const int P = pair_end - pair_begin, S = graph_.n_senders(), R = graph_.n_receivers();
  target_ld_ = runs.clean_ld();
  source_ld_ = runs.source_ld();
  // One variant per edge of the slab's senders, a receiver's edges at a time (bounded memory).
  for (int r = 0; r < R; ++r) {
    const int n = std::min(graph_.senders_into(r), s_end) - s_begin;
    for (int s = std::max(s_begin, graph_.senders_into(r)); s < s_end; ++s)
      for (int p = 0; p < P; ++p) block_[(static_cast<size_t>(p) * S + s) * R + r] = 0.0f;
    if (n <= 0) continue;
    std::vector<std::vector<float>> masks(static_cast<size_t>(n),
                                          std::vector<float>(static_cast<size_t>(R) * S, 0.0f));
    std::vector<const std::vector<float>*> variants;
    for (int i = 0; i < n; ++i) {
      masks[static_cast<size_t>(i)][static_cast<size_t>(r) * S + s_begin + i] = 1.0f;
      variants.push_back(&masks[static_cast<size_t>(i)]);
    }
    const std::vector<double> ld = runs.run(variants, req_.max_rows);
    for (int i = 0; i < n; ++i)
      for (int p = 0; p < P; ++p)
        block_[(static_cast<size_t>(p) * S + s_begin + i) * R + r] =
            static_cast<float>(ld[static_cast<size_t>(i) * P + p] - target_ld_[static_cast<size_t>(p)]);
    if (progress) progress(r + 1, R);
  }
}

void EdgeSweep::compute(int pair_begin, int pair_end, int s_begin, int s_end,
                        const SweepProgress& progress) {
  const int P = pair_end - pair_begin;
  const int64_t cells = static_cast<int64_t>(grid_.cells.size());
  block_.assign(static_cast<size_t>(P * cells), 0.0f);
  if (req_.heads_grid) {
    PathPatchRequest pr{req_.receivers, req_.freeze, req_.direction};
    path_patching_heads(model_, graph_, data_, pair_begin, pair_end, pr, block_.data(),
                        &target_ld_, &source_ld_);
    return;
  }
  switch (req_.method) {
    case EdgeSweepMethod::EdgePatching:
      edge_patching(pair_begin, pair_end, s_begin, s_end, progress);
      return;
    case EdgeSweepMethod::PathPatching: {
      PathPatchRequest pr{{}, req_.freeze, req_.direction};
      path_patching_edges(model_, graph_, data_, pair_begin, pair_end, pr, block_.data(),
                          &target_ld_, &source_ld_, s_begin, s_end);
      // Stored as the change from the target run, like the other edge methods.
      const int64_t S = graph_.n_senders(), R = graph_.n_receivers();
      for (int p = 0; p < P; ++p)
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = s_begin; s < std::min<int64_t>(s_end, graph_.senders_into(static_cast<int>(r))); ++s)
            block_[static_cast<size_t>((p * S + s) * R + r)] -= static_cast<float>(target_ld_[static_cast<size_t>(p)]);
      return;
    }
    default: {
      EdgeAttributionRequest er;
      er.method = req_.method == EdgeSweepMethod::Eap           ? EdgeMethod::Eap
                  : req_.method == EdgeSweepMethod::EapIgInputs ? EdgeMethod::EapIgInputs
                                                                : EdgeMethod::EapIgActivations;
      er.steps = req_.steps;
      er.direction = req_.direction;
      edge_attribution(*runner_, data_, pair_begin, pair_end, er, block_.data(), &target_ld_,
                       &source_ld_);
    }
  }
}

void EdgeSweep::run_block(int pair_begin, int pair_end, int cell_begin, int cell_end,
                          float* effect, SweepBaselines& baselines,
                          const SweepProgress& progress) {
  const int64_t cells = static_cast<int64_t>(grid_.cells.size()), n = cell_end - cell_begin;
  const int lead = grid_.axes.front().size;
  if (measured_per_edge()) {
    // Only this item's senders; cell ranges are whole rows of the sender axis.
    const int64_t per_lead = cells / lead;
    compute(pair_begin, pair_end, static_cast<int>(cell_begin / per_lead),
            static_cast<int>((cell_end + per_lead - 1) / per_lead), progress);
    block_begin_ = block_end_ = -1;
  } else if (pair_begin != block_begin_ || pair_end != block_end_) {
    block_begin_ = block_end_ = -1;
    compute(pair_begin, pair_end, 0, lead, progress);
    block_begin_ = pair_begin, block_end_ = pair_end;
  }
  for (int p = 0; p < pair_end - pair_begin; ++p)
    std::copy_n(block_.begin() + p * cells + cell_begin, n, effect + p * n);
  const size_t N = data_.pairs.size();
  for (auto* v : {&baselines.clean_ld, &baselines.corrupted_ld, &baselines.clean_metric,
                  &baselines.corrupted_metric})
    if (v->size() != N) v->assign(N, 0.0);
  const bool denoise = req_.direction == Direction::Denoising;
  for (int p = 0; p < pair_end - pair_begin; ++p) {
    const size_t i = static_cast<size_t>(pair_begin + p);
    const double t = target_ld_[static_cast<size_t>(p)], s = source_ld_[static_cast<size_t>(p)];
    baselines.clean_ld[i] = baselines.clean_metric[i] = denoise ? s : t;
    baselines.corrupted_ld[i] = baselines.corrupted_metric[i] = denoise ? t : s;
  }
}

}  // namespace causeway
