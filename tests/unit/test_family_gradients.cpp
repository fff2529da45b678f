// The backward pass of every model family against PyTorch autograd (tests/reference/
// family_gradients.py: TransformerLens hook gradients, Hugging Face parameter gradients), against
// central finite differences of the forward, and attribution patching on a grouped-query family
// against its definition (a directional derivative per cell; AtP*'s q/k fix: the pattern change
// of the patched forward times the pattern gradient).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "data/prompt_pairs.h"
#include "family_goldens.h"
#include "model/transformer_model.h"
#include "model/weight_table.h"
#include "patching/attribution.h"
#include "patching/patch.h"
#include "patching/sweep.h"

namespace causeway {
namespace {

constexpr double kTolerance = 1e-4;

// max |a - b| / max |b| (tests/reference/make_gradient_goldens.py rel_err, and
// test_attribution.cpp): elementwise relative error is meaningless where gradients vanish.
double relative_error(const float* a, const std::vector<float>& b) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

std::vector<int32_t> to_i32(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

// The family's patching pairs (F-patching-goldens pairs.*): one answer and one wrong token each.
PairDataset family_pairs(const fixtures::FamilyGoldens& patching) {
  const std::vector<int64_t> shape = patching.shape("pairs.clean");
  const std::vector<int64_t> clean = patching.ints("pairs.clean"),
                             corrupted = patching.ints("pairs.corrupted"),
                             answer = patching.ints("pairs.answer"), wrong = patching.ints("pairs.wrong");
  PairDataset d;
  d.source = patching.path();
  for (int64_t p = 0; p < shape[0]; ++p) {
    PromptPair pair;
    pair.clean.assign(clean.begin() + p * shape[1], clean.begin() + (p + 1) * shape[1]);
    pair.corrupted.assign(corrupted.begin() + p * shape[1], corrupted.begin() + (p + 1) * shape[1]);
    pair.answers = {static_cast<int32_t>(answer[p])};
    pair.wrongs = {static_cast<int32_t>(wrong[p])};
    d.pairs.push_back(std::move(pair));
  }
  return d;
}

class FamilyGradients : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override {
    CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
    family_ = std::string(GetParam());
    goldens_ = std::make_unique<fixtures::FamilyGoldens>(family_, "gradient");
    pairs_ = family_pairs(fixtures::FamilyGoldens(family_, "patching"));
    model_ = std::make_unique<TransformerModel>(
        TransformerModel::load(fixtures::family_model_dir(family_)));
    // The gradient goldens' metric: sum over the first pairs of ld at the last position.
    for (int64_t p : goldens_->ints("metric.pairs")) {
      rows_.push_back(pairs_.pairs[p].clean);
      answer_.push_back(pairs_.pairs[p].answers[0]);
      wrong_.push_back(pairs_.pairs[p].wrongs[0]);
    }
    batch_ = TokenBatch::padded(rows_);
  }

  // Logit differences (after any final soft-cap) at each row's last position, with `plan`.
  std::vector<double> lds(HookPlan& plan) {
    const Tensor logits = model_->forward(batch_, plan, LogitRows::Last);
    const int V = model_->config().vocab_size;
    std::vector<double> out;
    for (int b = 0; b < batch_.B; ++b)
      out.push_back(static_cast<double>(logits.data[b * V + answer_[b]]) - logits.data[b * V + wrong_[b]]);
    return out;
  }
  double metric(HookPlan& plan) {
    double m = 0.0;
    for (double ld : lds(plan)) m += ld;
    return m;
  }

  // d(metric)/d(ln_final output), built independently of attribution.cpp: W_U rows of answer
  // minus wrong at the last position, each times the final soft-cap's slope 1 - tanh^2.
  std::vector<float> seed() {
    const ModelConfig& cfg = model_->config();
    const int C = cfg.n_embd, V = cfg.vocab_size;
    HookPlan none(cfg.n_layer);
    const Tensor capped = model_->forward(batch_, none, LogitRows::Last);
    std::vector<float> d(static_cast<size_t>(batch_.B) * batch_.T * C, 0.0f);
    const float* W_U = model_->weights().W_U.data;
    const double cap = cfg.final_logit_softcap;
    for (int b = 0; b < batch_.B; ++b) {
      auto slope = [&](int token) {
        const double t = cap > 0 ? capped.data[b * V + token] / cap : 0.0;  // tanh(u / cap)
        return 1.0 - t * t;
      };
      float* row = d.data() + (static_cast<int64_t>(b) * batch_.T + batch_.lengths[b] - 1) * C;
      const double sa = slope(answer_[b]), sw = slope(wrong_[b]);
      for (int i = 0; i < C; ++i)
        row[i] = static_cast<float>(sa * W_U[int64_t{answer_[b]} * C + i] -
                                    sw * W_U[int64_t{wrong_[b]} * C + i]);
    }
    return d;
  }

  std::string family_;
  std::unique_ptr<fixtures::FamilyGoldens> goldens_;
  PairDataset pairs_;
  std::unique_ptr<TransformerModel> model_;
  std::vector<std::vector<int32_t>> rows_;
  std::vector<int> answer_, wrong_;
  TokenBatch batch_;
};

TEST_P(FamilyGradients, EveryHookGradientMatchesTransformerLens) {
  const ModelConfig& cfg = model_->config();
  HookPlan plan(cfg.n_layer);
  model_->cache_for_backward(plan);
  const std::vector<double> ld = lds(plan);
  const std::vector<float> ref_metric = goldens_->floats("metric.clean");
  ASSERT_EQ(ld.size(), ref_metric.size());
  for (size_t b = 0; b < ld.size(); ++b) EXPECT_NEAR(ld[b], ref_metric[b], 1e-4) << family_ << " ld " << b;

  BackwardRequest req;
  req.hooks = all_hook_points(cfg);
  const std::vector<float> d_final = seed();
  ActivationCache grads;
  model_->backward(batch_, plan.activations(), d_final.data(), req, grads);
  std::set<std::string> checked;
  for (const HookPoint& h : req.hooks) {
    const std::string key = "grad.clean." + h.name();
    ASSERT_TRUE(goldens_->has(key)) << family_ << ": no golden " << key;
    const std::vector<float> ref = goldens_->floats(key);
    const Tensor& got = grads.at(h);
    // Qwen3's q/k norm hooks are [B*T*H, ...] in TransformerLens: the same order as ours.
    ASSERT_EQ(static_cast<size_t>(got.numel()), ref.size()) << family_ << " " << key;
    EXPECT_LE(relative_error(got.data, ref), kTolerance) << family_ << " " << key;
    checked.insert(key);
  }
  for (const std::string& key : goldens_->keys_with_prefix("grad.clean."))
    EXPECT_TRUE(checked.count(key) || key.starts_with("grad.clean.unembed."))
        << family_ << ": golden " << key << " has no hook here";
}

// Our parameter name of each tensor a table row lists: "embed.W_E" -> "W_E",
// "blocks.0.attn._W_K" -> "blocks.0.attn.W_K", "blocks.0.attn.W_Q,W_K,W_V" -> the three.
std::vector<std::string> our_params(const std::string& tl_name) {
  std::vector<std::string> parts;
  for (size_t at = 0;;) {
    const size_t comma = tl_name.find(',', at);
    parts.push_back(tl_name.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  const std::string module = parts[0].substr(0, parts[0].rfind('.') + 1);
  for (size_t i = 1; i < parts.size(); ++i)
    if (parts[i].find('.') == std::string::npos) parts[i] = module + parts[i];
  for (std::string& p : parts) {
    for (const char* m : {"pos_embed.", "unembed.", "embed."})
      if (p.starts_with(m)) p = p.substr(std::string(m).size());
    const size_t dot = p.rfind('.');
    if (dot != std::string::npos && p.compare(dot + 1, 1, "_") == 0) p.erase(dot + 1, 1);
  }
  return parts;
}

TEST_P(FamilyGradients, WeightGradientsMatchHuggingFace) {
  const ModelConfig& cfg = model_->config();
  const std::vector<int64_t> shape = goldens_->shape("train.tokens");
  TokenBatch batch;
  batch.B = static_cast<int>(shape[0]), batch.T = static_cast<int>(shape[1]);
  batch.ids = to_i32(goldens_->ints("train.tokens"));
  batch.lengths.assign(batch.B, batch.T);
  std::vector<int32_t> targets(batch.ids.size(), -1);
  for (int b = 0; b < batch.B; ++b)
    for (int t = 0; t + 1 < batch.T; ++t) targets[b * batch.T + t] = batch.ids[b * batch.T + t + 1];
  ModelWeights grads(cfg);
  const double loss = model_->loss_and_gradients(batch, targets, grads);
  EXPECT_NEAR(loss, goldens_->floats("train.loss")[0], 1e-5) << family_;

  std::set<std::string> checked;
  const int64_t HS = cfg.d_head();
  for (const WeightRow& row : weight_table(cfg)) {
    // transformers 5 names GPT-NeoX's embed_out lm_head in memory (FAMILIES.md).
    std::string key = "train.grad." + row.hf_name;
    if (!goldens_->has(key) && row.hf_name == "embed_out.weight") key = "train.grad.lm_head.weight";
    ASSERT_TRUE(goldens_->has(key)) << family_ << ": no golden " << key;
    checked.insert(key);
    const std::vector<float> ref = goldens_->floats(key);
    std::vector<std::string> params = our_params(row.tl_name);
    // A tied embedding's gradient holds both the lookup and the unembedding parts.
    if (params.size() == 2 && params[1] == "W_U") params.resize(1);
    if (params.size() == 1) {
      const Tensor got = grads.arena().get(params[0]);
      ASSERT_EQ(static_cast<size_t>(got.numel()), ref.size()) << family_ << " " << key;
      // Gemma stores norm weights as w - 1 and we hold 1 + w: the gradients are the same.
      EXPECT_LE(relative_error(got.data, ref), kTolerance) << family_ << " " << key << " -> " << params[0];
      continue;
    }
    // GPT-NeoX query_key_value: rows grouped per head as [q_h | k_h | v_h], HS rows each.
    ASSERT_EQ(params.size(), 3u) << row.tl_name;
    const int64_t width = static_cast<int64_t>(ref.size()) / (3 * cfg.n_head * HS);
    for (int i = 0; i < 3; ++i) {
      std::vector<float> part;
      for (int h = 0; h < cfg.n_head; ++h) {
        const auto begin = ref.begin() + (3 * h + i) * HS * width;
        part.insert(part.end(), begin, begin + HS * width);
      }
      const Tensor got = grads.arena().get(params[i]);
      ASSERT_EQ(static_cast<size_t>(got.numel()), part.size()) << family_ << " " << params[i];
      EXPECT_LE(relative_error(got.data, part), kTolerance) << family_ << " " << key << " -> " << params[i];
    }
  }
  for (const std::string& key : goldens_->keys_with_prefix("train.grad."))
    EXPECT_TRUE(checked.count(key)) << family_ << ": golden " << key << " not compared";
}

// A few elements of a few hooks per family against a central difference of the metric, the
// hook value perturbed in place by a callback: independent of the goldens.
TEST_P(FamilyGradients, HookGradientsMatchFiniteDifferences) {
  const ModelConfig& cfg = model_->config();
  const int last = cfg.n_layer - 1;
  const std::vector<HookPoint> probes = {
      {HookKind::Embed, -1},           {HookKind::Ln1Scale, 0},        {HookKind::Ln1Normalized, last},
      {HookKind::Q, 0},                {HookKind::K, last},            {HookKind::V, 0},
      {HookKind::QNormScale, last},    {HookKind::KNormNormalized, 0}, {HookKind::RotQ, last},
      {HookKind::RotK, 0},             {HookKind::AttnScores, 0},      {HookKind::Pattern, last},
      {HookKind::Z, 0},                {HookKind::Result, last},       {HookKind::Ln1PostScale, 0},
      {HookKind::Ln1PostNormalized, last}, {HookKind::ResidMid, 0},    {HookKind::Ln2Scale, last},
      {HookKind::MlpPre, 0},           {HookKind::MlpPreLinear, last}, {HookKind::MlpPost, 0},
      {HookKind::Ln2PostScale, last},  {HookKind::MlpOut, 0},          {HookKind::ResidPost, 0},
      {HookKind::LnFinalScale, -1},    {HookKind::LnFinalNormalized, -1}};
  HookPlan cached(cfg.n_layer);
  model_->cache_for_backward(cached);
  lds(cached);
  BackwardRequest req;
  for (const HookPoint& p : probes)
    if (model_has_hook(p.kind, cfg)) req.hooks.push_back(p);
  const std::vector<float> d_final = seed();
  ActivationCache grads;
  model_->backward(batch_, cached.activations(), d_final.data(), req, grads);

  std::mt19937 rng(11);
  int checked = 0;
  for (const HookPoint& p : req.hooks) {
    const Tensor& g = grads.at(p);
    for (int trial = 0, found = 0; trial < 40 && found < 3; ++trial) {
      const int64_t i = std::uniform_int_distribution<int64_t>(0, g.numel() - 1)(rng);
      if (std::abs(g.data[i]) < 1e-3f) continue;  // masked, or too small to tell from rounding
      ++found;
      // Small steps where the forward is strongly curved (1/scale, softmax).
      const bool curved = p.kind == HookKind::AttnScores || p.kind == HookKind::Pattern ||
                          hook_geometry(p.kind, cfg).width == 1;
      const float h = curved ? 1e-3f : 1e-2f;
      auto value_with = [&](float delta) {
        HookPlan plan(cfg.n_layer);
        plan.add(p, [&](const HookContext&, Tensor& x) { x.data[i] += delta; });
        return metric(plan);
      };
      const double fd = (value_with(h) - value_with(-h)) / (2.0 * h);
      EXPECT_NEAR(g.data[i], fd, 2e-3 + 2e-2 * std::abs(fd)) << family_ << " " << p.name() << " element " << i;
      ++checked;
    }
  }
  EXPECT_GE(checked, 3 * 15) << family_;
}

// GradDrop (AtP*): with block L dropped, the residual stream's gradient passes block L
// unchanged, while block L's MLP and every later hook see the plain backward's gradients.
TEST_P(FamilyGradients, GradDropSkipsTheDroppedBlockOnly) {
  const ModelConfig& cfg = model_->config();
  HookPlan cached(cfg.n_layer);
  model_->cache_for_backward(cached);
  lds(cached);
  const std::vector<float> d_final = seed();
  BackwardRequest plain;
  plain.hooks = all_hook_points(cfg);
  ActivationCache g_plain;
  model_->backward(batch_, cached.activations(), d_final.data(), plain, g_plain);
  const std::set<HookKind> mlp_side = {HookKind::ResidPost,    HookKind::MlpOut,   HookKind::MlpPost,
                                       HookKind::MlpPre,       HookKind::MlpPreLinear,
                                       HookKind::Ln2Scale,     HookKind::Ln2Normalized,
                                       HookKind::Ln2PostScale, HookKind::Ln2PostNormalized};
  for (int L = 0; L < cfg.n_layer; ++L) {
    BackwardRequest drop = plain;
    drop.drop_layer = L;
    ActivationCache g;
    model_->backward(batch_, cached.activations(), d_final.data(), drop, g);
    const Tensor& pre = g.at(HookPoint{HookKind::ResidPre, L});
    const Tensor& post = g.at(HookPoint{HookKind::ResidPost, L});
    ASSERT_EQ(pre.numel(), post.numel());
    for (int64_t i = 0; i < pre.numel(); ++i)
      ASSERT_EQ(pre.data[i], post.data[i]) << family_ << " drop " << L << " element " << i;
    int same = 0;
    for (const HookPoint& h : plain.hooks) {
      const bool after = h.layer > L || h.kind == HookKind::LnFinalScale ||
                         h.kind == HookKind::LnFinalNormalized;
      if (!after && !(h.layer == L && mlp_side.count(h.kind))) continue;
      const Tensor& a = g.at(h);
      const Tensor& b = g_plain.at(h);
      for (int64_t i = 0; i < a.numel(); ++i)
        ASSERT_EQ(a.data[i], b.data[i]) << family_ << " drop " << L << " " << h.name();
      ++same;
    }
    EXPECT_GE(same, 5) << family_;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyGradients, ::testing::ValuesIn(fixtures::kFamilies),
                         [](const auto& info) { return std::string(info.param); });

// Attribution on every family (Gemma 2 brings soft-caps, a sliding window, post-norms and a q
// width != d_model; Qwen3 q/k norms; GPT-NeoX partial rotary and a parallel residual): each
// cell's estimate is the derivative of the metric along (source - target) restricted to the
// cell, and AtP*'s q/k fix is the pattern change of the patched forward times the pattern
// gradient.
class FamilyAttribution : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override {
    CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
    family_ = std::string(GetParam());
    model_ = std::make_unique<TransformerModel>(
        TransformerModel::load(fixtures::family_model_dir(family_)));
    pairs_ = family_pairs(fixtures::FamilyGoldens(family_, "patching"));
    pairs_.pairs.resize(3);
  }
  static SweepRequest request(SweepKind kind, bool by_pos, Direction d) {
    SweepRequest r;
    r.spec.kind = kind;
    r.spec.by_pos = by_pos;
    r.direction = d;
    return r;
  }
  // The source run's value of a hook for one prompt.
  std::vector<float> source_value(const std::vector<int32_t>& tokens, HookPoint hp) {
    HookPlan plan(model_->config().n_layer);
    plan.cache(hp);
    model_->forward(TokenBatch::single(tokens), plan, LogitRows::None);
    const Tensor& s = plan.activations().at(hp);
    return {s.data, s.data + s.numel()};
  }
  std::string family_;
  std::unique_ptr<TransformerModel> model_;
  PairDataset pairs_;
};

TEST_P(FamilyAttribution, EachCellIsTheDirectionalDerivativeOfItsPatch) {
  const ModelConfig& cfg = model_->config();
  int checked = 0;
  for (SweepKind kind : {SweepKind::ResidPre, SweepKind::HeadOut, SweepKind::HeadQ, SweepKind::HeadK,
                         SweepKind::HeadV, SweepKind::HeadPattern, SweepKind::MlpNeuron, SweepKind::AttnOut,
                         SweepKind::HeadEvery}) {
    for (Direction dir : {Direction::Denoising, Direction::Noising}) {
      const bool by_pos = kind != SweepKind::MlpNeuron && kind != SweepKind::HeadEvery;
      const SweepRequest req = request(kind, by_pos, dir);
      const SweepResult r = AttributionRunner(*model_, pairs_, req, {}).run();
      const int cells = static_cast<int>(r.grid.cells.size());
      for (int p : {0, 2}) {
        const PromptPair& pair = pairs_.pairs[p];
        const auto& target = dir == Direction::Denoising ? pair.corrupted : pair.clean;
        const auto& source = dir == Direction::Denoising ? pair.clean : pair.corrupted;
        const double base = dir == Direction::Denoising ? r.baselines.corrupted_ld[p] : r.baselines.clean_ld[p];
        // An odd stride, so head-minor grids visit every head.
        for (int c = 0; c < cells; c += (cells / 9) | 1) {
          const PatchCell& cell = r.grid.cells[c];
          const HookGeometry geo = hook_geometry(cell.kind, cfg);
          if (!geo.head_major && cell.head >= geo.heads) {  // a k / v head the model lacks
            EXPECT_EQ(r.effect[p * cells + c], static_cast<float>(base));
            continue;
          }
          const std::vector<float> src = source_value(source, {cell.kind, cell.layer});
          auto ld_with = [&](float alpha) {
            HookPlan plan(cfg.n_layer);
            plan.add({cell.kind, cell.layer}, [&](const HookContext& ctx, Tensor& x) {
              std::vector<float> mixed(x.data, x.data + x.numel());
              for (size_t i = 0; i < mixed.size(); ++i) mixed[i] += alpha * (src[i] - x.data[i]);
              apply_patch(cell, mixed.data(), x.data, cfg, ctx.T, 0);
            });
            const Tensor l = model_->forward(TokenBatch::single(target), plan, LogitRows::Last);
            return static_cast<double>(l.data[pair.answers[0]]) - l.data[pair.wrongs[0]];
          };
          const float h = 1e-2f;
          const double derivative = (ld_with(h) - ld_with(-h)) / (2 * h);
          EXPECT_NEAR(r.effect[p * cells + c] - base, derivative, 2e-3 + 2e-2 * std::abs(derivative))
              << family_ << " " << SweepSpec{kind}.name() << " cell " << c << " pair " << p;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 100);
}

TEST_P(FamilyAttribution, QueryKeyFixIsThePatchedPatternTimesItsGradient) {
  const ModelConfig& cfg = model_->config();
  const int P = static_cast<int>(pairs_.pairs.size());
  // Per pair, the target's patterns and their gradients (the metric's backward through it).
  std::vector<ActivationCache> patterns(P), d_patterns(P);
  for (int p = 0; p < P; ++p) {
    const PromptPair& pair = pairs_.pairs[p];
    const TokenBatch target = TokenBatch::single(pair.corrupted);
    HookPlan plan(cfg.n_layer);
    model_->cache_for_backward(plan);
    const Tensor logits = model_->forward(target, plan, LogitRows::Last);
    const int C = cfg.n_embd, T = target.T;
    std::vector<float> seed(static_cast<size_t>(T) * C, 0.0f);
    const double cap = cfg.final_logit_softcap;
    const float* W_U = model_->weights().W_U.data;
    for (auto [token, sign] : {std::pair{pair.answers[0], 1.0}, std::pair{pair.wrongs[0], -1.0}}) {
      const double th = cap > 0 ? logits.data[token] / cap : 0.0;
      for (int i = 0; i < C; ++i)
        seed[static_cast<size_t>(T - 1) * C + i] += static_cast<float>(sign * (1 - th * th) * W_U[int64_t{token} * C + i]);
    }
    BackwardRequest br;
    for (int L = 0; L < cfg.n_layer; ++L) br.hooks.push_back({HookKind::Pattern, L});
    model_->backward(target, plan.activations(), seed.data(), br, d_patterns[p]);
    for (const HookPoint& h : br.hooks) patterns[p].store(h, plan.activations().at(h));
  }
  int checked = 0;
  for (SweepKind kind : {SweepKind::HeadQ, SweepKind::HeadK}) {
    const SweepRequest req = request(kind, true, Direction::Denoising);
    const SweepResult r = AttributionRunner(*model_, pairs_, req, {.qk_fix = true}).run();
    const int cells = static_cast<int>(r.grid.cells.size());
    for (int p = 0; p < P; ++p) {
      const PromptPair& pair = pairs_.pairs[p];
      for (int c = 0; c < cells; c += 3) {
        const PatchCell& cell = r.grid.cells[c];
        if (cell.head >= hook_geometry(cell.kind, cfg).heads) continue;
        const HookPoint pattern{HookKind::Pattern, cell.layer};
        // The pattern of the forward with the cell patched from the clean run.
        const std::vector<float> src = source_value(pair.clean, {cell.kind, cell.layer});
        HookPlan patched(cfg.n_layer);
        patched.add({cell.kind, cell.layer}, [&](const HookContext& ctx, Tensor& x) {
          apply_patch(cell, src.data(), x.data, cfg, ctx.T, 0);
        });
        patched.cache(pattern);
        model_->forward(TokenBatch::single(pair.corrupted), patched, LogitRows::None);
        const Tensor& new_pattern = patched.activations().at(pattern);
        const float* old_pattern = patterns[p].at(pattern).data;
        const float* d_pattern = d_patterns[p].at(pattern).data;
        double expected = 0.0;
        for (int64_t i = 0; i < new_pattern.numel(); ++i)
          expected += (new_pattern.data[i] - old_pattern[i]) * d_pattern[i];
        EXPECT_NEAR(r.effect[p * cells + c] - r.baselines.corrupted_ld[p], expected, 1e-4 + 1e-3 * std::abs(expected))
            << family_ << " " << SweepSpec{kind}.name() << " cell " << c << " pair " << p;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 20);
}

// A bf16 model attributes (the backward widens W_U rows and weight tiles as the forward does)
// close to its fp32 self, and refuses weight gradients, which need fp32 matrices.
TEST_P(FamilyAttribution, Bf16WeightsAttributeButDoNotTrain) {
  TransformerModel bf16 = TransformerModel::load(fixtures::family_model_dir(family_), DType::BF16);
  const SweepRequest req = request(SweepKind::HeadOut, true, Direction::Denoising);
  const SweepResult wide = AttributionRunner(*model_, pairs_, req, {}).run();
  const SweepResult half = AttributionRunner(bf16, pairs_, req, {}).run();
  ASSERT_EQ(wide.effect.size(), half.effect.size());
  double scale = 0.0, diff = 0.0;
  for (size_t i = 0; i < wide.effect.size(); ++i) {
    const size_t p = i / wide.grid.cells.size();
    const double a = wide.effect[i] - wide.baselines.corrupted_ld[p],
                 b = half.effect[i] - half.baselines.corrupted_ld[p];
    scale = std::max(scale, std::abs(a));
    diff = std::max(diff, std::abs(a - b));
  }
  EXPECT_GT(scale, 0.0);
  EXPECT_LT(diff, 0.1 * scale) << family_ << ": bf16 vs fp32 attribution";
  TokenBatch batch = TokenBatch::single(pairs_.pairs[0].clean);
  std::vector<int32_t> targets(batch.ids.begin() + 1, batch.ids.end());
  targets.push_back(-1);
  ModelWeights grads(bf16.config());
  EXPECT_THROW(bf16.loss_and_gradients(batch, targets, grads), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyAttribution, ::testing::ValuesIn(fixtures::kFamilies),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace causeway
