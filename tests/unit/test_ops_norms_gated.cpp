// RMSNorm, gated MLP activations and the soft-cap (backend/ops_norms_gated.h): forward against
// the TransformerLens 3.9 hooks of the tiny family checkpoints (tests/data/families, see
// tests/reference/FAMILIES.md), backward against central differences of a double-precision
// forward written here.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/ops_norms_gated.h"
#include "family_goldens.h"
#include "random_values.h"

namespace causeway {
namespace {

constexpr double kGoldenTolerance = 1e-4;

using fixtures::FamilyGoldens;
using fixtures::GoldenTensors;

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// y (N, OC) = x (N, IC) @ W^T with W (OC, IC) as Hugging Face stores Linear weights; double sums.
std::vector<float> linear(const std::vector<float>& x, const std::vector<float>& W, int IC) {
  const size_t N = x.size() / IC, OC = W.size() / IC;
  std::vector<float> y(N * OC);
  for (size_t n = 0; n < N; ++n)
    for (size_t o = 0; o < OC; ++o) {
      double s = 0.0;
      for (int i = 0; i < IC; ++i) s += static_cast<double>(x[n * IC + i]) * W[o * IC + i];
      y[n * OC + o] = static_cast<float>(s);
    }
  return y;
}

using cpu::GatedActivation;

struct Family {
  const char* name;
  bool gemma;  // pre and post norms, 1 + w weights, GeGLU
  float eps;   // rms_norm_eps of the family's config.json
};

// Every stored prompt and layer of a family: each RMSNorm's hook_scale and hook_normalized from
// the hook that feeds it, the weighted output where a stored hook (or a linear map of it) shows
// it, and mlp.hook_post from hook_pre (gate) and hook_pre_linear (up).
void check_family(const Family& fam) {
  const FamilyGoldens gold(fam.name);
  const GoldenTensors weights = fixtures::family_weights(fam.name);
  const int C = 32, n_layer = 2;
  const GatedActivation act = fam.gemma ? GatedActivation::kGeluTanh : GatedActivation::kSilu;
  // Gemma stores w - 1; TL's converter (and causeway's loader) add the 1.
  auto norm_weight = [&](const std::string& hf) {
    auto w = weights.floats(hf);
    if (fam.gemma)
      for (float& v : w) v += 1.0f;
    return w;
  };

  int prompts = 0, checks = 0;
  for (; gold.has("single." + std::to_string(prompts) + ".tokens"); ++prompts) {
    const std::string p = "single." + std::to_string(prompts) + ".";
    // One RMSNorm: stats + normalized against the hooks `ln` (prefix), then, when `expect` is
    // given, the weighted output (mapped through `map`) against it.
    auto norm = [&](const std::string& ln, const std::vector<float>& inp, const std::string& hf_w,
                    const std::string& expect,
                    const std::function<std::vector<float>(const std::vector<float>&)>& map) {
      const int64_t N = static_cast<int64_t>(inp.size()) / C;
      std::vector<float> scale(N), normalized(inp.size()), out(inp.size());
      cpu::rmsnorm_stats(scale.data(), inp.data(), N, C, fam.eps);
      EXPECT_LE(max_abs_diff(scale, gold.floats(p + ln + ".hook_scale")), kGoldenTolerance)
          << p << ln << ".hook_scale";
      cpu::rmsnorm_apply(normalized.data(), inp.data(), scale.data(), nullptr, N, C);
      EXPECT_LE(max_abs_diff(normalized, gold.floats(p + ln + ".hook_normalized")),
                kGoldenTolerance)
          << p << ln << ".hook_normalized";
      checks += 2;
      if (expect.empty()) return;
      const auto w = norm_weight(hf_w);
      cpu::rmsnorm_apply(out.data(), inp.data(), scale.data(), w.data(), N, C);
      EXPECT_LE(max_abs_diff(map ? map(out) : out, gold.floats(p + expect)), kGoldenTolerance)
          << p << ln << " weighted output vs " << expect;
      ++checks;
    };
    for (int L = 0; L < n_layer; ++L) {
      const std::string b = "blocks." + std::to_string(L) + ".";
      const std::string hf = "model.layers." + std::to_string(L) + ".";
      // ln1 reads resid_pre; its weighted output is what q_proj sees (hook_q = out @ Wq^T + bq).
      norm(b + "ln1", gold.floats(p + b + "hook_resid_pre"), hf + "input_layernorm.weight",
           b + "attn.hook_q", [&](const std::vector<float>& out) {
             auto q = linear(out, weights.floats(hf + "self_attn.q_proj.weight"), C);
             if (weights.has(hf + "self_attn.q_proj.bias")) {
               const auto bias = weights.floats(hf + "self_attn.q_proj.bias");
               for (size_t i = 0; i < q.size(); ++i) q[i] += bias[i % bias.size()];
             }
             return q;
           });
      // ln2 reads resid_mid (Gemma 2 too: its post-norms sit inside the branches); its output
      // feeds the gate projection (hook_pre).
      const std::string ln2_w = fam.gemma ? "pre_feedforward_layernorm.weight"
                                          : "post_attention_layernorm.weight";
      norm(b + "ln2", gold.floats(p + b + "hook_resid_mid"), hf + ln2_w, b + "mlp.hook_pre",
           [&](const std::vector<float>& out) {
             return linear(out, weights.floats(hf + "mlp.gate_proj.weight"), C);
           });
      if (fam.gemma) {
        // ln1_post reads the attention output before it: the sum of hook_result over heads
        // (no o-bias), and gives hook_attn_out.
        const auto result = gold.floats(p + b + "attn.hook_result");  // (T, H, C)
        const size_t T = result.size() / (4 * C);
        std::vector<float> attn(T * C, 0.0f);
        for (size_t t = 0; t < T; ++t)
          for (int h = 0; h < 4; ++h)
            for (int c = 0; c < C; ++c) attn[t * C + c] += result[(t * 4 + h) * C + c];
        norm(b + "ln1_post", attn, hf + "post_attention_layernorm.weight", b + "hook_attn_out",
             nullptr);
        // ln2_post reads the MLP output before it (hook_post @ down_proj^T), gives hook_mlp_out.
        const auto mlp = linear(gold.floats(p + b + "mlp.hook_post"),
                                weights.floats(hf + "mlp.down_proj.weight"), 64);
        norm(b + "ln2_post", mlp, hf + "post_feedforward_layernorm.weight", b + "hook_mlp_out",
             nullptr);
      }
      // mlp.hook_post = act(hook_pre) * hook_pre_linear: hook_pre is the gate.
      const auto gate = gold.floats(p + b + "mlp.hook_pre");
      const auto up = gold.floats(p + b + "mlp.hook_pre_linear");
      std::vector<float> post(gate.size());
      cpu::gated_forward(post.data(), gate.data(), up.data(), static_cast<int64_t>(gate.size()),
                         act);
      EXPECT_LE(max_abs_diff(post, gold.floats(p + b + "mlp.hook_post")), kGoldenTolerance)
          << p << b << "mlp.hook_post";
      ++checks;
    }
    norm("ln_final", gold.floats(p + "blocks." + std::to_string(n_layer - 1) + ".hook_resid_post"),
         "model.norm.weight", "unembed.hook_in", nullptr);
  }
  EXPECT_GE(prompts, 3) << fam.name;
  // Per prompt: 2 layers x (ln1, ln2: 3 each; gemma post-norms 6; mlp 1) + ln_final 3.
  EXPECT_EQ(checks, prompts * (n_layer * (7 + (fam.gemma ? 6 : 0)) + 3)) << fam.name;
}

TEST(OpsNormsGated, Llama3GoldensMatchTransformerLens) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  check_family({"llama3", false, 1e-5f});
}
TEST(OpsNormsGated, Qwen2GoldensMatchTransformerLens) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  check_family({"qwen2", false, 1e-6f});
}
TEST(OpsNormsGated, Gemma2GoldensMatchTransformerLens) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  check_family({"gemma2", true, 1e-6f});
}

