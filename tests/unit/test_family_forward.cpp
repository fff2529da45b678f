// Every family's forward against Hugging Face logits and every TransformerLens 3.9 hook
// (tests/reference/FAMILIES.md), the padded batch, and the part-way forward the patching engine
// runs (prefix reuse and cone restriction) against a full one.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "backend/ops_linear.h"
#include "family_goldens.h"
#include "model/transformer_model.h"

namespace causeway {
namespace {

constexpr double kTolerance = 1e-4;

double max_abs_diff(const float* got, const std::vector<float>& ref) {
  double m = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (got[i] == ref[i]) continue;  // masked scores are -inf on both sides
    const double d = std::abs(static_cast<double>(got[i]) - ref[i]);
    if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
  }
  return m;
}

std::vector<int32_t> to_i32(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

class FamilyForward : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override {
    CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
    family_ = std::string(GetParam());
    goldens_ = std::make_unique<fixtures::FamilyGoldens>(family_);
    model_ = std::make_unique<TransformerModel>(
        TransformerModel::load(fixtures::family_model_dir(family_)));
  }
  std::string family_;
  std::unique_ptr<fixtures::FamilyGoldens> goldens_;
  std::unique_ptr<TransformerModel> model_;
};

TEST_P(FamilyForward, LogitsAndEveryHookMatchTransformerLens) {
  const ModelConfig& cfg = model_->config();
  const std::vector<HookPoint> ours = all_hook_points(cfg);
  std::set<std::string> our_names;
  for (HookPoint h : ours) our_names.insert(h.name());
  // The hooks TransformerLens fires are exactly ours, but for unembed's (logits are checked).
  for (const auto& name : goldens_->json()["hooks"]) {
    const std::string n = name.get<std::string>();
    if (n.starts_with("unembed.")) continue;
    EXPECT_TRUE(our_names.count(n)) << family_ << ": TransformerLens has " << n << ", we do not";
  }
  EXPECT_EQ(our_names.size() + 2, goldens_->json()["hooks"].size()) << family_;

  const int prompts = static_cast<int>(goldens_->json()["prompts"].size());
  ASSERT_GE(prompts, 1);
  for (int i = 0; i < prompts; ++i) {
    const std::string p = "single." + std::to_string(i);
    HookPlan plan(cfg.n_layer);
    for (HookPoint h : ours) plan.cache(h);
    const TokenBatch batch = TokenBatch::single(to_i32(goldens_->ints(p + ".tokens")));
    const Tensor logits = model_->forward(batch, plan);
    const std::vector<float> ref_logits = goldens_->floats(p + ".logits");
    ASSERT_EQ(static_cast<size_t>(logits.numel()), ref_logits.size()) << p;
    EXPECT_LE(max_abs_diff(logits.data, ref_logits), kTolerance) << family_ << " " << p << " logits";
    for (HookPoint h : ours) {
      const std::string key = p + "." + h.name();
      ASSERT_TRUE(goldens_->has(key)) << family_ << ": no golden " << key;
      const std::vector<float> ref = goldens_->floats(key);
      const Tensor& got = plan.activations().at(h);
      // Goldens drop the batch axis; Qwen3's q/k norm hooks are [T*H, ...] in TL (same order).
      ASSERT_EQ(static_cast<size_t>(got.numel()), ref.size()) << family_ << " " << key;
      EXPECT_LE(max_abs_diff(got.data, ref), kTolerance) << family_ << " " << key;
    }
  }
}

TEST_P(FamilyForward, PaddedBatchMatchesTransformerLens) {
  const ModelConfig& cfg = model_->config();
  const std::vector<int64_t> shape = goldens_->shape("batch.tokens");
  TokenBatch batch;
  batch.B = static_cast<int>(shape[0]);
  batch.T = static_cast<int>(shape[1]);
  batch.ids = to_i32(goldens_->ints("batch.tokens"));
  batch.lengths = to_i32(goldens_->ints("batch.lengths"));
  HookPlan plan(cfg.n_layer);
  std::vector<std::string> hooks;
  for (const auto& h : goldens_->json()["batch_hooks"]) {
    hooks.push_back(h.get<std::string>());
    plan.cache(HookPoint::parse(hooks.back(), cfg));
  }
  const Tensor logits = model_->forward(batch, plan);
  // Padding positions see only real tokens before them (causal), so every position compares.
  EXPECT_LE(max_abs_diff(logits.data, goldens_->floats("batch.logits")), kTolerance) << family_;
  for (const std::string& h : hooks)
    EXPECT_LE(max_abs_diff(plan.activations().at(h).data, goldens_->floats("batch." + h)),
              kTolerance)
        << family_ << " " << h;
}

// Prefix reuse and cone restriction: starting at block L from a run's resid_pre and
// recomputing only positions >= p (earlier keys and values from that run) gives the full
// forward's logits there. Rotary offsets, q/k norms, sliding windows and GQA all show up here.
class CachedRun final : public PrefixSource {
 public:
  CachedRun(const ActivationCache& c, const ModelConfig& cfg) : c_(c), cfg_(cfg) {}
  const float* resid_pre(int, int layer) const override {
    return c_.at(HookPoint{HookKind::ResidPre, layer}).data;
  }
  const float* keys(int, int layer) const override {
    return c_.at(HookPoint{attention_keys_hook(cfg_), layer}).data;
  }
  const float* values(int, int layer) const override {
    return c_.at(HookPoint{HookKind::V, layer}).data;
  }

