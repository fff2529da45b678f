// Grouped-query attention ops (ops_attention_gqa.h): the forward against the TransformerLens
// 3.9 goldens of every family with rotary attention (scores from hook_rot_q / hook_rot_k,
// pattern, z from hook_pattern / hook_v, every prompt and layer), and the backward against
// central differences of a double-precision forward written here and, where the gradient
// goldens allow (they store no clean q, k or v), against TransformerLens autograd.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "backend/ops_attention_gqa.h"
#include "family_goldens.h"

namespace causeway {
namespace {

constexpr double kTolerance = 1e-4;

using fixtures::FamilyGoldens;

// Attention settings of one family and layer, from the TL config the goldens were made with.
struct AttnConfig {
  int n_layers, NH, NKV, HS;
  float scale, softcap;
  std::vector<int> window;  // per layer, 0 = global
};

AttnConfig read_config(const std::string& family) {
  const FamilyGoldens goldens(family);
  const nlohmann::json& c = goldens.json().at("transformer_lens").at("config_as_derived");
  AttnConfig a{};
  a.n_layers = c.at("n_layers").get<int>();
  a.NH = c.at("n_heads").get<int>();
  a.NKV = c.at("n_key_value_heads").is_null() ? a.NH : c.at("n_key_value_heads").get<int>();
  a.HS = c.at("d_head").get<int>();
  a.scale = c.at("use_attn_scale").get<bool>()
                ? static_cast<float>(1.0 / c.at("attn_scale").get<double>())
                : 1.0f;
  const double cap = c.value("attn_scores_soft_cap", -1.0);
  a.softcap = cap > 0.0 ? static_cast<float>(cap) : 0.0f;
  a.window.assign(a.n_layers, 0);
  if (c.contains("attn_types") && !c.at("attn_types").is_null())
    for (int l = 0; l < a.n_layers; ++l)
      if (c.at("attn_types").at(l).get<std::string>() == "local")
        a.window[l] = c.at("window_size").get<int>();
  return a;
}

// Largest |a - b| where both are finite; elsewhere they must be equal (-inf masks).
double max_diff(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  EXPECT_EQ(a.size(), b.size()) << what;
  double m = 0.0;
  for (size_t i = 0; i < b.size() && i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      EXPECT_EQ(a[i], b[i]) << what << " at flat index " << i;
      continue;
    }
    m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  }
  return m;
}

class AttentionGqaGoldens : public ::testing::TestWithParam<std::string> {};

TEST_P(AttentionGqaGoldens, ScoresPatternAndZMatchTransformerLens) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  const std::string family = GetParam();
  const AttnConfig cfg = read_config(family);
  const FamilyGoldens f(family);
  int checked = 0, window_masked = 0;
  for (int p = 0; f.has("single." + std::to_string(p) + ".tokens"); ++p)
    for (int l = 0; l < cfg.n_layers; ++l) {
      const std::string pre =
          "single." + std::to_string(p) + ".blocks." + std::to_string(l) + ".attn.";
      const auto qs = f.shape(pre + "hook_rot_q"), ks = f.shape(pre + "hook_rot_k");
      const auto q = f.floats(pre + "hook_rot_q");
      const auto k = f.floats(pre + "hook_rot_k");
      const auto v = f.floats(pre + "hook_v");
      const auto scores_ref = f.floats(pre + "hook_attn_scores");
      const auto pattern_ref = f.floats(pre + "hook_pattern");
      const auto z_ref = f.floats(pre + "hook_z");
      const int T = static_cast<int>(qs[0]);
      ASSERT_EQ(qs[1], cfg.NH);
      ASSERT_EQ(ks[1], cfg.NKV);
      ASSERT_EQ(qs[2], cfg.HS);
      const size_t TT = static_cast<size_t>(cfg.NH) * T * T;
      std::vector<float> scores(TT), pattern(TT), z(q.size());
      cpu::attention_scores_gqa_forward(scores.data(), q.data(), k.data(), 1, T, cfg.NH, cfg.NKV,
                                        cfg.HS, cfg.scale, cfg.softcap, cfg.window[l]);
      const std::string at = family + " " + pre;
      EXPECT_LT(max_diff(scores, scores_ref, at + "hook_attn_scores"), kTolerance) << at;
      cpu::attention_softmax_forward(pattern.data(), scores.data(), 1, cfg.NH, T);
      EXPECT_LT(max_diff(pattern, pattern_ref, at + "hook_pattern"), kTolerance) << at;
      cpu::attention_values_gqa_forward(z.data(), pattern_ref.data(), v.data(), 1, T, cfg.NH,
                                        cfg.NKV, cfg.HS);
      EXPECT_LT(max_diff(z, z_ref, at + "hook_z"), kTolerance) << at;

      // Queries from q_begin on give the same rows as the full run.
      const int qb = T / 2;
      std::vector<float> part(static_cast<size_t>(cfg.NH) * (T - qb) * T);
      const float* q_tail = q.data() + static_cast<size_t>(qb) * cfg.NH * cfg.HS;
      cpu::attention_scores_gqa_forward(part.data(), q_tail, k.data(), 1, T, cfg.NH, cfg.NKV,
                                        cfg.HS, cfg.scale, cfg.softcap, cfg.window[l], qb);
      for (int h = 0; h < cfg.NH; ++h)
        for (int i = qb; i < T; ++i)
          for (int s = 0; s < T; ++s)
            ASSERT_EQ(part[(static_cast<size_t>(h) * (T - qb) + i - qb) * T + s],
                      scores[(static_cast<size_t>(h) * T + i) * T + s]) << at << " q_begin";

      // Count causal-visible entries the golden masks: only a sliding window makes them.
      for (int h = 0; h < cfg.NH; ++h)
        for (int i = 0; i < T; ++i)
          for (int s = 0; s <= i; ++s)
            if (std::isinf(scores_ref[(static_cast<size_t>(h) * T + i) * T + s])) ++window_masked;
      ++checked;
    }
  EXPECT_GE(checked, 2 * cfg.n_layers);
  // gemma2's layer 0 slides over prompts longer than its window; nothing else masks more than
  // causally, so the window test above is not vacuous and the others run unwindowed.
  if (family == "gemma2") {
    EXPECT_GT(window_masked, 0);
  } else {
    EXPECT_EQ(window_masked, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, AttentionGqaGoldens,
                         ::testing::Values("llama3", "llama2", "mistral", "qwen2", "qwen3", "gemma2",
                                           "gpt_neox"));

// The gradient goldens (TL autograd of a patching metric, batch of 3) store the clean pattern
// and the gradients at every hook: d_v, summed over each kv group, follows from pattern and
// d_z; d_scores from pattern and d_pattern (gemma2's layer 0 masks by its window there too).
TEST_P(AttentionGqaGoldens, ValueAndSoftmaxBackwardMatchTransformerLensGradients) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  const std::string family = GetParam();
  const AttnConfig cfg = read_config(family);
  const FamilyGoldens f(family, "gradient");
  for (int l = 0; l < cfg.n_layers; ++l) {
    const std::string blk = "blocks." + std::to_string(l) + ".attn.";
    const auto ps = f.shape("act.clean." + blk + "hook_pattern");
    const auto pattern = f.floats("act.clean." + blk + "hook_pattern");
    const auto d_z = f.floats("grad.clean." + blk + "hook_z");
    const auto d_v_ref = f.floats("grad.clean." + blk + "hook_v");
    const auto d_pattern_ref = f.floats("grad.clean." + blk + "hook_pattern");
    const auto d_scores_ref = f.floats("grad.clean." + blk + "hook_attn_scores");
    const int B = static_cast<int>(ps[0]), T = static_cast<int>(ps[2]);
    ASSERT_EQ(ps[1], cfg.NH);
    // v itself is not stored; d_v does not depend on it, only d_pattern does (unchecked here).
    const std::vector<float> v(d_v_ref.size(), 0.0f);
    std::vector<float> d_pattern(pattern.size()), d_v(d_v_ref.size()), d_scores(pattern.size());
    cpu::attention_values_gqa_backward(d_pattern.data(), d_v.data(), d_z.data(), pattern.data(),
                                       v.data(), B, T, cfg.NH, cfg.NKV, cfg.HS);
    double scale = 0.0;
    for (float x : d_v_ref) scale = std::max(scale, static_cast<double>(std::abs(x)));
    ASSERT_GT(scale, 0.0) << family << " " << blk << " all-zero d_v golden";
    EXPECT_LT(max_diff(d_v, d_v_ref, family + " d_v"), kTolerance * std::max(1.0, scale))
        << family << " " << blk << " max |d_v| " << scale;
    cpu::attention_softmax_backward(d_scores.data(), d_pattern_ref.data(), pattern.data(), B,
                                    cfg.NH, T);
    EXPECT_LT(max_diff(d_scores, d_scores_ref, family + " d_scores"), kTolerance)
        << family << " " << blk;
  }
}

TEST(AttentionGqaGoldensConfig, FamiliesExerciseGqaCapAndScale) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  const AttnConfig llama3 = read_config("llama3"), gemma2 = read_config("gemma2");
  EXPECT_LT(llama3.NKV, llama3.NH);
  EXPECT_GT(gemma2.softcap, 0.0f);
  EXPECT_GT(gemma2.window[0], 0);
  EXPECT_EQ(gemma2.window[1], 0);
  // query_pre_attn_scalar 24 with d_head 16: the scale is not 1/sqrt(d_head).
  EXPECT_NEAR(gemma2.scale, 1.0 / std::sqrt(24.0), 1e-7);
}

