#include "patching/acdc.h"

#include <algorithm>
#include <stdexcept>

namespace causeway {

AcdcResult acdc(CircuitRuns& runs, const AcdcRequest& req, AcdcState& state,
                const std::function<void(int, int)>& progress) {
  const CircuitGraph& g = runs.graph();
  const int S = g.n_senders(), R = g.n_receivers(), P = runs.pairs();
  const int H = g.n_head(), group = H / g.kv_heads();
  AcdcResult res;
  const size_t RS = static_cast<size_t>(R) * S;
  if (state.started() && (state.ablated.size() != RS || state.scores.size() != RS || state.next >= R))
    throw std::invalid_argument("acdc: the state to continue is of another graph");
  const bool resumed = state.started();
  res.scores = resumed ? state.scores : std::vector<double>(RS, 0.0);
  res.forwards = resumed ? state.forwards : 0;
  std::vector<float> ablated = resumed ? state.ablated : std::vector<float>(RS, 0.0f);
  std::vector<int> out_kept(static_cast<size_t>(S), 0);  // kept outgoing edges per sender
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < g.senders_into(r); ++s)
      if (ablated[static_cast<size_t>(r) * S + s] == 0.0f) ++out_kept[static_cast<size_t>(s)];

  // Mean metric of each variant over the pairs.
  auto metric = [&](const std::vector<const std::vector<float>*>& variants) {
    std::vector<double> kl;
    const std::vector<double> ld =
        runs.run(variants, req.max_rows, req.metric == AcdcMetric::Kl ? &kl : nullptr);
    res.forwards += static_cast<int64_t>(ld.size());
    std::vector<double> out(variants.size(), 0.0);
    for (size_t v = 0; v < variants.size(); ++v)
      for (int p = 0; p < P; ++p) {
        const size_t row = v * static_cast<size_t>(P) + static_cast<size_t>(p);
        out[v] += (req.metric == AcdcMetric::Kl ? kl[row] : runs.clean_ld()[static_cast<size_t>(p)] - ld[row]) / P;
      }
    return out;
  };
  auto cut = [&](std::vector<float>& mask, int s, int r) {
    mask[static_cast<size_t>(r) * S + s] = 1.0f;
  };
  // Whether receiver r's node still reaches the output through a kept edge.
  auto reaches_output = [&](int r) {
    const GraphReceiver& rc = g.receivers()[static_cast<size_t>(r)];
    switch (rc.kind) {
      case ReceiverKind::ResidEnd: return true;
      case ReceiverKind::Mlp: return out_kept[static_cast<size_t>(g.mlp_sender(rc.layer))] > 0;
      case ReceiverKind::Query: return out_kept[static_cast<size_t>(g.head_sender(rc.layer, rc.head))] > 0;
      case ReceiverKind::Key:
      case ReceiverKind::Value:
        for (int h = rc.head * group; h < (rc.head + 1) * group; ++h)
          if (out_kept[static_cast<size_t>(g.head_sender(rc.layer, h))] > 0) return true;
        return false;
    }
    return true;
  };

  double current = resumed ? state.metric : metric({&ablated})[0];
  // The state at a receiver boundary: receivers above `next` are done.
  auto commit = [&](int next) {
    state.next = next;
    state.ablated = ablated;
    state.scores = res.scores;
    state.metric = current;
    state.forwards = res.forwards;
  };
  const int first = resumed ? state.next : R - 1;
  commit(first);
  for (int r = first; r >= 0; --r) {
    std::vector<int> candidates;
    for (int s = g.senders_into(r) - 1; s >= 0; --s) candidates.push_back(s);
    if (!reaches_output(r)) {
      for (int s : candidates) cut(ablated, s, r), --out_kept[static_cast<size_t>(s)];
      commit(r - 1);
      if (progress) progress(R - r, R);
      continue;
    }
    // Edges whose cut cannot change the output (acdc.h) get the current metric unrun.
    std::vector<std::vector<float>> tries;
    std::vector<const std::vector<float>*> variants;
    std::vector<int> run_of(candidates.size(), -1);
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (runs.sender_unchanged(candidates[i])) continue;
      run_of[i] = static_cast<int>(tries.size());
      tries.push_back(ablated);
      cut(tries.back(), candidates[i], r);
    }
    for (const auto& t : tries) variants.push_back(&t);
    const std::vector<double> ran = variants.empty() ? std::vector<double>{} : metric(variants);
    std::vector<double> m(candidates.size(), current);
    for (size_t i = 0; i < candidates.size(); ++i)
      if (run_of[i] >= 0) m[i] = ran[static_cast<size_t>(run_of[i])];
    std::vector<int> pass;
    for (size_t i = 0; i < candidates.size(); ++i) {
      res.scores[static_cast<size_t>(r) * S + candidates[i]] = m[i] - current;
      if (m[i] - current < req.threshold) pass.push_back(static_cast<int>(i));
    }
    std::vector<float> together = ablated;
    for (int i : pass) cut(together, candidates[static_cast<size_t>(i)], r);
    // Cuts that were not run add exactly zero: with at most one run cut among the passing
    // ones, removing them together is that cut alone (or nothing).
    std::vector<int> run_pass;
    for (int i : pass)
      if (run_of[static_cast<size_t>(i)] >= 0) run_pass.push_back(i);
    double together_metric = run_pass.size() == 1 ? m[static_cast<size_t>(run_pass[0])] : current;
    if (run_pass.size() > 1) together_metric = metric({&together})[0];
    if (run_pass.size() <= 1 || together_metric - current < req.threshold) {
      ablated = together;
      current = together_metric;
      for (int i : pass) --out_kept[static_cast<size_t>(candidates[static_cast<size_t>(i)])];
    } else {
      // The edges interact: ACDC's own order, one at a time.
      for (int s : candidates) {
        std::vector<float> one = ablated;
        cut(one, s, r);
        const double v = runs.sender_unchanged(s) ? current : metric({&one})[0];
        if (v - current < req.threshold) {
          ablated = one;
          current = v;
          --out_kept[static_cast<size_t>(s)];
        }
      }
    }
    commit(r - 1);
    if (progress) progress(R - r, R);
  }
  res.metric = current;
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < g.senders_into(r); ++s)
      if (ablated[static_cast<size_t>(r) * S + s] == 0.0f) res.kept.push_back({s, r});
  std::stable_sort(res.kept.begin(), res.kept.end(), [&](auto a, auto b) {
    return res.scores[static_cast<size_t>(a.second) * S + a.first] >
           res.scores[static_cast<size_t>(b.second) * S + b.first];
  });
  for (auto [s, r] : res.kept) res.kept_scores.push_back(res.scores[static_cast<size_t>(r) * S + s]);
  return res;
}

}  // namespace causeway
