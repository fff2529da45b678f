// Each CPU op against a plain double-precision reference written here, on random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/vec_math.h"
#include "backend/ops.h"
#include "random_values.h"

namespace causeway {
namespace {

using fixtures::random_vector;

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST(CpuOps, ExpApproxMatchesLibmToAFewUlp) {
  double worst = 0.0;
  for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
    const double ref = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(cpu::exp_approx(x) - ref) / ref);
  }
  EXPECT_LT(worst, 5e-7);
  EXPECT_EQ(cpu::exp_approx(-std::numeric_limits<float>::infinity()) < 1e-37f, true);
}

TEST(CpuOps, TanhApproxAbsoluteError) {
  double worst = 0.0;
  for (float x = -20.0f; x < 20.0f; x += 0.001f)
    worst = std::max(worst, std::abs(cpu::tanh_approx(x) - std::tanh(static_cast<double>(x))));
  EXPECT_LT(worst, 3e-7);
  EXPECT_FLOAT_EQ(cpu::tanh_approx(50.0f), 1.0f);
  EXPECT_FLOAT_EQ(cpu::tanh_approx(-50.0f), -1.0f);
  // NaN stays NaN (a clamp to 88 used to turn it into e^88, hiding it from the NaN checks).
  EXPECT_TRUE(std::isnan(cpu::exp_approx(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(cpu::tanh_approx(std::numeric_limits<float>::quiet_NaN())));
}

TEST(CpuOps, GeluNewMatchesFormula) {
  auto x = random_vector(5000, 1, 3.0f);
  std::vector<float> y(x.size());
  cpu::gelu_forward(y.data(), x.data(), static_cast<int64_t>(x.size()));
  std::vector<double> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    ref[i] = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
  }
  EXPECT_LT(max_abs_diff(y, ref), 2e-6);
}

TEST(CpuOps, LayerNormMatchesTwoPassReference) {
  const int N = 7, C = 96;
  auto x = random_vector(N * C, 2, 2.0f);
  for (int i = 0; i < C; ++i) x[3 * C + i] += 100.0f;  // a row with a large mean
  auto w = random_vector(C, 3), b = random_vector(C, 4);
  std::vector<float> y(N * C), mean(N), rstd(N);
  cpu::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C,
                         1e-5f);
  std::vector<double> ref(N * C);
  for (int n = 0; n < N; ++n) {
    double m = 0, v = 0;
    for (int i = 0; i < C; ++i) m += x[n * C + i];
    m /= C;
    for (int i = 0; i < C; ++i) v += (x[n * C + i] - m) * (x[n * C + i] - m);
    const double r = 1.0 / std::sqrt(v / C + 1e-5);
    EXPECT_NEAR(rstd[n], r, 1e-5 * r);
    for (int i = 0; i < C; ++i) ref[n * C + i] = (x[n * C + i] - m) * r * w[i] + b[i];
  }
  EXPECT_LT(max_abs_diff(y, ref), 5e-5);
}

TEST(CpuOps, MatmulWithBiasAndTransposed) {
  const int N = 5, IC = 33, OC = 17;
  auto x = random_vector(N * IC, 5), W = random_vector(IC * OC, 6), bias = random_vector(OC, 7);
  std::vector<float> y(N * OC), yt(N * OC);
  cpu::matmul_forward(y.data(), x.data(), W.data(), bias.data(), N, IC, OC);
  std::vector<float> Wt(OC * IC);
  for (int i = 0; i < IC; ++i)
    for (int o = 0; o < OC; ++o) Wt[o * IC + i] = W[i * OC + o];
  cpu::matmul_transposed_forward(yt.data(), x.data(), Wt.data(), N, IC, OC);
  std::vector<double> ref(N * OC), ref_nb(N * OC);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < OC; ++o) {
      double s = 0;
      for (int i = 0; i < IC; ++i) s += static_cast<double>(x[n * IC + i]) * W[i * OC + o];
      ref[n * OC + o] = s + bias[o];
      ref_nb[n * OC + o] = s;
    }
  EXPECT_LT(max_abs_diff(y, ref), 1e-4);
  EXPECT_LT(max_abs_diff(yt, ref_nb), 1e-4);
}

