#include "patching/path_patching.h"

#include <cstring>

#include "patching/metric_gradient.h"

namespace causeway {

namespace {

// Copies head `h` of `from` into the hook's value, both (B, T, heads, W).
HookFn copy_head(Tensor from, int h) {
  return [from, h](const HookContext&, Tensor& v) {
    const int64_t rows = v.size(0) * v.size(1), heads = v.size(2), W = v.size(3);
    for (int64_t n = 0; n < rows; ++n)
      std::memcpy(v.data + (n * heads + h) * W, from.data + (n * heads + h) * W,
                  sizeof(float) * W);
  };
}

class PathPatcher {
 public:
  PathPatcher(TransformerModel& model, const CircuitGraph& g, const PairDataset& data, int begin,
              int end, const PathPatchRequest& req)
      : model_(model), g_(g), ep_(edge_pairs(data, begin, end)), req_(req),
        target_(req.direction == Direction::Denoising ? ep_.corrupted : ep_.clean),
        source_(req.direction == Direction::Denoising ? ep_.clean : ep_.corrupted),
        tgt_(model.config().n_layer), src_(model.config().n_layer) {
    if (model.shard().size > 1)
      throw std::invalid_argument("path patching does not run under tensor parallelism yet");
    for (HookPlan* plan : {&tgt_, &src_}) {
      plan->cache({HookKind::ResidPre, 0});
      for (int L = 0; L < g.n_layer(); ++L)
        for (HookKind k : {HookKind::Z, HookKind::MlpOut}) plan->cache({k, L});
      const Tensor logits = forward(plan == &tgt_ ? target_ : source_, *plan);
      (plan == &tgt_ ? target_ld : source_ld) = logit_diffs(model_, ep_.pairs, logits.data);
    }
  }

  std::vector<double> target_ld, source_ld;

  // Step 2: the target tokens with heads (and, freezing all, MLPs) frozen and sender s's
  // output from the source; the receivers' values are in the returned plan's cache.
  HookPlan record(int s) {
    const int nL = g_.n_layer();
    const GraphSender& snd = g_.senders()[static_cast<size_t>(s)];
    HookPlan plan(nL);
    auto tgt = [&](HookKind k, int L) { return tgt_.activations().at(HookPoint{k, L}); };
    auto src = [&](HookKind k, int L) { return src_.activations().at(HookPoint{k, L}); };
    if (snd.kind == SenderKind::ResidStart)
      plan.overwrite({HookKind::ResidPre, 0}, src(HookKind::ResidPre, 0));
    for (int L = 0; L < nL; ++L) {
      plan.overwrite({HookKind::Z, L}, tgt(HookKind::Z, L));
      if (snd.kind == SenderKind::Head && snd.layer == L)
        plan.add({HookKind::Z, L}, copy_head(src(HookKind::Z, L), snd.head));
      if (snd.kind == SenderKind::Mlp && snd.layer == L)
        plan.overwrite({HookKind::MlpOut, L}, src(HookKind::MlpOut, L));
      else if (req_.freeze == PathFreeze::All)
        plan.overwrite({HookKind::MlpOut, L}, tgt(HookKind::MlpOut, L));
      for (HookKind k : {HookKind::Q, HookKind::K, HookKind::V, HookKind::MlpIn})
        plan.cache({k, L});
    }
    plan.cache({HookKind::ResidPost, nL - 1});
    forward(target_, plan);
    return plan;
  }

  // Step 3: the metric per pair with the receivers' recorded values patched into the target.
  std::vector<double> patch(const ActivationCache& rec, const std::vector<int>& receivers) {
    HookPlan plan(g_.n_layer());
    for (int r : receivers) {
      const GraphReceiver& rc = g_.receivers()[static_cast<size_t>(r)];
      auto at = [&](HookKind k) { return rec.at(HookPoint{k, rc.layer}); };
      switch (rc.kind) {
        case ReceiverKind::Query: plan.add({HookKind::Q, rc.layer}, copy_head(at(HookKind::Q), rc.head)); break;
        case ReceiverKind::Key: plan.add({HookKind::K, rc.layer}, copy_head(at(HookKind::K), rc.head)); break;
        case ReceiverKind::Value: plan.add({HookKind::V, rc.layer}, copy_head(at(HookKind::V), rc.head)); break;
        case ReceiverKind::Mlp: plan.overwrite({HookKind::MlpIn, rc.layer}, at(HookKind::MlpIn)); break;
        case ReceiverKind::ResidEnd:
          plan.overwrite({HookKind::ResidPost, g_.n_layer() - 1},
                         rec.at(HookPoint{HookKind::ResidPost, g_.n_layer() - 1}));
          break;
      }
    }
    const Tensor logits = forward(target_, plan);
    return logit_diffs(model_, ep_.pairs, logits.data);
  }

  int pairs() const { return static_cast<int>(ep_.pairs.size()); }

 private:
  Tensor forward(const TokenBatch& batch, HookPlan& plan) {
    ForwardOptions o;
    o.rows = LogitRows::Last;
    o.read_pos = &ep_.read;
    return model_.forward(batch, plan, o);
  }

  TransformerModel& model_;
  const CircuitGraph& g_;
  EdgePairs ep_;
  PathPatchRequest req_;
  const TokenBatch& target_;
  const TokenBatch& source_;
  HookPlan tgt_, src_;
};

}  // namespace

void path_patching_heads(TransformerModel& model, const CircuitGraph& graph,
                         const PairDataset& data, int begin, int end,
                         const PathPatchRequest& request, float* out,
                         std::vector<double>* target_ld, std::vector<double>* source_ld) {
  PathPatcher pp(model, graph, data, begin, end, request);
  if (target_ld) *target_ld = pp.target_ld;
  if (source_ld) *source_ld = pp.source_ld;
  const int P = pp.pairs(), nL = graph.n_layer(), H = graph.n_head();
  for (int L = 0; L < nL; ++L)
    for (int h = 0; h < H; ++h) {
      const HookPlan rec = pp.record(graph.head_sender(L, h));
      const std::vector<double> m = pp.patch(rec.activations(), request.receivers);
      for (int p = 0; p < P; ++p)
        out[(static_cast<int64_t>(p) * nL + L) * H + h] = static_cast<float>(m[static_cast<size_t>(p)]);
    }
}

void path_patching_edges(TransformerModel& model, const CircuitGraph& graph,
                         const PairDataset& data, int begin, int end,
                         const PathPatchRequest& request, float* out,
                         std::vector<double>* target_ld, std::vector<double>* source_ld,
                         int s_begin, int s_end) {
  PathPatcher pp(model, graph, data, begin, end, request);
  if (target_ld) *target_ld = pp.target_ld;
  if (source_ld) *source_ld = pp.source_ld;
  const int P = pp.pairs();
  const int64_t S = graph.n_senders(), R = graph.n_receivers();
  if (s_end < 0) s_end = static_cast<int>(S);
  for (int s = s_begin; s < s_end; ++s) {
    const HookPlan rec = pp.record(s);
    for (int r = 0; r < R; ++r) {
      if (!graph.has_edge(s, r)) {
        for (int p = 0; p < P; ++p) out[(p * S + s) * R + r] = 0.0f;
        continue;
      }
      const std::vector<double> m = pp.patch(rec.activations(), {r});
      for (int p = 0; p < P; ++p)
        out[(p * S + s) * R + r] = static_cast<float>(m[static_cast<size_t>(p)]);
    }
  }
}

}  // namespace causeway