// The shared softmax under window masks: masked entries get 0, and a row whose every key is
// masked (a hook may set one) gives zeros, not NaN.
TEST(AttentionGqaSoftmax, MaskedEntriesAndFullyMaskedRows) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> scores = {-inf, -inf, 1.0f, 2.0f, -inf, -inf, -inf, -inf};
  std::vector<float> pattern(8, 7.0f);
  // 2 query rows (positions 2, 3) of 4 keys
  cpu::attention_softmax_forward(pattern.data(), scores.data(), 1, 1, 4, 2);
  EXPECT_EQ(pattern[0], 0.0f);
  EXPECT_EQ(pattern[1], 0.0f);
  EXPECT_NEAR(pattern[2], 1.0 / (1.0 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(pattern[3], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  for (int s = 4; s < 8; ++s) EXPECT_EQ(pattern[s], 0.0f) << s;
}

// --- backward against central differences --------------------------------------------------

struct GqaShape {
  int B, T, NH, NKV, HS;
  float scale, softcap;
  int window;
};

// loss = sum(w_z * z), z = values(softmax(capped masked scores)), all in double.
double loss_ref(const GqaShape& s, const std::vector<double>& q, const std::vector<double>& k,
                const std::vector<double>& v, const std::vector<double>& wz) {
  const int group = s.NH / s.NKV;
  double loss = 0.0;
  std::vector<double> row(s.T);
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.NH; ++h)
      for (int t = 0; t < s.T; ++t) {
        const int g = h / group;
        double mx = -1e300;
        for (int j = 0; j < s.T; ++j) {
          const bool visible = j <= t && (s.window == 0 || j > t - s.window);
          if (!visible) { row[j] = -INFINITY; continue; }
          double dot = 0.0;
          for (int d = 0; d < s.HS; ++d)
            dot += q[((b * s.T + t) * s.NH + h) * s.HS + d] *
                   k[((b * s.T + j) * s.NKV + g) * s.HS + d];
          double x = dot * s.scale;
          if (s.softcap > 0) x = s.softcap * std::tanh(x / s.softcap);
          row[j] = x;
          mx = std::max(mx, x);
        }
        double sum = 0.0;
        for (int j = 0; j < s.T; ++j) sum += std::isinf(row[j]) ? 0.0 : std::exp(row[j] - mx);
        for (int j = 0; j < s.T; ++j) {
          if (std::isinf(row[j])) continue;
          const double p = std::exp(row[j] - mx) / sum;
          for (int d = 0; d < s.HS; ++d)
            loss += p * v[((b * s.T + j) * s.NKV + g) * s.HS + d] *
                    wz[((b * s.T + t) * s.NH + h) * s.HS + d];
        }
      }
  return loss;
}

std::vector<float> randn(size_t n, uint32_t seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> out(n);
  for (auto& x : out) x = d(rng);
  return out;
}

// The largest gap between an analytic gradient and central differences of loss_ref, relative
// to max(1, |gradient|).
double worst_gap(const std::vector<float>& x, const std::vector<float>& grad,
                 const std::function<double(const std::vector<double>&)>& f) {
  std::vector<double> xd(x.begin(), x.end());
  double worst = 0.0;
  const double h = 1e-5;
  for (size_t i = 0; i < xd.size(); ++i) {
    const double x0 = xd[i];
    xd[i] = x0 + h;
    const double up = f(xd);
    xd[i] = x0 - h;
    const double down = f(xd);
    xd[i] = x0;
    const double fd = (up - down) / (2 * h);
    worst = std::max(worst, std::abs(fd - grad[i]) / std::max(1.0, std::abs(fd)));
  }
  return worst;
}

class AttentionGqaBackward : public ::testing::TestWithParam<GqaShape> {};

TEST_P(AttentionGqaBackward, MatchesCentralDifferences) {
  const GqaShape s = GetParam();
  const size_t nq = static_cast<size_t>(s.B) * s.T * s.NH * s.HS;
  const size_t nkv = static_cast<size_t>(s.B) * s.T * s.NKV * s.HS;
  const size_t nS = static_cast<size_t>(s.B) * s.NH * s.T * s.T;
  // Scores of order 1-3, so a cap of 1.5 bends them well away from the identity.
  const auto q = randn(nq, 1, 1.0f), k = randn(nkv, 2, 1.0f), v = randn(nkv, 3, 1.0f),
             wz = randn(nq, 4, 1.0f);
  std::vector<float> scores(nS), pattern(nS), z(nq);
  cpu::attention_scores_gqa_forward(scores.data(), q.data(), k.data(), s.B, s.T, s.NH, s.NKV,
                                    s.HS, s.scale, s.softcap, s.window);
  cpu::attention_softmax_forward(pattern.data(), scores.data(), s.B, s.NH, s.T);
  cpu::attention_values_gqa_forward(z.data(), pattern.data(), v.data(), s.B, s.T, s.NH, s.NKV,
                                    s.HS);

  std::vector<float> d_pattern(nS), d_scores(nS), d_q(nq), d_k(nkv), d_v(nkv);
  cpu::attention_values_gqa_backward(d_pattern.data(), d_v.data(), wz.data(), pattern.data(),
                                     v.data(), s.B, s.T, s.NH, s.NKV, s.HS);
  cpu::attention_softmax_backward(d_scores.data(), d_pattern.data(), pattern.data(), s.B, s.NH,
                                  s.T);
  // Masked entries must carry nothing, whatever an upstream hook left there.
  for (size_t i = 0; i < nS; ++i)
    if (std::isinf(scores[i])) d_scores[i] = 1e3f;
  cpu::attention_scores_gqa_backward(d_q.data(), d_k.data(), d_scores.data(), q.data(), k.data(),
                                     s.B, s.T, s.NH, s.NKV, s.HS, s.scale, s.softcap, s.window);

  const std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end()),
      wd(wz.begin(), wz.end());
  // The float forward agrees with the double one, so the reference is the same function.
  double fwd = 0.0;
  for (size_t i = 0; i < nq; ++i) fwd += static_cast<double>(z[i]) * wz[i];
  EXPECT_NEAR(fwd, loss_ref(s, qd, kd, vd, wd), 1e-4);

  constexpr double kGrad = 2e-4;
  using Vec = std::vector<double>;
  EXPECT_LT(worst_gap(q, d_q, [&](const Vec& x) { return loss_ref(s, x, kd, vd, wd); }), kGrad)
      << "d_q";
  EXPECT_LT(worst_gap(k, d_k, [&](const Vec& x) { return loss_ref(s, qd, x, vd, wd); }), kGrad)
      << "d_k";
  EXPECT_LT(worst_gap(v, d_v, [&](const Vec& x) { return loss_ref(s, qd, kd, x, wd); }), kGrad)
      << "d_v";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionGqaBackward,
    ::testing::Values(GqaShape{2, 7, 4, 2, 3, 0.7f, 0.0f, 0},   // GQA, causal
                      GqaShape{2, 7, 4, 2, 3, 0.7f, 1.5f, 3},   // GQA, cap, window
                      GqaShape{1, 6, 4, 1, 5, 0.45f, 0.0f, 2},  // one kv head, window
                      GqaShape{1, 6, 3, 3, 4, 0.5f, 2.0f, 0})); // multi-head, cap

}  // namespace
}  // namespace causeway
