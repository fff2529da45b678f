// The backward pass against PyTorch autograd goldens (tests/reference/make_gradient_goldens.py),
// and attribution patching against its definition (a directional derivative per cell), against
// exhaustive activation patching, and the AtP* query/key fix on saturated attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "data/prompt_pairs.h"
#include "model/transformer_model.h"
#include "model/safetensors.h"
#include "patching/attribution.h"
#include "patching/patch.h"
#include "patching/sweep.h"
#include "tiny_model.h"

namespace causeway {
namespace {

const std::filesystem::path& kData = fixtures::kDataDir;
TransformerModel& tiny() { return fixtures::tiny_model(); }
const PairDataset& pairs() { return fixtures::golden_pairs(); }

const SafetensorsFile& goldens() {
  static SafetensorsFile f = SafetensorsFile::open(kData / "tiny-gpt2-gradient-goldens.safetensors");
  return f;
}

bool golden_has(const std::string& name) { return goldens().find(name) != nullptr; }

std::vector<float> golden(const std::string& name) {
  const TensorInfo* info = goldens().find(name);
  if (!info) ADD_FAILURE() << "golden " << name << " missing";
  if (!info) return {};
  std::vector<float> out((info->end - info->begin) / 4);
  std::memcpy(out.data(), goldens().data(*info), info->end - info->begin);
  return out;
}

// max |a - b| / max |b|: elementwise relative error is meaningless where gradients vanish.
double relative_error(const float* a, const std::vector<float>& b) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

TEST(GradientGoldens, EveryHookMatchesAutograd) {
  const ModelConfig& cfg = tiny().config();
  for (const char* run : {"clean", "corrupted"}) {
    std::vector<std::vector<int32_t>> rows;
    for (const PromptPair& p : pairs().pairs) rows.push_back(std::string(run) == "clean" ? p.clean : p.corrupted);
    const TokenBatch batch = TokenBatch::padded(rows);
    HookPlan plan(cfg.n_layer);
    tiny().cache_for_backward(plan);
    tiny().forward(batch, plan, LogitRows::All);
    const int C = cfg.n_embd;
    std::vector<float> seed(static_cast<size_t>(batch.B) * batch.T * C, 0.0f);
    for (int b = 0; b < batch.B; ++b) {
      const PromptPair& p = pairs().pairs[b];
      float* row = seed.data() + (static_cast<int64_t>(b) * batch.T + batch.lengths[b] - 1) * C;
      for (int i = 0; i < C; ++i)
        row[i] = tiny().weights().W_U.data[p.answers[0] * C + i] - tiny().weights().W_U.data[p.wrongs[0] * C + i];
    }
    BackwardRequest req;
    // The GPT-2 gradient goldens predate the hook_normalized hooks.
    for (const HookPoint& h : all_hook_points(cfg))
      if (golden_has(std::string("grad.") + run + "." + h.name())) req.hooks.push_back(h);
    for (int L = 0; L < cfg.n_layer; ++L) req.hooks.push_back({HookKind::Result, L});
    ActivationCache grads;
    tiny().backward(batch, plan.activations(), seed.data(), req, grads);
    for (const HookPoint& h : req.hooks) {
      const auto ref = golden(std::string("grad.") + run + "." + h.name());
      ASSERT_EQ(static_cast<size_t>(grads.at(h).numel()), ref.size()) << h.name();
      EXPECT_LE(relative_error(grads.at(h).data, ref), 1e-4) << run << " " << h.name();
    }
  }
}

TEST(GradientGoldens, WeightGradientsMatchAutograd) {
  const ModelConfig& cfg = tiny().config();
  const TensorInfo* tok = goldens().find("train.tokens");
  ASSERT_NE(tok, nullptr);
  const int B = static_cast<int>(tok->shape[0]), T = static_cast<int>(tok->shape[1]);
  TokenBatch batch;
  batch.B = B, batch.T = T;
  batch.ids.resize(static_cast<size_t>(B) * T);
  std::memcpy(batch.ids.data(), goldens().data(*tok), batch.ids.size() * 4);
  batch.lengths.assign(B, T);
  std::vector<int32_t> targets(batch.ids.size(), -1);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t + 1 < T; ++t) targets[b * T + t] = batch.ids[b * T + t + 1];
  ModelWeights g(cfg);
  const double loss = tiny().loss_and_gradients(batch, targets, g);
  EXPECT_NEAR(loss, golden("train.loss")[0], 1e-5);