TEST(CpuOps, CausalAttentionMatchesNaive) {
  const int B = 2, T = 9, NH = 3, HS = 8, C = NH * HS;
  auto q = random_vector(B * T * C, 8), k = random_vector(B * T * C, 9),
       v = random_vector(B * T * C, 10);
  std::vector<float> scores(B * NH * T * T), pattern(scores.size()), z(B * T * C);
  cpu::attention_scores_forward(scores.data(), q.data(), k.data(), B, T, NH, HS);
  cpu::attention_softmax_forward(pattern.data(), scores.data(), B, NH, T);
  cpu::attention_values_forward(z.data(), pattern.data(), v.data(), B, T, NH, HS);
  std::vector<double> zref(B * T * C, 0.0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0;
        for (int u = 0; u <= t; ++u) {
          double d = 0;
          for (int i = 0; i < HS; ++i)
            d += static_cast<double>(q[(b * T + t) * C + h * HS + i]) * k[(b * T + u) * C + h * HS + i];
          s[u] = d / std::sqrt(static_cast<double>(HS));
          mx = std::max(mx, s[u]);
        }
        for (int u = 0; u <= t; ++u) sum += std::exp(s[u] - mx);
        const float* prow = &pattern[((b * NH + h) * T + t) * T];
        const float* srow = &scores[((b * NH + h) * T + t) * T];
        for (int u = 0; u < T; ++u) {
          if (u <= t) {
            EXPECT_NEAR(prow[u], std::exp(s[u] - mx) / sum, 1e-6);
            EXPECT_NEAR(srow[u], s[u], 1e-5);
            for (int i = 0; i < HS; ++i)
              zref[(b * T + t) * C + h * HS + i] +=
                  std::exp(s[u] - mx) / sum * v[(b * T + u) * C + h * HS + i];
          } else {
            EXPECT_EQ(prow[u], 0.0f);
            EXPECT_EQ(srow[u], -std::numeric_limits<float>::infinity());
          }
        }
      }
  EXPECT_LT(max_abs_diff(z, zref), 1e-5);
}

TEST(CpuOps, AttentionOnLaterQueryRowsEqualsThoseRowsOfTheFullComputation) {
  const int B = 2, T = 7, NH = 2, HS = 4, C = NH * HS, q_begin = 3, Tq = T - q_begin;
  auto q = random_vector(B * T * C, 11), k = random_vector(B * T * C, 12),
       v = random_vector(B * T * C, 13);
  std::vector<float> s_full(B * NH * T * T), p_full(s_full.size()), z_full(B * T * C);
  cpu::attention_scores_forward(s_full.data(), q.data(), k.data(), B, T, NH, HS, 0);
  cpu::attention_softmax_forward(p_full.data(), s_full.data(), B, NH, T, 0);
  cpu::attention_values_forward(z_full.data(), p_full.data(), v.data(), B, T, NH, HS, 0);

  std::vector<float> q_late(B * Tq * C);
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < Tq * C; ++i) q_late[b * Tq * C + i] = q[(b * T + q_begin) * C + i];
  std::vector<float> s(B * NH * Tq * T), p(s.size()), z(B * Tq * C);
  cpu::attention_scores_forward(s.data(), q_late.data(), k.data(), B, T, NH, HS, q_begin);
  cpu::attention_softmax_forward(p.data(), s.data(), B, NH, T, q_begin);
  cpu::attention_values_forward(z.data(), p.data(), v.data(), B, T, NH, HS, q_begin);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < Tq; ++i)
        for (int u = 0; u < T; ++u) {
          const size_t full = ((b * NH + h) * T + q_begin + i) * T + u;
          const size_t late = ((b * NH + h) * Tq + i) * T + u;
          EXPECT_EQ(s[late], s_full[full]);
          EXPECT_EQ(p[late], p_full[full]);
        }
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < Tq * C; ++i) EXPECT_EQ(z[b * Tq * C + i], z_full[(b * T + q_begin) * C + i]);
}

TEST(CpuOps, PerHeadResultSumsToOutputProjection) {
  const int N = 4, NH = 3, HS = 5, C = 7;
  auto z = random_vector(N * NH * HS, 14), W = random_vector(NH * HS * C, 15),
       bias = random_vector(C, 16);
  std::vector<float> result(N * NH * C), summed(N * C), direct(N * C);
  cpu::attention_result_forward(result.data(), z.data(), W.data(), N, NH, HS, C);
  cpu::sum_heads_forward(summed.data(), result.data(), bias.data(), N, NH, C);
  cpu::matmul_forward(direct.data(), z.data(), W.data(), bias.data(), N, NH * HS, C);
  for (int i = 0; i < N * C; ++i) EXPECT_NEAR(summed[i], direct[i], 1e-5);
}

TEST(CpuOps, EmbeddingGathersRows) {
  const int V = 5, C = 3;
  std::vector<float> table(V * C);
  for (int i = 0; i < V * C; ++i) table[i] = static_cast<float>(i);
  std::vector<int32_t> ids = {4, 0, 2};
  std::vector<float> out(ids.size() * C);
  cpu::embedding_forward(out.data(), ids.data(), table.data(), 3, C);
  EXPECT_EQ(out, (std::vector<float>{12, 13, 14, 0, 1, 2, 6, 7, 8}));
  std::vector<float> pos(2 * 2 * C);
  cpu::position_embedding_forward(pos.data(), table.data(), 2, 2, C);
  EXPECT_EQ(pos, (std::vector<float>{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5}));
}

}  // namespace
}  // namespace causeway