// The goldens must tell the activations apart, or the gated test above would pass either way.
TEST(OpsNormsGated, GoldensRejectTheOtherActivation) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  const FamilyGoldens gold("gemma2");
  const auto gate = gold.floats("single.0.blocks.0.mlp.hook_pre");
  const auto up = gold.floats("single.0.blocks.0.mlp.hook_pre_linear");
  std::vector<float> post(gate.size());
  cpu::gated_forward(post.data(), gate.data(), up.data(), static_cast<int64_t>(gate.size()),
                     GatedActivation::kSilu);
  EXPECT_GT(max_abs_diff(post, gold.floats("single.0.blocks.0.mlp.hook_post")),
            100 * kGoldenTolerance);
}

using fixtures::random_vector;

// Central difference of a double-precision scalar function at x[i] (x restored after).
double central_diff(const std::function<double(const std::vector<double>&)>& f,
                    std::vector<double>& x, size_t i, double h = 1e-5) {
  const double x0 = x[i];
  x[i] = x0 + h;
  const double fp = f(x);
  x[i] = x0 - h;
  const double fm = f(x);
  x[i] = x0;
  return (fp - fm) / (2 * h);
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Largest |got - ref| relative to the largest |ref| (gradients of either sign and size).
double rel_err(const std::vector<float>& got, const std::vector<double>& ref) {
  double m = 0.0, scale = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    m = std::max(m, std::abs(got[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return m / scale;
}

// Loss = sum(r * rmsnorm(x) * w) in double, r a fixed random cotangent.
double rms_loss(const std::vector<double>& x, const std::vector<double>& w,
                const std::vector<float>& r, int N, int C, double eps) {
  double loss = 0.0;
  for (int n = 0; n < N; ++n) {
    double ss = 0.0;
    for (int i = 0; i < C; ++i) ss += x[n * C + i] * x[n * C + i];
    const double s = std::sqrt(ss / C + eps);
    for (int i = 0; i < C; ++i) loss += r[n * C + i] * x[n * C + i] / s * w[i];
  }
  return loss;
}

TEST(OpsNormsGated, RmsnormBackwardMatchesFiniteDifferences) {
  const int N = 5, C = 24;
  const float eps = 1e-5f;
  const auto x = random_vector(N * C, 11, 2.0f);
  const auto w = random_vector(C, 12);
  const auto r = random_vector(N * C, 13);
  std::vector<float> scale(N);
  cpu::rmsnorm_stats(scale.data(), x.data(), N, C, eps);
  // d_inp and d_weight accumulate: start from a known offset and take it off after.
  std::vector<float> dx(N * C, 0.5f), dw(C, -0.25f);
  cpu::rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), scale.data(), w.data(), N, C);
  for (float& v : dx) v -= 0.5f;
  for (float& v : dw) v += 0.25f;

  auto xd = to_double(x), wd = to_double(w);
  std::vector<double> ref_dx(N * C), ref_dw(C);
  for (int i = 0; i < N * C; ++i)
    ref_dx[i] = central_diff([&](const auto& v) { return rms_loss(v, wd, r, N, C, eps); }, xd, i);
  for (int i = 0; i < C; ++i)
    ref_dw[i] = central_diff([&](const auto& v) { return rms_loss(xd, v, r, N, C, eps); }, wd, i);
  EXPECT_LT(rel_err(dx, ref_dx), 1e-5);
  EXPECT_LT(rel_err(dw, ref_dw), 1e-5);

  // The term through scale is large here: a gradient that treats scale as a constant fails.
  std::vector<float> naive(N * C);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < C; ++i) naive[n * C + i] = r[n * C + i] * w[i] / scale[n];
  EXPECT_GT(rel_err(naive, ref_dx), 1e-2);

  // Null weight is unit weight; null d_weight leaves weights alone.
  std::vector<float> ones(C, 1.0f), dx_null(N * C, 0.0f), dx_ones(N * C, 0.0f);
  cpu::rmsnorm_backward(dx_null.data(), nullptr, r.data(), x.data(), scale.data(), nullptr, N, C);
  cpu::rmsnorm_backward(dx_ones.data(), nullptr, r.data(), x.data(), scale.data(), ones.data(), N,
                        C);
  // (to rounding: the two loops may be vectorized with different fused multiply-adds)
  for (int i = 0; i < N * C; ++i) EXPECT_NEAR(dx_null[i], dx_ones[i], 1e-6f) << i;
}

TEST(OpsNormsGated, RmsnormForwardMatchesFormula) {
  const int N = 7, C = 40;
  const auto x = random_vector(N * C, 21, 3.0f);
  const auto w = random_vector(C, 22);
  std::vector<float> scale(N), y(N * C);
  cpu::rmsnorm_stats(scale.data(), x.data(), N, C, 1e-6f);
  cpu::rmsnorm_apply(y.data(), x.data(), scale.data(), w.data(), N, C);
  double err_s = 0.0, err_y = 0.0;
  for (int n = 0; n < N; ++n) {
    double ss = 0.0;
    for (int i = 0; i < C; ++i) ss += static_cast<double>(x[n * C + i]) * x[n * C + i];
    const double s = std::sqrt(ss / C + 1e-6);
    err_s = std::max(err_s, std::abs(scale[n] - s) / s);
    for (int i = 0; i < C; ++i)
      err_y = std::max(err_y, std::abs(y[n * C + i] - x[n * C + i] / s * w[i]));
  }
  EXPECT_LT(err_s, 1e-6);
  EXPECT_LT(err_y, 1e-5);
  // In place (out aliases inp).
  auto in_place = x;
  cpu::rmsnorm_apply(in_place.data(), in_place.data(), scale.data(), w.data(), N, C);
  EXPECT_EQ(in_place, y);
}

double silu_d(double x) { return x / (1.0 + std::exp(-x)); }
double gelu_tanh_d(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

TEST(OpsNormsGated, SiluForwardAndBackward) {
  auto x = random_vector(4000, 31, 4.0f);
  x.push_back(-100.0f);  // saturated ends: 0 and x
  x.push_back(100.0f);
  const int64_t n = static_cast<int64_t>(x.size());
  const auto dy = random_vector(x.size(), 32);
  std::vector<float> y(x.size()), dx(x.size());
  cpu::silu_forward(y.data(), x.data(), n);
  cpu::silu_backward(dx.data(), dy.data(), x.data(), n);
  auto xd = to_double(x);
  std::vector<double> ref_y(x.size()), ref_dx(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    ref_y[i] = silu_d(x[i]);
    ref_dx[i] = dy[i] * central_diff([&](const auto& v) { return silu_d(v[i]); }, xd, i);
  }
  double err_y = 0.0;
  for (size_t i = 0; i < x.size(); ++i)
    err_y = std::max(err_y, std::abs(y[i] - ref_y[i]) / std::max(1.0, std::abs(ref_y[i])));
  EXPECT_LT(err_y, 1e-6);
  EXPECT_LT(rel_err(dx, ref_dx), 1e-5);
}

TEST(OpsNormsGated, GatedBackwardMatchesFiniteDifferences) {
  for (GatedActivation act : {GatedActivation::kSilu, GatedActivation::kGeluTanh}) {
    const auto f = act == GatedActivation::kSilu ? silu_d : gelu_tanh_d;
    const auto gate = random_vector(3000, 41, 3.0f);
    const auto up = random_vector(gate.size(), 42, 2.0f);
    const auto dy = random_vector(gate.size(), 43);
    const int64_t n = static_cast<int64_t>(gate.size());
    std::vector<float> y(gate.size()), d_gate(gate.size()), d_up(gate.size());
    cpu::gated_forward(y.data(), gate.data(), up.data(), n, act);
    cpu::gated_backward(d_gate.data(), d_up.data(), dy.data(), gate.data(), up.data(), n, act);
    auto gd = to_double(gate), ud = to_double(up);
    std::vector<double> ref_y(gate.size()), ref_dg(gate.size()), ref_du(gate.size());
    for (size_t i = 0; i < gate.size(); ++i) {
      ref_y[i] = f(gate[i]) * up[i];
      ref_dg[i] = dy[i] * central_diff([&](const auto& v) { return f(v[i]) * ud[i]; }, gd, i);
      ref_du[i] = dy[i] * central_diff([&](const auto& v) { return f(gd[i]) * v[i]; }, ud, i);
    }
    EXPECT_LT(rel_err(y, ref_y), 1e-6) << static_cast<int>(act);
    EXPECT_LT(rel_err(d_gate, ref_dg), 1e-5) << static_cast<int>(act);
    EXPECT_LT(rel_err(d_up, ref_du), 1e-5) << static_cast<int>(act);
  }
}

TEST(OpsNormsGated, SoftcapForwardAndBackward) {
  for (float cap : {3.0f, 5.0f, 50.0f}) {
    const auto x = random_vector(3000, 51, 2.0f * cap);
    const auto dy = random_vector(x.size(), 52);
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<float> y(x.size()), dx(x.size());
    cpu::softcap_forward(y.data(), x.data(), n, cap);
    cpu::softcap_backward(dx.data(), dy.data(), x.data(), n, cap);
    auto xd = to_double(x);
    std::vector<double> ref_y(x.size()), ref_dx(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      ref_y[i] = cap * std::tanh(static_cast<double>(x[i]) / cap);
      ref_dx[i] = dy[i] * central_diff(
                              [&](const auto& v) { return cap * std::tanh(v[i] / cap); }, xd, i);
    }
    EXPECT_LT(rel_err(y, ref_y), 1e-6) << cap;
    EXPECT_LT(rel_err(dx, ref_dx), 1e-5) << cap;
    // The cap bites: many inputs lie well beyond it, and the output never exceeds it.
    for (float v : y) EXPECT_LE(std::abs(v), cap);
  }
  // Masked scores: -inf caps to -cap (so the mask goes after the cap) and NaN stays NaN.
  const float special[2] = {-INFINITY, NAN};
  float out[2];
  cpu::softcap_forward(out, special, 2, 5.0f);
  EXPECT_FLOAT_EQ(out[0], -5.0f);
  EXPECT_TRUE(std::isnan(out[1]));
}

}  // namespace
}  // namespace causeway