  const int C = cfg.n_embd;
  // Hugging Face Conv1D c_attn packs Q, K, V as column blocks of (C, 3C).
  auto columns = [&](const std::vector<float>& w, int rows, int cols, int c0, int n) {
    std::vector<float> out;
    for (int r = 0; r < rows; ++r) out.insert(out.end(), w.begin() + r * cols + c0, w.begin() + r * cols + c0 + n);
    return out;
  };
  auto check = [&](const Tensor& mine, const std::vector<float>& ref, const std::string& what) {
    ASSERT_EQ(static_cast<size_t>(mine.numel()), ref.size()) << what;
    EXPECT_LE(relative_error(mine.data, ref), 1e-4) << what;
  };
  check(g.W_E, golden("train.grad.transformer.wte.weight"), "wte");
  check(g.W_pos, golden("train.grad.transformer.wpe.weight"), "wpe");
  check(g.ln_final_w, golden("train.grad.transformer.ln_f.weight"), "ln_f.weight");
  check(g.ln_final_b, golden("train.grad.transformer.ln_f.bias"), "ln_f.bias");
  for (int L = 0; L < cfg.n_layer; ++L) {
    const std::string h = "train.grad.transformer.h." + std::to_string(L) + ".";
    const BlockWeights& b = g.blocks[L];
    const auto attn_w = golden(h + "attn.c_attn.weight"), attn_b = golden(h + "attn.c_attn.bias");
    check(b.W_Q, columns(attn_w, C, 3 * C, 0, C), h + "W_Q");
    check(b.W_K, columns(attn_w, C, 3 * C, C, C), h + "W_K");
    check(b.W_V, columns(attn_w, C, 3 * C, 2 * C, C), h + "W_V");
    check(b.b_Q, columns(attn_b, 1, 3 * C, 0, C), h + "b_Q");
    check(b.b_V, columns(attn_b, 1, 3 * C, 2 * C, C), h + "b_V");
    // b_K's gradient is zero in exact arithmetic (softmax ignores q . b_K): rounding noise only.
    for (int i = 0; i < C; ++i) EXPECT_NEAR(b.b_K.data[i], 0.0f, 1e-6) << h << "b_K";
    check(b.W_O, golden(h + "attn.c_proj.weight"), h + "W_O");
    check(b.b_O, golden(h + "attn.c_proj.bias"), h + "b_O");
    check(b.W_in, golden(h + "mlp.c_fc.weight"), h + "W_in");
    check(b.b_in, golden(h + "mlp.c_fc.bias"), h + "b_in");
    check(b.W_out, golden(h + "mlp.c_proj.weight"), h + "W_out");
    check(b.b_out, golden(h + "mlp.c_proj.bias"), h + "b_out");
    check(b.ln1_w, golden(h + "ln_1.weight"), h + "ln_1.weight");
    check(b.ln1_b, golden(h + "ln_1.bias"), h + "ln_1.bias");
    check(b.ln2_w, golden(h + "ln_2.weight"), h + "ln_2.weight");
    check(b.ln2_b, golden(h + "ln_2.bias"), h + "ln_2.bias");
  }
}

SweepRequest request(SweepKind kind, bool by_pos, Direction d) {
  SweepRequest r;
  r.spec.kind = kind;
  r.spec.by_pos = by_pos;
  r.direction = d;
  return r;
}

// Attribution is the derivative of the metric along (source - target) restricted to the cell:
// a central difference of the patched forward with a small step must reproduce it.
TEST(Attribution, EachCellIsTheDirectionalDerivativeOfItsPatch) {
  const ModelConfig& cfg = tiny().config();
  for (SweepKind kind : {SweepKind::ResidPre, SweepKind::HeadOut, SweepKind::HeadQ, SweepKind::HeadK,
                         SweepKind::HeadV, SweepKind::HeadPattern, SweepKind::MlpNeuron, SweepKind::MlpOut}) {
    for (Direction dir : {Direction::Denoising, Direction::Noising}) {
      const SweepRequest req = request(kind, kind != SweepKind::MlpNeuron, dir);
      AttributionRunner atp(tiny(), pairs(), req, {});
      const SweepResult r = atp.run();
      const int cells = static_cast<int>(r.grid.cells.size());
      for (int p : {0, 3}) {
        const PromptPair& pair = pairs().pairs[p];
        const auto& target = dir == Direction::Denoising ? pair.corrupted : pair.clean;
        const auto& source = dir == Direction::Denoising ? pair.clean : pair.corrupted;
        const double base = dir == Direction::Denoising ? r.baselines.corrupted_ld[p] : r.baselines.clean_ld[p];
        for (int c = 0; c < cells; c += std::max(1, cells / 7)) {
          const PatchCell& cell = r.grid.cells[c];
          HookPlan src_plan(cfg.n_layer);
          src_plan.cache({cell.kind, cell.layer});
          tiny().forward(TokenBatch::single(source), src_plan, LogitRows::None);
          const Tensor& s = src_plan.activations().at(HookPoint{cell.kind, cell.layer});
          const std::vector<float> src(s.data, s.data + s.numel());
          auto ld_with = [&](float alpha) {
            HookPlan plan(cfg.n_layer);
            plan.add({cell.kind, cell.layer}, [&](const HookContext& ctx, Tensor& x) {
              std::vector<float> mixed(x.data, x.data + x.numel());
              for (size_t i = 0; i < mixed.size(); ++i) mixed[i] += alpha * (src[i] - x.data[i]);
              apply_patch(cell, mixed.data(), x.data, cfg, ctx.T, 0);
            });
            const Tensor l = tiny().forward(TokenBatch::single(target), plan, LogitRows::Last);
            return static_cast<double>(l.data[pair.answers[0]]) - l.data[pair.wrongs[0]];
          };
          const float h = 1e-2f;
          const double derivative = (ld_with(h) - ld_with(-h)) / (2 * h);
          EXPECT_NEAR(r.effect[p * cells + c] - base, derivative, 2e-3 + 2e-2 * std::abs(derivative))
              << SweepSpec{kind}.name() << " cell " << c << " pair " << p;
        }
      }
    }
  }
}

std::vector<double> ranks(const std::vector<float>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size(); ++i) r[order[i]] = static_cast<double>(i);
  return r;
}

