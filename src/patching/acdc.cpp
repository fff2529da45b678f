#include "patching/acdc.h"

#include <algorithm>

namespace causeway {

AcdcResult acdc(CircuitRuns& runs, const AcdcRequest& req,
                const std::function<void(int, int)>& progress) {
  const CircuitGraph& g = runs.graph();
  const int S = g.n_senders(), R = g.n_receivers(), P = runs.pairs();
  const int H = g.n_head(), group = H / g.kv_heads();
  AcdcResult res;
  res.scores.assign(static_cast<size_t>(R) * S, 0.0);
  std::vector<float> ablated(static_cast<size_t>(R) * S, 0.0f);
  std::vector<int> out_kept(static_cast<size_t>(S), 0);  // kept outgoing edges per sender
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < g.senders_into(r); ++s) ++out_kept[static_cast<size_t>(s)];

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

  double current = metric({&ablated})[0];
  for (int r = R - 1; r >= 0; --r) {
    std::vector<int> candidates;
    for (int s = g.senders_into(r) - 1; s >= 0; --s) candidates.push_back(s);
    if (!reaches_output(r)) {
      for (int s : candidates) cut(ablated, s, r), --out_kept[static_cast<size_t>(s)];
      if (progress) progress(R - r, R);
      continue;
    }
    std::vector<std::vector<float>> tries(candidates.size(), ablated);
    std::vector<const std::vector<float>*> variants;
    for (size_t i = 0; i < candidates.size(); ++i) {
      cut(tries[i], candidates[i], r);
      variants.push_back(&tries[i]);
    }
    const std::vector<double> m = metric(variants);
    std::vector<int> pass;
    for (size_t i = 0; i < candidates.size(); ++i) {
      res.scores[static_cast<size_t>(r) * S + candidates[i]] = m[i] - current;
      if (m[i] - current < req.threshold) pass.push_back(static_cast<int>(i));
    }
    std::vector<float> together = ablated;
    for (int i : pass) cut(together, candidates[static_cast<size_t>(i)], r);
    double together_metric = pass.size() == 1 ? m[static_cast<size_t>(pass[0])] : current;
    if (pass.size() > 1) together_metric = metric({&together})[0];
    if (pass.size() <= 1 || together_metric - current < req.threshold) {
      ablated = together;
      current = together_metric;
      for (int i : pass) --out_kept[static_cast<size_t>(candidates[static_cast<size_t>(i)])];
    } else {
      // The edges interact: ACDC's own order, one at a time.
      for (int s : candidates) {
        std::vector<float> one = ablated;
        cut(one, s, r);
        const double v = metric({&one})[0];
        if (v - current < req.threshold) {
          ablated = one;
          current = v;
          --out_kept[static_cast<size_t>(s)];
        }
      }
    }
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