 private:
  const ActivationCache& c_;
  const ModelConfig& cfg_;
};

TEST_P(FamilyForward, PartWayForwardEqualsFullForward) {
  const ModelConfig& cfg = model_->config();
  const TokenBatch batch = TokenBatch::single(to_i32(goldens_->ints("single.0.tokens")));
  const int T = batch.T, V = cfg.vocab_size;
  HookPlan plan(cfg.n_layer);
  for (int L = 0; L < cfg.n_layer; ++L)
    for (HookKind k : {HookKind::ResidPre, attention_keys_hook(cfg), HookKind::V}) plan.cache({k, L});
  const Tensor full_view = model_->forward(batch, plan);
  const std::vector<float> full(full_view.data, full_view.data + full_view.numel());
  const CachedRun prefix(plan.activations(), cfg);
  for (int start = 0; start < cfg.n_layer; ++start)
    for (int rb : {1, T / 2, T - 1}) {
      ForwardOptions o;
      o.start_layer = start;
      o.row_begin = rb;
      o.prefix = &prefix;
      HookPlan none(cfg.n_layer);
      const Tensor part = model_->forward(batch, none, o);
      const std::vector<float> ref(full.begin() + static_cast<int64_t>(rb) * V, full.end());
      ASSERT_EQ(static_cast<size_t>(part.numel()), ref.size());
      EXPECT_LE(max_abs_diff(part.data, ref), 1e-5)
          << family_ << " start_layer " << start << " row_begin " << rb;
    }
}

// Weights held in 16 bits compute in fp32: a bf16 (f16) model equals the fp32 model whose
// matrices were rounded to bf16 (f16), for logits and every hook. Vectors stay fp32 in both.
void round_matrices(ModelWeights& w, DType dtype) {
  auto round = [&](Weight& m) {
    if (!m.data) return;
    for (int64_t i = 0; i < m.numel(); ++i)
      m.data[i] = dtype == DType::BF16 ? cpu::bf16_to_f32(cpu::f32_to_bf16(m.data[i]))
                                       : cpu::f16_to_f32(cpu::f32_to_f16(m.data[i]));
  };
  round(w.W_E);
  if (w.W_U.data != w.W_E.data) round(w.W_U);
  for (BlockWeights& b : w.blocks)
    for (Weight* m : {&b.W_Q, &b.W_K, &b.W_V, &b.W_O, &b.W_gate, &b.W_in, &b.W_out}) round(*m);
}

void expect_16_bit_equals_rounded_fp32(const std::filesystem::path& dir, const TokenBatch& batch,
                                       const std::string& what) {
  for (DType dtype : {DType::BF16, DType::F16}) {
    TransformerModel half = TransformerModel::load(dir, dtype);
    TransformerModel rounded = TransformerModel::load(dir);
    round_matrices(rounded.weights(), dtype);
    const ModelConfig& cfg = half.config();
    EXPECT_LT(half.weights().bytes(), rounded.weights().bytes() * 0.6) << what;
    HookPlan a(cfg.n_layer), b(cfg.n_layer);
    for (HookPoint h : all_hook_points(cfg)) a.cache(h), b.cache(h);
    const Tensor la = half.forward(batch, a);
    const std::vector<float> got(la.data, la.data + la.numel());
    const Tensor lb = rounded.forward(batch, b);
    const std::vector<float> ref(lb.data, lb.data + lb.numel());
    EXPECT_LE(max_abs_diff(got.data(), ref), kTolerance) << what << " " << dtype_name(dtype);
    // The rounding is real: the fp32 model on unrounded weights differs.
    TransformerModel exact = TransformerModel::load(dir);
    const Tensor le = exact.forward(batch);
    EXPECT_GT(max_abs_diff(le.data, ref), 1e-6) << what << " " << dtype_name(dtype);
    for (HookPoint h : all_hook_points(cfg)) {
      const Tensor& x = b.activations().at(h);
      EXPECT_LE(max_abs_diff(a.activations().at(h).data,
                             std::vector<float>(x.data, x.data + x.numel())),
                kTolerance)
          << what << " " << dtype_name(dtype) << " " << h.name();
    }
  }
}

TEST_P(FamilyForward, SixteenBitWeightsEqualFp32OnRoundedWeights) {
  expect_16_bit_equals_rounded_fp32(fixtures::family_model_dir(family_),
                                    TokenBatch::single(to_i32(goldens_->ints("single.1.tokens"))),
                                    family_);
}

TEST(Gpt2Forward, SixteenBitWeightsEqualFp32OnRoundedWeights) {
  // GPT-2's Conv1D matrices are stored (in, out): the other layout of the 16-bit linear ops.
  expect_16_bit_equals_rounded_fp32(std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2",
                                    TokenBatch::single({464, 329, 318, 257, 1, 99, 7}), "gpt2");
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyForward, ::testing::ValuesIn(fixtures::kFamilies),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace causeway
