#include "patching/edge_forward.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "core/error.h"
#include "patching/sweep.h"

namespace causeway {

EdgeRunner::EdgeRunner(TransformerModel& model, const CircuitGraph& graph)
    : model_(model), graph_(graph) {
  if (model.shard().size > 1)
    throw std::invalid_argument("edge forwards do not run under tensor parallelism yet");
}

void EdgeRunner::add_senders(HookPlan& plan, int B, int T, float* dst, const float* source) {
  const ModelConfig& cfg = model_.config();
  const int64_t C = cfg.n_embd, S = graph_.n_senders(), TC = T * C;
  const int H = cfg.n_head;
  const bool post_norms = cfg.post_norms;
  // Row b's sender s: its raw value was copied to dst; scale it per position (Gemma's
  // post-norm, w / scale[t]) and turn it into source - value when there is a source.
  auto finish = [=](int b, int s, const float* scale, const float* w) {
    float* d = dst + (b * S + s) * TC;
    if (scale)
      for (int t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) d[t * C + c] *= w[c] / scale[b * T + t];
    if (source) {
      const float* src = source + (b * S + s) * TC;
      for (int64_t i = 0; i < TC; ++i) d[i] = src[i] - d[i];
    }
  };
  // A residual-shaped sender (Resid Start, an MLP): the hook's value (B, T, C) is its output.
  auto whole = [=](int s) {
    return [=](const HookContext& ctx, Tensor& v) {
      if (ctx.row_begin != 0) throw std::invalid_argument("edge forwards run every position");
      for (int b = 0; b < B; ++b) {
        std::memcpy(dst + (b * S + s) * TC, v.data + b * TC, sizeof(float) * TC);
        finish(b, s, nullptr, nullptr);
      }
    };
  };
  plan.add({HookKind::ResidPre, 0}, whole(0));
  for (int L = 0; L < cfg.n_layer; ++L) {
    const int first = graph_.head_sender(L, 0);
    plan.add({HookKind::Result, L}, [=](const HookContext&, Tensor& v) {
      for (int b = 0; b < B; ++b)
        for (int h = 0; h < H; ++h) {
          float* d = dst + (b * S + first + h) * TC;
          for (int t = 0; t < T; ++t)
            std::memcpy(d + t * C, v.data + ((static_cast<int64_t>(b) * T + t) * H + h) * C,
                        sizeof(float) * C);
          if (!post_norms) finish(b, first + h, nullptr, nullptr);
        }
    });
    if (post_norms) {
      const float* w = model_.weights().blocks[L].ln1_post_w.data;
      plan.add({HookKind::Ln1PostScale, L}, [=](const HookContext&, Tensor& scale) {
        for (int b = 0; b < B; ++b)
          for (int h = 0; h < H; ++h) finish(b, first + h, scale.data, w);
      });
    }
    plan.add({HookKind::MlpOut, L}, whole(graph_.mlp_sender(L)));
  }
}

EdgePairs edge_pairs(const PairDataset& data, int begin, int end) {
  EdgePairs out;
  std::vector<std::vector<int32_t>> clean, corrupted;
  for (int i = begin; i < end; ++i) {
    const PromptPair& p = data.pairs[static_cast<size_t>(i)];
    if (p.clean.size() != p.corrupted.size())
      throw InputError(data.source, "line " + std::to_string(p.line),
                       "clean and corrupted prompts have " + std::to_string(p.clean.size()) +
                           " and " + std::to_string(p.corrupted.size()) +
                           " tokens; edges are patched position by position, so they must align");
    clean.push_back(p.clean);
    corrupted.push_back(p.corrupted);
    out.read.push_back(read_position(p));
    out.pairs.push_back(&p);
  }
  out.clean = TokenBatch::padded(clean);
  out.corrupted = TokenBatch::padded(corrupted);
  return out;
}

Tensor EdgeRunner::run_recording(const TokenBatch& batch, const std::vector<int>& read_pos,
                                 HookPlan& plan, float* outputs) {
  add_senders(plan, batch.B, batch.T, outputs, nullptr);
  ForwardOptions o;
  o.rows = LogitRows::Last;
  o.read_pos = &read_pos;
  return model_.forward(batch, plan, o);
}

Tensor EdgeRunner::run_patched(const TokenBatch& batch, const std::vector<int>& read_pos,
                               const float* source, const float* coef, const EdgeStart* start) {
  const ModelConfig& cfg = model_.config();
  const int B = batch.B, T = batch.T;
  const int64_t C = cfg.n_embd, S = graph_.n_senders(), R = graph_.n_receivers(), TC = T * C;
  const int first_layer = start ? start->layer : 0;
  if (first_layer < 0 || first_layer >= cfg.n_layer)
    throw std::invalid_argument("run_patched: start layer outside the model");
  diff_.resize(static_cast<size_t>(B * S * TC));
  delta_.resize(static_cast<size_t>(TC));
  HookPlan plan(cfg.n_layer);
  add_senders(plan, B, T, diff_.data(), source);
  // The senders before the first block run: source - their output in the prefix's run.
  const int64_t before = first_layer > 0 ? graph_.head_sender(first_layer, 0) : 0;
  for (int b = 0; b < B && before > 0; ++b) {
    const float* cur = start->outputs + static_cast<int64_t>(start->run_of_row[b]) * S * TC;
    const float* src = source + b * S * TC;
    float* d = diff_.data() + b * S * TC;
    for (int64_t i = 0; i < before * TC; ++i) d[i] = src[i] - cur[i];
  }

  // Adds receiver r's mix to row b's value at `value` (T rows `stride` apart), if any.
  auto add_input = [this, coef, S, R, TC, C, T](int b, int r, float* value, int64_t stride) {
    const float* k = coef + (b * R + r) * S;
    const int n = graph_.senders_into(r);
    if (std::all_of(k, k + n, [](float x) { return x == 0.0f; })) return;
    cblas_sgemv(CblasRowMajor, CblasTrans, n, static_cast<int>(TC), 1.0f,
                diff_.data() + b * S * TC, static_cast<int>(TC), k, 1, 0.0f, delta_.data(), 1);
    for (int t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) value[t * stride + c] += delta_[t * C + c];
  };
  // Only receivers some row reads a mix into get a hook.
  auto used = [&](int r) {
    for (int b = 0; b < B; ++b) {
      const float* k = coef + (b * R + r) * S;
      if (std::any_of(k, k + graph_.senders_into(r), [](float x) { return x != 0.0f; }))
        return true;
    }
    return false;
  };
  auto heads_hook = [&](HookKind kind, int L, int first, int heads) {
    bool any = false;
    for (int h = 0; h < heads; ++h) any |= used(first + h);
    if (!any) return;
    plan.add({kind, L}, [add_input, first, heads, B, T, C](const HookContext&, Tensor& v) {
      for (int b = 0; b < B; ++b)
        for (int h = 0; h < heads; ++h)
          add_input(b, first + h, v.data + (static_cast<int64_t>(b) * T * heads + h) * C,
                    heads * C);
    });
  };
  auto residual_hook = [&](HookKind kind, int L, int r) {
    if (!used(r)) return;
    plan.add({kind, L}, [add_input, r, B, TC, C](const HookContext&, Tensor& v) {
      for (int b = 0; b < B; ++b) add_input(b, r, v.data + b * TC, C);
    });
  };
  const int H = cfg.n_head, KV = cfg.kv_heads();
  for (int L = 0; L < first_layer; ++L)
    for (int r = graph_.receiver_begin(L); r < graph_.receiver_begin(L + 1); ++r)
      if (used(r)) throw std::invalid_argument("run_patched: a receiver before the start layer is patched");
  for (int L = first_layer; L < cfg.n_layer; ++L) {
    heads_hook(HookKind::QInput, L, graph_.query_receiver(L, 0), H);
    heads_hook(HookKind::KInput, L, graph_.key_receiver(L, 0), KV);
    heads_hook(HookKind::VInput, L, graph_.value_receiver(L, 0), KV);
    residual_hook(HookKind::MlpIn, L, graph_.mlp_receiver(L));
  }
  residual_hook(HookKind::ResidPost, cfg.n_layer - 1, graph_.resid_end());
  ForwardOptions o;
  o.rows = LogitRows::Last;
  o.read_pos = &read_pos;
  if (start) o.start_layer = first_layer, o.prefix = start->prefix;
  return model_.forward(batch, plan, o);
}

}  // namespace causeway
