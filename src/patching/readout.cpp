#include "patching/readout.h"

#include <algorithm>
#include <cmath>

#include "backend/ops_linear.h"
#include "patching/metric.h"
#include "patching/patch.h"

namespace causeway {

namespace {

bool outside_blocks(HookKind k) {
  return k == HookKind::Embed || k == HookKind::PosEmbed || k == HookKind::LnFinalScale;
}

double dot(const float* a, const float* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

bool has(const std::vector<HookKind>& kinds, HookKind k) {
  return std::find(kinds.begin(), kinds.end(), k) != kinds.end();
}

}  // namespace

AnswerDirection answer_direction(const TransformerModel& model, const PromptPair& pair) {
  const ModelConfig& cfg = model.config();
  const int C = cfg.n_embd;
  const ModelWeights& W = model.weights();
  const WeightMatrix W_U = W.W_U.matrix();
  const TensorShard& shard = model.shard();
  std::vector<float> du(C, 0.0f), row(C);
  // Each rank adds the rows of its vocabulary block; their sum over the replica is whole.
  auto add = [&](int token, float weight) {
    const int32_t id = token - shard.vocab_begin;
    if (shard.sharded() && (id < 0 || id >= shard.vocab_rows)) return;
    cpu::embedding_forward(row.data(), &id, W_U, 1, 1.0f);
    for (int i = 0; i < C; ++i) du[i] += weight * row[i];
  };
  for (int t : pair.answers) add(t, 1.0f / static_cast<float>(pair.answers.size()));
  for (int t : pair.wrongs) add(t, -1.0f / static_cast<float>(pair.wrongs.size()));
  if (model.tp() && shard.sharded()) model.tp()->allreduce_sum(du.data(), C);
  AnswerDirection d;
  d.v.resize(C);
  for (int i = 0; i < C; ++i) d.v[i] = W.ln_final_w.data[i] * du[i];
  if (W.ln_final_b.data) d.bias = dot(W.ln_final_b.data, du.data(), C);
  if (cfg.norm == NormKind::LayerNorm) {
    double mean = 0.0;
    for (float x : d.v) mean += x;
    mean /= C;
    for (float& x : d.v) x = static_cast<float>(x - mean);
  }
  return d;
}

double final_norm_scale(const ModelConfig& cfg, const float* x) {
  const int C = cfg.n_embd;
  double mean = 0.0;
  if (cfg.norm == NormKind::LayerNorm) {
    for (int i = 0; i < C; ++i) mean += x[i];
    mean /= C;
  }
  double ss = 0.0;
  for (int i = 0; i < C; ++i) ss += (x[i] - mean) * (x[i] - mean);
  return std::sqrt(ss / C + cfg.layer_norm_epsilon);
}

void RunReadout::build(TransformerModel& model, const TokenBatch& batch, const std::vector<int>& read_pos,
                       const std::vector<const PromptPair*>& pairs, const std::vector<HookKind>& kinds) {
  const ModelConfig& cfg = model.config();
  model_ = &model;
  batch_ = batch;
  plan_ = HookPlan(cfg.n_layer);
  std::vector<HookKind> block = kinds;
  if (cfg.post_norms && has(kinds, HookKind::Z)) block.push_back(HookKind::Ln1PostScale);
  if (cfg.post_norms && has(kinds, HookKind::MlpPost)) block.push_back(HookKind::Ln2PostScale);
  for (HookKind k : block) {
    if (outside_blocks(k)) {
      plan_.cache({k, -1});
      continue;
    }
    for (int L = 0; L < cfg.n_layer; ++L) plan_.cache({k, L});
  }
  plan_.cache({HookKind::LnFinalScale, -1});
  ForwardOptions o;
  o.rows = LogitRows::Last;
  o.read_pos = &read_pos;
  const Tensor logits = model.forward(batch_, plan_, o);
  const int B = batch.B;
  ld_.assign(B, 0.0);
  dirs_.clear();
  for (int r = 0; r < B; ++r) {
    const PromptPair& p = *pairs[r];
    const float* lrow = logits.data + static_cast<int64_t>(r) * cfg.vocab_size;
    std::vector<float> a, w;
    for (int t : p.answers) a.push_back(lrow[t]);
    for (int t : p.wrongs) w.push_back(lrow[t]);
    ld_[r] = causeway::logit_diff(p.answers, p.wrongs, a.data(), w.data());
    dirs_.push_back(answer_direction(model, p));
  }
  // Pull-backs of each row's direction through every layer's W_O and W_out (this rank's heads
  // and units), after the block's post-norm weight where the model has one.
  const ModelConfig& lc = model.local_config();
  const int C = cfg.n_embd, L = cfg.n_layer;
  const bool heads = has(kinds, HookKind::Z), units = has(kinds, HookKind::MlpPost);
  head_pull_.assign(static_cast<size_t>(B) * L, {});
  unit_pull_.assign(static_cast<size_t>(B) * L, {});
  std::vector<float> u(C);
  for (int r = 0; r < B; ++r)
    for (int l = 0; l < L; ++l) {
      const BlockWeights& bw = model.weights().blocks[l];
      if (heads) {
        for (int i = 0; i < C; ++i) u[i] = dirs_[r].v[i] * (cfg.post_norms ? bw.ln1_post_w.data[i] : 1.0f);
        auto& out = head_pull_[static_cast<size_t>(r) * L + l];
        out.resize(static_cast<size_t>(lc.n_head) * lc.d_head());
        cpu::linear_backward(out.data(), nullptr, nullptr, u.data(), nullptr, bw.W_O.matrix(), 1);
      }
      if (units) {
        for (int i = 0; i < C; ++i) u[i] = dirs_[r].v[i] * (cfg.post_norms ? bw.ln2_post_w.data[i] : 1.0f);
        auto& out = unit_pull_[static_cast<size_t>(r) * L + l];
        out.resize(lc.n_inner);
        cpu::linear_backward(out.data(), nullptr, nullptr, u.data(), nullptr, bw.W_out.matrix(), 1);
      }
    }
}

const float* RunReadout::row(HookPoint p, int run) const {
  const Tensor& t = plan_.activations().at(p);
  return t.data + static_cast<int64_t>(run) * hook_row_size(p.kind, model_->local_config(), batch_.T, batch_.T);
}

double RunReadout::final_scale(int run, int t) const {
  return row({HookKind::LnFinalScale, -1}, run)[t];
}

const float* component_at(const PatchCell& cell, const float* row, const ModelConfig& local, int t) {
  const HookGeometry g = hook_geometry(cell.kind, local);
  const float* at = row + static_cast<int64_t>(t) * g.heads * g.width;
  if (cell.kind == HookKind::MlpPost) return at + cell.neuron;
  if (g.heads > 1) return at + static_cast<int64_t>(cell.head) * g.width;
  return at;
}

namespace {

// Element (o, i) of W, widened: o an output feature, i an input feature.
float weight_at(const WeightMatrix& W, int64_t o, int64_t i) {
  const int64_t at = W.out_major ? o * W.in + i : i * W.out + o;
  switch (W.dtype) {
    case DType::BF16: return cpu::bf16_to_f32(static_cast<const uint16_t*>(W.data)[at]);
    case DType::F16: return cpu::f16_to_f32(static_cast<const uint16_t*>(W.data)[at]);
    default: return W.f32()[at];
  }
}

}  // namespace

void RunReadout::residual_term(const PatchCell& cell, int run, int t, const float* x, float* out) const {
  const ModelConfig& cfg = model_->config();
  const int C = cfg.n_embd;
  if (cell.kind != HookKind::Z && cell.kind != HookKind::MlpPost) {
    std::copy(x, x + C, out);
    return;
  }
  const BlockWeights& bw = model_->weights().blocks[cell.layer];
  const bool head = cell.kind == HookKind::Z;
  const WeightMatrix W = head ? bw.W_O.matrix() : bw.W_out.matrix();
  const int n = head ? model_->local_config().d_head() : 1;
  const int64_t first = head ? static_cast<int64_t>(cell.head) * n : cell.neuron;
  for (int o = 0; o < C; ++o) {
    double s = 0.0;
    for (int j = 0; j < n; ++j) s += static_cast<double>(x[j]) * weight_at(W, o, first + j);
    out[o] = static_cast<float>(s);
  }
  if (!cfg.post_norms) return;
  const Tensor& w = head ? bw.ln1_post_w : bw.ln2_post_w;
  const double scale = row({head ? HookKind::Ln1PostScale : HookKind::Ln2PostScale, cell.layer}, run)[t];
  for (int o = 0; o < C; ++o) out[o] = static_cast<float>(out[o] / scale * w.data[o]);
}

double RunReadout::direct(const PatchCell& cell, int run, int t, const float* x) const {
  const ModelConfig& cfg = model_->config();
  const ModelConfig& lc = model_->local_config();
  const AnswerDirection& d = dirs_[run];
  const double s = final_scale(run, t);
  const size_t pull = static_cast<size_t>(run) * cfg.n_layer + (cell.layer < 0 ? 0 : cell.layer);
  auto post = [&](HookKind scale) {
    return cfg.post_norms ? static_cast<double>(row({scale, cell.layer}, run)[t]) : 1.0;
  };
  switch (cell.kind) {
    case HookKind::Z: {
      const int HS = lc.d_head();
      return dot(x, head_pull_[pull].data() + static_cast<int64_t>(cell.head) * HS, HS) /
             (s * post(HookKind::Ln1PostScale));
    }
    case HookKind::MlpPost:
      return static_cast<double>(x[0]) * unit_pull_[pull][cell.neuron] / (s * post(HookKind::Ln2PostScale));
    default:
      return dot(x, d.v.data(), cfg.n_embd) / s;
  }
}

}  // namespace causeway