double spearman(const std::vector<float>& a, const std::vector<float>& b) {
  const auto ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size()), mean = (n - 1) / 2;
  double num = 0, da = 0, db = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (ra[i] - mean) * (rb[i] - mean);
    da += (ra[i] - mean) * (ra[i] - mean);
    db += (rb[i] - mean) * (rb[i] - mean);
  }
  return num / std::sqrt(da * db);
}

// On a model small enough to patch exhaustively, attribution ranks components like activation
// patching does, and agrees on the sign of the strongest ones.
TEST(Attribution, RanksComponentsLikeExhaustivePatching) {
  for (SweepKind kind : {SweepKind::HeadOut, SweepKind::ResidPre, SweepKind::MlpOut}) {
    SweepRequest req = request(kind, kind != SweepKind::HeadOut, Direction::Denoising);
    req.metric = MetricKind::Normalized;
    const SweepResult truth = SweepRunner(tiny(), pairs(), req).run();
    const SweepResult est = AttributionRunner(tiny(), pairs(), req, {}).run();
    std::vector<float> t, e;
    for (size_t c = 0; c < truth.mean.size(); ++c)
      if (!std::isnan(truth.mean[c])) t.push_back(truth.mean[c]), e.push_back(est.mean[c]);
    const double rho = spearman(t, e);
    EXPECT_GE(rho, 0.6) << SweepSpec{kind}.name();
    std::printf("%s: Spearman %.3f\n", SweepSpec{kind}.name().c_str(), rho);
    const size_t top = std::max_element(t.begin(), t.end(), [](float a, float b) { return std::abs(a) < std::abs(b); }) - t.begin();
    EXPECT_EQ(std::signbit(t[top]), std::signbit(e[top])) << SweepSpec{kind}.name();
  }
}

