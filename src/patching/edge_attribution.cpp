#include "patching/edge_attribution.h"

#include <cblas.h>

#include <algorithm>
#include <stdexcept>

#include "patching/metric_gradient.h"

namespace causeway {

namespace {

// One backward point: a forward of the target tokens with `overwrite` applied, its receiver
// gradients, and the senders [s_begin, s_end) whose edges it scores, with weight `weight`.
struct GradientRun {
  std::function<void(HookPlan&)> overwrite;
  int s_begin, s_end;
  float weight;
};

}  // namespace

void edge_attribution(EdgeRunner& runner, const PairDataset& data, int begin, int end,
                      const EdgeAttributionRequest& req, float* scores,
                      std::vector<double>* target_ld, std::vector<double>* source_ld) {
  TransformerModel& model = runner.model();
  const ModelConfig& cfg = model.config();
  const CircuitGraph& g = runner.graph();
  if (req.steps < 1) throw std::invalid_argument("edge_attribution: steps must be >= 1");
  const EdgePairs ep = edge_pairs(data, begin, end);
  const bool denoise = req.direction == Direction::Denoising;
  const TokenBatch& target = denoise ? ep.corrupted : ep.clean;
  const TokenBatch& source = denoise ? ep.clean : ep.corrupted;
  const int P = end - begin, T = target.T, nL = cfg.n_layer;
  const int64_t C = cfg.n_embd, S = g.n_senders(), R = g.n_receivers(), TC = T * C;

  // Interpolation moves these hooks, so both runs cache them.
  const bool ig = req.method != EdgeMethod::Eap, acts = req.method == EdgeMethod::EapIgActivations;
  auto cache_moved = [&](HookPlan& plan) {
    if (ig) plan.cache({HookKind::Embed, -1});
    if (acts)
      for (int L = 0; L < nL; ++L)
        for (HookKind k : {HookKind::Result, HookKind::MlpOut}) plan.cache({k, L});
  };
  // diff = source - target sender outputs; the source's now, the target's in its gradient run.
  // Kept between calls (blocks of one job have one size), so pages are faulted in once.
  thread_local std::vector<float> diff, tgt;
  diff.resize(static_cast<size_t>(P * S * TC));
  tgt.resize(diff.size());
  HookPlan src_plan(nL), tgt_plan(nL);
  cache_moved(src_plan);
  const Tensor src_logits = runner.run_recording(source, ep.read, src_plan, diff.data());
  if (source_ld) *source_ld = logit_diffs(model, ep.pairs, src_logits.data);

  // Hook `p`'s value moved alpha toward the source's.
  auto interpolate = [&](HookPlan& plan, HookPoint p, float alpha) {
    const Tensor& a = tgt_plan.activations().at(p);
    const Tensor& b = src_plan.activations().at(p);
    plan.add(p, [a, b, alpha](const HookContext&, Tensor& v) {
      for (int64_t i = 0; i < v.numel(); ++i) v.data[i] = a.data[i] + alpha * (b.data[i] - a.data[i]);
    });
  };
  // The first run is the target itself (alpha = 0): it records the target's sender outputs and
  // its gradients serve every sender, for EAP and for each layer's first step of EAP-IG.
  std::vector<GradientRun> runs;
  const int k = ig ? req.steps : 1;
  const float w = 1.0f / static_cast<float>(k);
  runs.push_back({[](HookPlan&) {}, 0, static_cast<int>(S), w});
  for (int j = 1; j < k; ++j) {
    const float alpha = static_cast<float>(j) / static_cast<float>(k);
    if (!acts) {
      runs.push_back({[=](HookPlan& p) { interpolate(p, {HookKind::Embed, -1}, alpha); },
                      0, static_cast<int>(S), w});
      continue;
    }
    runs.push_back({[=](HookPlan& p) { interpolate(p, {HookKind::Embed, -1}, alpha); }, 0, 1, w});
    for (int l = 0; l < nL; ++l)
      runs.push_back({[=](HookPlan& p) {
                        interpolate(p, {HookKind::Result, l}, alpha);
                        interpolate(p, {HookKind::MlpOut, l}, alpha);
                      },
                      g.head_sender(l, 0), g.mlp_sender(l) + 1, w});
  }

  std::fill(scores, scores + P * S * R, 0.0f);
  BackwardRequest br;
  for (int L = 0; L < nL; ++L)
    for (HookKind h : {HookKind::Q, HookKind::K, HookKind::V, HookKind::Ln2Normalized})
      br.hooks.push_back({h, L});
  br.hooks.push_back({HookKind::ResidPost, nL - 1});
  thread_local std::vector<float> G;
  std::vector<float> seed;
  std::vector<double> ld;
  for (const GradientRun& run : runs) {
    const bool first = &run == &runs.front();
    HookPlan other(nL);
    HookPlan& plan = first ? tgt_plan : other;
    run.overwrite(plan);
    for (int L = 0; L < nL; ++L) plan.cache({HookKind::ResidPre, L});
    if (!cfg.parallel_residual)
      for (int L = 0; L < nL; ++L) plan.cache({HookKind::ResidMid, L});
    model.cache_for_backward(plan);
    Tensor logits;
    if (first) {
      cache_moved(plan);
      logits = runner.run_recording(target, ep.read, plan, tgt.data());
      for (size_t i = 0; i < diff.size(); ++i) diff[i] -= tgt[i];
    } else {
      ForwardOptions o;
      o.rows = LogitRows::Last;
      o.read_pos = &ep.read;
      logits = model.forward(target, plan, o);
    }
    logit_diff_gradient(model, ep.pairs, logits.data, ep.read, T, ld, seed);
    if (first && target_ld) *target_ld = ld;
    ActivationCache grads;
    model.backward(target, plan.activations(), seed.data(), br, grads);
    for (int L = 0; L <= nL; ++L) {
      const int RL = receivers_in_layer(cfg, L), r0 = g.receiver_begin(L);
      const int s_end = std::min(run.s_end, g.senders_into(r0 + RL - 1));
      if (s_end <= run.s_begin) continue;
      G.resize(static_cast<size_t>(P) * RL * TC);
      model.receiver_input_gradients(plan.activations(), grads, L, P, T, G.data());
      // scores[p, s, r0 + j] += w * diff[p, s, :, :] . G[p, j, :, :], over positions and d_model
      for (int p = 0; p < P; ++p)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s_end - run.s_begin, RL,
                    static_cast<int>(TC), run.weight, diff.data() + (p * S + run.s_begin) * TC,
                    static_cast<int>(TC), G.data() + static_cast<int64_t>(p) * RL * TC,
                    static_cast<int>(TC), 1.0f, scores + (p * S + run.s_begin) * R + r0,
                    static_cast<int>(R));
    }
  }
  // Senders after a receiver scored garbage against it: no edge.
  for (int p = 0; p < P; ++p)
    for (int r = 0; r < R; ++r)
      for (int s = g.senders_into(r); s < S; ++s) scores[(p * S + s) * R + r] = 0.0f;
}

}  // namespace causeway