// Saturated attention (a head whose queries and keys are scaled up): the linear estimate
// through q and k is poor, recomputing the softmax (AtP*'s fix) moves it toward the truth.
TEST(Attribution, QueryKeyFixHelpsUnderSaturatedAttention) {
  TransformerModel model = TransformerModel::load(kData / "tiny-gpt2");
  const int C = model.config().n_embd;
  for (int L = 0; L < model.config().n_layer; ++L)
    for (Tensor* w : {&model.weights().blocks[L].W_Q, &model.weights().blocks[L].W_K})
      for (int64_t i = 0; i < static_cast<int64_t>(C) * C; ++i) w->data[i] *= 4.0f;
  for (SweepKind kind : {SweepKind::HeadQ, SweepKind::HeadK}) {
    const SweepRequest req = request(kind, true, Direction::Denoising);
    const SweepResult truth = SweepRunner(model, pairs(), req).run();
    const SweepResult plain = AttributionRunner(model, pairs(), req, {}).run();
    const SweepResult fixed = AttributionRunner(model, pairs(), req, {.qk_fix = true}).run();
    double err_plain = 0, err_fixed = 0;
    for (size_t i = 0; i < truth.effect.size(); ++i) {
      if (std::isnan(truth.effect[i])) continue;
      err_plain += std::abs(plain.effect[i] - truth.effect[i]);
      err_fixed += std::abs(fixed.effect[i] - truth.effect[i]);
    }
    std::printf("%s: |AtP - truth| %.3f, with the fix %.3f\n", SweepSpec{kind}.name().c_str(), err_plain, err_fixed);
    EXPECT_LT(err_fixed, 0.9 * err_plain) << SweepSpec{kind}.name() << ": plain " << err_plain << ", fixed " << err_fixed;
  }
}

TEST(Attribution, SweepsSharingOnePassEqualSeparateRuns) {
  SweepRequest req = request(SweepKind::HeadOut, false, Direction::Noising);
  req.pairs_per_block = 4;  // two pair blocks
  const std::vector<SweepSpec> also = {{SweepKind::MlpNeuron, false}, {SweepKind::ResidPre, true}};
  const auto shared = AttributionRunner(tiny(), pairs(), req, {}, also).run_all();
  ASSERT_EQ(shared.size(), 3u);
  for (size_t i = 0; i < shared.size(); ++i) {
    SweepRequest one = req;
    if (i > 0) one.spec = also[i - 1];
    const SweepResult alone = AttributionRunner(tiny(), pairs(), one, {}).run();
    ASSERT_EQ(alone.effect.size(), shared[i].effect.size());
    for (size_t j = 0; j < alone.effect.size(); ++j)
      if (!std::isnan(alone.effect[j])) EXPECT_FLOAT_EQ(alone.effect[j], shared[i].effect[j]);
  }
}

TEST(Attribution, GradDropKeepsTheSignAndZeroForAnIdenticalPair) {
  SweepRequest req = request(SweepKind::HeadOut, false, Direction::Denoising);
  const SweepResult plain = AttributionRunner(tiny(), pairs(), req, {}).run();
  const SweepResult dropped = AttributionRunner(tiny(), pairs(), req, {.grad_drop = true}).run();
  const int cells = static_cast<int>(plain.grid.cells.size());
  for (int p = 0; p < plain.n_pairs; ++p)
    for (int c = 0; c < cells; ++c) {
      const double a = plain.effect[p * cells + c] - plain.baselines.corrupted_ld[p];
      const double b = dropped.effect[p * cells + c] - dropped.baselines.corrupted_ld[p];
      if (std::abs(a) > 1e-6) EXPECT_EQ(std::signbit(a), std::signbit(b));
    }
  PairDataset same = pairs();
  for (PromptPair& p : same.pairs) p.corrupted = p.clean;
  const SweepResult none = AttributionRunner(tiny(), same, req, {.grad_drop = true}).run();
  for (int p = 0; p < none.n_pairs; ++p)
    for (int c = 0; c < cells; ++c) EXPECT_NEAR(none.effect[p * cells + c], none.baselines.clean_ld[p], 1e-6);
}

}  // namespace
}  // namespace causeway
