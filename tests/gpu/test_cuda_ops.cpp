// Every op of the CUDA backend against the CPU backend on the same random inputs, forward and
// backward, fp32 / bf16 / f16 weights in both layouts: the NMSE of each output must be below
// kNmse. Outputs that accumulate (+=) start from the same random values on both sides. Without
// a GPU every GPU test skips ("no GPU: <reason>") and main exits kSkipExitCode, which ctest's
// SKIP_RETURN_CODE reports as skipped, never as passed (a failure still exits non-zero).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/device_memory.h"
#include "backend/ops_linear.h"
#include "backend/ops_rotary.h"
#include "cli/device_choice.h"

namespace causeway {
namespace {

constexpr int kSkipExitCode = 77;
// Summation order (cuBLAS vs OpenBLAS, warp vs SIMD reductions) and libm vs the CPU's vector
// exp/tanh differ by a few ulp: an NMSE near 1e-13; an indexing or layout bug gives ~1.
constexpr double kNmse = 1e-9;

using Floats = std::vector<float>;

// sum (want - got)^2 / sum want^2 over finite entries; infinities must match exactly.
void expect_close(const std::string& what, const Floats& want, const Floats& got) {
  ASSERT_EQ(want.size(), got.size()) << what;
  double err = 0.0, ref = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      ASSERT_EQ(want[i], got[i]) << what << " [" << i << "]";
      continue;
    }
    ASSERT_FALSE(std::isnan(got[i])) << what << " [" << i << "]";
    err += (static_cast<double>(want[i]) - got[i]) * (static_cast<double>(want[i]) - got[i]);
    ref += static_cast<double>(want[i]) * want[i];
  }
  const double nmse = ref > 0.0 ? err / ref : err;
  EXPECT_LT(nmse, kNmse) << what;
}

// A weight held twice: fp32 values narrowed to `dtype`, on the host and on the device.
struct TwinWeight {
  WeightMatrix host, device;
};

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_device_available(&why)) GTEST_SKIP() << "no GPU: " << why;
    gpu_ = make_cuda_backend(0);
    arena_ = cuda::DeviceArena(size_t{768} << 20);
  }

  Floats random(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> normal(0.0f, scale);
    Floats v(n);
    for (float& x : v) x = normal(rng_);
    return v;
  }
  template <typename T>
  T* up(const std::vector<T>& host) {
    T* d = arena_.allocate_array<T>(host.size(), "test input");
    cuda::copy_to_device(d, host.data(), sizeof(T) * host.size(), "test upload");
    return d;
  }
  Floats down(const float* device, size_t n) {
    Floats host(n);
    cuda::copy_to_host(host.data(), device, sizeof(float) * n, "test download");
    return host;
  }

  TwinWeight weight(int64_t in, int64_t out, bool out_major, DType dtype) {
    const Floats values = random(static_cast<size_t>(in * out), 0.2f);
    TwinWeight w;
    w.host = {nullptr, dtype, in, out, out_major};
    w.device = w.host;
    if (dtype == DType::F32) {
      host_f32_.push_back(values);
      w.host.data = host_f32_.back().data();
      w.device.data = up(values);
      return w;
    }
    std::vector<uint16_t> words(values.size());
    for (size_t i = 0; i < values.size(); ++i)
      words[i] = dtype == DType::BF16 ? cpu::f32_to_bf16(values[i]) : cpu::f32_to_f16(values[i]);
    host_words_.push_back(words);
    w.host.data = host_words_.back().data();
    w.device.data = up(words);
    return w;
  }

  std::unique_ptr<Backend> cpu_ = make_cpu_backend();
  std::unique_ptr<Backend> gpu_;
  cuda::DeviceArena arena_;
  std::mt19937 rng_{20261207};
  // Host copies of weights behind the WeightMatrix views: a deque never moves its elements.
  std::deque<Floats> host_f32_;
  std::deque<std::vector<uint16_t>> host_words_;
};

constexpr int B = 2, T = 7, NH = 4, NKV = 2, HS = 16, C = NH * HS, N = B * T, OC = 48, V = 50;

TEST_F(CudaOps, Elementwise) {
  const int64_t n = 1000;
  const Floats a = random(n, 2.0f), b = random(n), d = random(n);
  const float* da = up(a);
  const float* db = up(b);
  const float* dd = up(d);
  Floats h(n), h2(n);
  float* g = arena_.allocate_array<float>(n, "out");
  float* g2 = arena_.allocate_array<float>(n, "out2");

  cpu_->add_forward(h.data(), a.data(), b.data(), n);
  gpu_->add_forward(g, da, db, n);
  expect_close("add_forward", h, down(g, n));
  cpu_->gelu_forward(h.data(), a.data(), n);
  gpu_->gelu_forward(g, da, n);
  expect_close("gelu_forward", h, down(g, n));
  cpu_->gelu_erf_forward(h.data(), a.data(), n);
  gpu_->gelu_erf_forward(g, da, n);
  expect_close("gelu_erf_forward", h, down(g, n));
  cpu_->gelu_backward(h.data(), d.data(), a.data(), n);
  gpu_->gelu_backward(g, dd, da, n);
  expect_close("gelu_backward", h, down(g, n));
  cpu_->gelu_erf_backward(h.data(), d.data(), a.data(), n);
  gpu_->gelu_erf_backward(g, dd, da, n);
  expect_close("gelu_erf_backward", h, down(g, n));
  cpu_->silu_forward(h.data(), a.data(), n);
  gpu_->silu_forward(g, da, n);
  expect_close("silu_forward", h, down(g, n));
  cpu_->silu_backward(h.data(), d.data(), a.data(), n);
  gpu_->silu_backward(g, dd, da, n);
  expect_close("silu_backward", h, down(g, n));
  for (auto act : {cpu::GatedActivation::kSilu, cpu::GatedActivation::kGeluTanh}) {
    const std::string tag = act == cpu::GatedActivation::kSilu ? " silu" : " gelu_tanh";
    cpu_->gated_forward(h.data(), a.data(), b.data(), n, act);
    gpu_->gated_forward(g, da, db, n, act);
    expect_close("gated_forward" + tag, h, down(g, n));
    cpu_->gated_backward(h.data(), h2.data(), d.data(), a.data(), b.data(), n, act);
    gpu_->gated_backward(g, g2, dd, da, db, n, act);
    expect_close("gated_backward d_gate" + tag, h, down(g, n));
    expect_close("gated_backward d_up" + tag, h2, down(g2, n));
  }
  cpu_->softcap_forward(h.data(), a.data(), n, 1.5f);
  gpu_->softcap_forward(g, da, n, 1.5f);
  expect_close("softcap_forward", h, down(g, n));
  cpu_->softcap_backward(h.data(), d.data(), a.data(), n, 1.5f);
  gpu_->softcap_backward(g, dd, da, n, 1.5f);
  expect_close("softcap_backward", h, down(g, n));
}

TEST_F(CudaOps, Embeddings) {
  const std::vector<int32_t> ids = {3, 7, 3, 0, 49, 12, 3, 8, 8, 1, 0, 2, 5, 49};  // repeats
  ASSERT_EQ(ids.size(), static_cast<size_t>(N));
  const Floats table = random(V * C), pos = random(T * C), d_out = random(N * C);
  const int32_t* d_ids = up(ids);
  Floats h(N * C);
  float* g = arena_.allocate_array<float>(N * C, "out");
  cpu_->embedding_forward(h.data(), ids.data(), table.data(), N, C);
  gpu_->embedding_forward(g, d_ids, up(table), N, C);
  expect_close("embedding_forward", h, down(g, N * C));
  cpu_->position_embedding_forward(h.data(), pos.data(), B, T, C);
  gpu_->position_embedding_forward(g, up(pos), B, T, C);
  expect_close("position_embedding_forward", h, down(g, N * C));

  Floats h_table = random(V * C), h_pos = random(T * C);  // accumulated into
  float* g_table = up(h_table);
  float* g_pos = up(h_pos);
  const float* g_dout = up(d_out);
  cpu_->embedding_backward(h_table.data(), d_out.data(), ids.data(), N, C);
  gpu_->embedding_backward(g_table, g_dout, d_ids, N, C);
  expect_close("embedding_backward", h_table, down(g_table, V * C));
  cpu_->position_embedding_backward(h_pos.data(), d_out.data(), B, T, C);
  gpu_->position_embedding_backward(g_pos, g_dout, B, T, C);
  expect_close("position_embedding_backward", h_pos, down(g_pos, T * C));
}

TEST_F(CudaOps, LayerNormAndRmsNorm) {
  const Floats x = random(N * C, 3.0f), w = random(C), bias = random(C), d_out = random(N * C);
  const float *gx = up(x), *gw = up(w), *gb = up(bias), *gd = up(d_out);
  Floats mean(N), rstd(N), out(N * C);
  float* g_mean = arena_.allocate_array<float>(N, "mean");
  float* g_rstd = arena_.allocate_array<float>(N, "rstd");
  float* g_out = arena_.allocate_array<float>(N * C, "out");
  cpu_->layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), bias.data(), N,
                          C, 1e-5f);
  gpu_->layernorm_forward(g_out, g_mean, g_rstd, gx, gw, gb, N, C, 1e-5f);
  expect_close("layernorm_forward mean", mean, down(g_mean, N));
  expect_close("layernorm_forward rstd", rstd, down(g_rstd, N));
  expect_close("layernorm_forward out", out, down(g_out, N * C));
  cpu_->layernorm_stats(mean.data(), rstd.data(), x.data(), N, C, 1e-3f);
  gpu_->layernorm_stats(g_mean, g_rstd, gx, N, C, 1e-3f);
  expect_close("layernorm_stats", rstd, down(g_rstd, N));
  cpu_->layernorm_apply(out.data(), x.data(), mean.data(), rstd.data(), w.data(), bias.data(), N, C);
  gpu_->layernorm_apply(g_out, gx, g_mean, g_rstd, gw, gb, N, C);
  expect_close("layernorm_apply", out, down(g_out, N * C));

  Floats dx = random(N * C), dw = random(C), db = random(C);  // all accumulated into
  float *g_dx = up(dx), *g_dw = up(dw), *g_db = up(db);
  cpu_->layernorm_backward(dx.data(), dw.data(), db.data(), d_out.data(), x.data(), mean.data(),
                           rstd.data(), w.data(), N, C);
  gpu_->layernorm_backward(g_dx, g_dw, g_db, gd, gx, g_mean, g_rstd, gw, N, C);
  expect_close("layernorm_backward d_inp", dx, down(g_dx, N * C));
  expect_close("layernorm_backward d_weight", dw, down(g_dw, C));
  expect_close("layernorm_backward d_bias", db, down(g_db, C));

  Floats scale(N);
  float* g_scale = arena_.allocate_array<float>(N, "scale");
  cpu_->rmsnorm_stats(scale.data(), x.data(), N, C, 1e-6f);
  gpu_->rmsnorm_stats(g_scale, gx, N, C, 1e-6f);
  expect_close("rmsnorm_stats", scale, down(g_scale, N));
  for (const bool with_weight : {true, false}) {
    const std::string tag = with_weight ? " (weight)" : " (no weight)";
    cpu_->rmsnorm_apply(out.data(), x.data(), scale.data(), with_weight ? w.data() : nullptr, N, C);
    gpu_->rmsnorm_apply(g_out, gx, g_scale, with_weight ? gw : nullptr, N, C);
    expect_close("rmsnorm_apply" + tag, out, down(g_out, N * C));
    Floats rdx = random(N * C), rdw = random(C);
    float *g_rdx = up(rdx), *g_rdw = up(rdw);
    cpu_->rmsnorm_backward(rdx.data(), rdw.data(), d_out.data(), x.data(), scale.data(),
                           with_weight ? w.data() : nullptr, N, C);
    gpu_->rmsnorm_backward(g_rdx, g_rdw, gd, gx, g_scale, with_weight ? gw : nullptr, N, C);
    expect_close("rmsnorm_backward d_inp" + tag, rdx, down(g_rdx, N * C));
    expect_close("rmsnorm_backward d_weight" + tag, rdw, down(g_rdw, C));
  }
}

TEST_F(CudaOps, Matmul) {
  const Floats x = random(N * C), w = random(C * OC), wt = random(OC * C), bias = random(OC);
  const Floats d_out = random(N * OC);
  const float *gx = up(x), *gw = up(w), *gwt = up(wt), *gbias = up(bias), *gd = up(d_out);
  Floats out(N * OC);
  float* g_out = arena_.allocate_array<float>(N * OC, "out");
  for (const bool with_bias : {true, false}) {
    cpu_->matmul_forward(out.data(), x.data(), w.data(), with_bias ? bias.data() : nullptr, N, C, OC);
    gpu_->matmul_forward(g_out, gx, gw, with_bias ? gbias : nullptr, N, C, OC);
    expect_close(with_bias ? "matmul_forward (bias)" : "matmul_forward", out, down(g_out, N * OC));
  }
  cpu_->matmul_transposed_forward(out.data(), x.data(), wt.data(), N, C, OC);
  gpu_->matmul_transposed_forward(g_out, gx, gwt, N, C, OC);
  expect_close("matmul_transposed_forward", out, down(g_out, N * OC));

  Floats dx(N * C), dw = random(C * OC), db = random(OC), dwt = random(OC * C);
  float* g_dx = arena_.allocate_array<float>(N * C, "d_inp");
  float *g_dw = up(dw), *g_db = up(db), *g_dwt = up(dwt);
  cpu_->matmul_backward(dx.data(), dw.data(), db.data(), d_out.data(), x.data(), w.data(), N, C, OC);
  gpu_->matmul_backward(g_dx, g_dw, g_db, gd, gx, gw, N, C, OC);
  expect_close("matmul_backward d_inp", dx, down(g_dx, N * C));
  expect_close("matmul_backward d_weight", dw, down(g_dw, C * OC));
  expect_close("matmul_backward d_bias", db, down(g_db, OC));
  cpu_->matmul_transposed_backward(dx.data(), dwt.data(), d_out.data(), x.data(), wt.data(), N, C,
                                   OC);
  gpu_->matmul_transposed_backward(g_dx, g_dwt, gd, gx, gwt, N, C, OC);
  expect_close("matmul_transposed_backward d_inp", dx, down(g_dx, N * C));
  expect_close("matmul_transposed_backward d_weight", dwt, down(g_dwt, OC * C));
}

TEST_F(CudaOps, AttentionGpt2) {
  for (const int q_begin : {0, 3}) {
    const int Tq = T - q_begin;
    const std::string tag = " q_begin " + std::to_string(q_begin);
    const Floats q = random(B * Tq * C), k = random(N * C), v = random(N * C);
    const float *gq = up(q), *gk = up(k), *gv = up(v);
    const size_t ns = static_cast<size_t>(B) * NH * Tq * T;
    Floats scores(ns), pattern(ns), z(B * Tq * C);
    float* g_scores = arena_.allocate_array<float>(ns, "scores");
    float* g_pattern = arena_.allocate_array<float>(ns, "pattern");
    float* g_z = arena_.allocate_array<float>(B * Tq * C, "z");
    cpu_->attention_scores_forward(scores.data(), q.data(), k.data(), B, T, NH, HS, q_begin);
    gpu_->attention_scores_forward(g_scores, gq, gk, B, T, NH, HS, q_begin);
    expect_close("attention_scores_forward" + tag, scores, down(g_scores, ns));
    // A hook's fully masked row must give zeros on both.
    for (int s = 0; s < T; ++s) scores[s] = -INFINITY;
    float* g_hooked = up(scores);
    cpu_->attention_softmax_forward(pattern.data(), scores.data(), B, NH, T, q_begin);
    gpu_->attention_softmax_forward(g_pattern, g_hooked, B, NH, T, q_begin);
    expect_close("attention_softmax_forward" + tag, pattern, down(g_pattern, ns));
    cpu_->attention_values_forward(z.data(), pattern.data(), v.data(), B, T, NH, HS, q_begin);
    gpu_->attention_values_forward(g_z, g_pattern, gv, B, T, NH, HS, q_begin);
    expect_close("attention_values_forward" + tag, z, down(g_z, B * Tq * C));
  }
  const Floats z = random(N * C), W_O = random(C * C), bias = random(C);
  const float *gz = up(z), *gwo = up(W_O), *gbias = up(bias);
  Floats result(static_cast<size_t>(N) * NH * C), out(N * C);
  float* g_result = arena_.allocate_array<float>(result.size(), "result");
  float* g_out = arena_.allocate_array<float>(N * C, "out");
  cpu_->attention_result_forward(result.data(), z.data(), W_O.data(), N, NH, HS, C);
  gpu_->attention_result_forward(g_result, gz, gwo, N, NH, HS, C);
  expect_close("attention_result_forward", result, down(g_result, result.size()));
  for (const bool with_bias : {true, false}) {
    cpu_->sum_heads_forward(out.data(), result.data(), with_bias ? bias.data() : nullptr, N, NH, C);
    gpu_->sum_heads_forward(g_out, g_result, with_bias ? gbias : nullptr, N, NH, C);
    expect_close(with_bias ? "sum_heads_forward (bias)" : "sum_heads_forward", out,
                 down(g_out, N * C));
  }

  // Backward over a real causal pattern.
  const Floats q = random(N * C), k = random(N * C), v = random(N * C), d_z = random(N * C);
  const float *gq = up(q), *gk = up(k), *gv = up(v), *gdz = up(d_z);
  const size_t ns = static_cast<size_t>(B) * NH * T * T;
  Floats scores(ns), pattern(ns), d_pattern(ns), d_scores(ns), d_q(N * C), d_k(N * C), d_v(N * C);
  cpu_->attention_scores_forward(scores.data(), q.data(), k.data(), B, T, NH, HS, 0);
  cpu_->attention_softmax_forward(pattern.data(), scores.data(), B, NH, T, 0);
  float* g_pattern = up(pattern);
  float* g_dpattern = arena_.allocate_array<float>(ns, "d_pattern");
  float* g_dscores = arena_.allocate_array<float>(ns, "d_scores");
  float* g_dq = arena_.allocate_array<float>(N * C, "d_q");
  float* g_dk = arena_.allocate_array<float>(N * C, "d_k");
  float* g_dv = arena_.allocate_array<float>(N * C, "d_v");
  cpu_->attention_values_backward(d_pattern.data(), d_v.data(), d_z.data(), pattern.data(),
                                  v.data(), B, T, NH, HS);
  gpu_->attention_values_backward(g_dpattern, g_dv, gdz, g_pattern, gv, B, T, NH, HS);
  expect_close("attention_values_backward d_pattern", d_pattern, down(g_dpattern, ns));
  expect_close("attention_values_backward d_v", d_v, down(g_dv, N * C));
  cpu_->attention_softmax_backward(d_scores.data(), d_pattern.data(), pattern.data(), B, NH, T);
  gpu_->attention_softmax_backward(g_dscores, g_dpattern, g_pattern, B, NH, T);
  expect_close("attention_softmax_backward", d_scores, down(g_dscores, ns));
  cpu_->attention_scores_backward(d_q.data(), d_k.data(), d_scores.data(), q.data(), k.data(), B,
                                  T, NH, HS);
  gpu_->attention_scores_backward(g_dq, g_dk, g_dscores, gq, gk, B, T, NH, HS);
  expect_close("attention_scores_backward d_q", d_q, down(g_dq, N * C));
  expect_close("attention_scores_backward d_k", d_k, down(g_dk, N * C));
}

struct GqaCase {
  float softcap;
  int window, q_begin;
};

class CudaGqa : public CudaOps, public ::testing::WithParamInterface<GqaCase> {};

TEST_P(CudaGqa, ForwardAndBackward) {
  const GqaCase c = GetParam();
  const int Tq = T - c.q_begin;
  const int Ckv = NKV * HS;
  const float scale = 0.3f;
  const Floats q = random(B * Tq * C), k = random(N * Ckv), v = random(N * Ckv);
  const float *gq = up(q), *gk = up(k), *gv = up(v);
  const size_t ns = static_cast<size_t>(B) * NH * Tq * T;
  Floats scores(ns), pattern(ns), z(B * Tq * C);
  float* g_scores = arena_.allocate_array<float>(ns, "scores");
  float* g_z = arena_.allocate_array<float>(B * Tq * C, "z");
  cpu_->attention_scores_gqa_forward(scores.data(), q.data(), k.data(), B, T, NH, NKV, HS, scale,
                                     c.softcap, c.window, c.q_begin);
  gpu_->attention_scores_gqa_forward(g_scores, gq, gk, B, T, NH, NKV, HS, scale, c.softcap,
                                     c.window, c.q_begin);
  expect_close("attention_scores_gqa_forward", scores, down(g_scores, ns));
  cpu_->attention_softmax_forward(pattern.data(), scores.data(), B, NH, T, c.q_begin);
  const float* g_pattern = up(pattern);
  cpu_->attention_values_gqa_forward(z.data(), pattern.data(), v.data(), B, T, NH, NKV, HS,
                                     c.q_begin);
  gpu_->attention_values_gqa_forward(g_z, g_pattern, gv, B, T, NH, NKV, HS, c.q_begin);
  expect_close("attention_values_gqa_forward", z, down(g_z, B * Tq * C));
  if (c.q_begin != 0) return;  // the backward runs over all queries

  const Floats d_z = random(N * C), d_scores = random(ns);  // d_scores nonzero where masked too
  const float *gdz = up(d_z), *gds = up(d_scores);
  Floats d_pattern(ns), d_v(N * Ckv), d_q(N * C), d_k(N * Ckv);
  float* g_dpattern = arena_.allocate_array<float>(ns, "d_pattern");
  float* g_dv = arena_.allocate_array<float>(N * Ckv, "d_v");
  float* g_dq = arena_.allocate_array<float>(N * C, "d_q");
  float* g_dk = arena_.allocate_array<float>(N * Ckv, "d_k");
  cpu_->attention_values_gqa_backward(d_pattern.data(), d_v.data(), d_z.data(), pattern.data(),
                                      v.data(), B, T, NH, NKV, HS);
  gpu_->attention_values_gqa_backward(g_dpattern, g_dv, gdz, g_pattern, gv, B, T, NH, NKV, HS);
  expect_close("attention_values_gqa_backward d_pattern", d_pattern, down(g_dpattern, ns));
  expect_close("attention_values_gqa_backward d_v", d_v, down(g_dv, N * Ckv));
  cpu_->attention_scores_gqa_backward(d_q.data(), d_k.data(), d_scores.data(), q.data(), k.data(),
                                      B, T, NH, NKV, HS, scale, c.softcap, c.window);
  gpu_->attention_scores_gqa_backward(g_dq, g_dk, gds, gq, gk, B, T, NH, NKV, HS, scale, c.softcap,
                                      c.window);
  expect_close("attention_scores_gqa_backward d_q", d_q, down(g_dq, N * C));
  expect_close("attention_scores_gqa_backward d_k", d_k, down(g_dk, N * Ckv));
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaGqa,
                         ::testing::Values(GqaCase{0.0f, 0, 0}, GqaCase{5.0f, 0, 0},
                                           GqaCase{0.0f, 3, 0}, GqaCase{5.0f, 3, 0},
                                           GqaCase{0.0f, 0, 4}, GqaCase{5.0f, 3, 2}));

struct LinearCase {
  DType dtype;
  bool out_major;
};

class CudaLinear : public CudaOps, public ::testing::WithParamInterface<LinearCase> {};

TEST_P(CudaLinear, EveryWeightMatrixOp) {
  const LinearCase c = GetParam();
  const TwinWeight W = weight(C, OC, c.out_major, c.dtype);
  const Floats x = random(N * C), bias = random(OC), d_out = random(N * OC);
  const float *gx = up(x), *gbias = up(bias), *gd = up(d_out);
  Floats out(N * OC);
  float* g_out = arena_.allocate_array<float>(N * OC, "out");
  for (const bool with_bias : {true, false}) {
    cpu_->linear_forward(out.data(), x.data(), W.host, with_bias ? bias.data() : nullptr, N);
    gpu_->linear_forward(g_out, gx, W.device, with_bias ? gbias : nullptr, N);
    expect_close(with_bias ? "linear_forward (bias)" : "linear_forward", out, down(g_out, N * OC));
  }
  Floats dx(N * C), db = random(OC);
  float* g_dx = arena_.allocate_array<float>(N * C, "d_inp");
  float* g_db = up(db);
  if (c.dtype == DType::F32) {
    Floats dw = random(C * OC);
    float* g_dw = up(dw);
    cpu_->linear_backward(dx.data(), dw.data(), db.data(), d_out.data(), x.data(), W.host, N);
    gpu_->linear_backward(g_dx, g_dw, g_db, gd, gx, W.device, N);
    expect_close("linear_backward d_weight", dw, down(g_dw, C * OC));
  } else {
    float* g_dw = arena_.allocate_array<float>(C * OC, "d_weight");
    EXPECT_THROW(gpu_->linear_backward(g_dx, g_dw, g_db, gd, gx, W.device, N),
                 std::invalid_argument);
    cpu_->linear_backward(dx.data(), nullptr, db.data(), d_out.data(), x.data(), W.host, N);
    gpu_->linear_backward(g_dx, nullptr, g_db, gd, gx, W.device, N);
  }
  expect_close("linear_backward d_inp", dx, down(g_dx, N * C));
  expect_close("linear_backward d_bias", db, down(g_db, OC));

  // W_O (in NH * HS, out OC) per head.
  const Floats z = random(N * C);
  const float* gz = up(z);
  Floats result(static_cast<size_t>(N) * NH * OC);
  float* g_result = arena_.allocate_array<float>(result.size(), "result");
  cpu_->attention_result_forward(result.data(), z.data(), W.host, N, NH, HS);
  gpu_->attention_result_forward(g_result, gz, W.device, N, NH, HS);
  expect_close("attention_result_forward (WeightMatrix)", result, down(g_result, result.size()));

  // Per-head inputs: H heads over OC outputs (OC / H each), input (N, H, C).
  constexpr int H = 4;
  const Floats hx = random(static_cast<size_t>(N) * H * C), hd = random(N * OC);
  const float *g_hx = up(hx), *g_hd = up(hd);
  for (const bool with_bias : {true, false}) {
    cpu_->linear_heads_forward(out.data(), hx.data(), W.host, with_bias ? bias.data() : nullptr, N,
                               H);
    gpu_->linear_heads_forward(g_out, g_hx, W.device, with_bias ? gbias : nullptr, N, H);
    expect_close("linear_heads_forward", out, down(g_out, N * OC));
  }
  Floats hdx(static_cast<size_t>(N) * H * C);
  float* g_hdx = arena_.allocate_array<float>(hdx.size(), "heads d_inp");
  cpu_->linear_heads_backward(hdx.data(), hd.data(), W.host, N, H);
  gpu_->linear_heads_backward(g_hdx, g_hd, W.device, N, H);
  expect_close("linear_heads_backward", hdx, down(g_hdx, hdx.size()));

  // The same matrix as a token table: OC = 48 tokens of C features.
  const std::vector<int32_t> ids = {0, 47, 5, 5, 12, 30, 1, 2, 3, 4, 47, 46, 0, 9};
  const int32_t* g_ids = up(ids);
  Floats rows(N * C);
  float* g_rows = arena_.allocate_array<float>(N * C, "rows");
  cpu_->embedding_forward(rows.data(), ids.data(), W.host, N, 1.5f);
  gpu_->embedding_forward(g_rows, g_ids, W.device, N, 1.5f);
  expect_close("embedding_forward (WeightMatrix)", rows, down(g_rows, N * C));
  const int n_tokens = 5;
  Floats logits(N * n_tokens);
  float* g_logits = arena_.allocate_array<float>(N * n_tokens, "logits");
  cpu_->unembed_rows(logits.data(), x.data(), W.host, ids.data(), n_tokens, N);
  gpu_->unembed_rows(g_logits, gx, W.device, g_ids, n_tokens, N);
  expect_close("unembed_rows", logits, down(g_logits, N * n_tokens));

  const int32_t* g_bad = up(std::vector<int32_t>{1, 2, OC, 3});
  try {
    gpu_->embedding_forward(g_rows, g_bad, W.device, 4, 1.0f);
    ADD_FAILURE() << "an id outside the vocabulary was accepted";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("ids[2] = 48"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, CudaLinear,
                         ::testing::Values(LinearCase{DType::F32, true}, LinearCase{DType::F32, false},
                                           LinearCase{DType::BF16, true},
                                           LinearCase{DType::BF16, false},
                                           LinearCase{DType::F16, true}, LinearCase{DType::F16, false}));

// A bf16 weight of 4096 x 4100 (> 2^24 elements) is widened in several tiles in either layout.
TEST_F(CudaOps, LinearManyTiles) {
  constexpr int64_t in = 4096, out = 4100, rows = 3;
  const Floats x = random(rows * in);
  const float* gx = up(x);
  for (const bool out_major : {true, false}) {
    const TwinWeight W = weight(in, out, out_major, DType::BF16);
    Floats y(rows * out);
    float* g_y = arena_.allocate_array<float>(rows * out, "out");
    cpu_->linear_forward(y.data(), x.data(), W.host, nullptr, rows);
    gpu_->linear_forward(g_y, gx, W.device, nullptr, rows);
    expect_close(out_major ? "linear_forward many tiles (out, in)"
                           : "linear_forward many tiles (in, out)",
                 y, down(g_y, rows * out));
  }
}

TEST_F(CudaOps, Rotary) {
  constexpr int rotary_dim = 12;  // < HS: dims 12..15 pass through
  Floats inv_freq(rotary_dim / 2);
  cpu::rotary_inv_freq(inv_freq.data(), rotary_dim, 10000.0);
  const std::vector<int32_t> positions = {0, 1, 2, 3, 4, 5, 6, 100, 101, 102, 103, 104, 5000, 70000};
  const Floats x = random(N * C);
  const float *gx = up(x), *gf = up(inv_freq);
  const int32_t* gp = up(positions);
  Floats y(N * C);
  float* g_y = arena_.allocate_array<float>(N * C, "out");
  cpu_->rotary_forward(y.data(), x.data(), positions.data(), N, NH, HS, rotary_dim, inv_freq.data());
  gpu_->rotary_forward(g_y, gx, gp, N, NH, HS, rotary_dim, gf);
  expect_close("rotary_forward", y, down(g_y, N * C));
  Floats in_place = x;
  float* g_in_place = up(x);
  cpu_->rotary_backward(in_place.data(), in_place.data(), positions.data(), N, NH, HS, rotary_dim,
                        inv_freq.data());
  gpu_->rotary_backward(g_in_place, g_in_place, gp, N, NH, HS, rotary_dim, gf);
  expect_close("rotary_backward (in place)", in_place, down(g_in_place, N * C));
}

// Runs without a GPU too: `--device cuda` must name why the CPU is used.
TEST(DeviceFallback, CudaSaysWhyTheCpuIsUsed) {
  EXPECT_EQ(device_fallback_note("cpu"), "");
  std::string why;
  if (cuda_device_available(&why))
    EXPECT_EQ(device_fallback_note("cuda"),
              "--device cuda: the model does not run on the CUDA backend yet; using the CPU");
  else
    EXPECT_EQ(device_fallback_note("cuda"), "--device cuda: no GPU (" + why + "); using the CPU");
}

}  // namespace
}  // namespace causeway

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string why;
  const bool gpu = causeway::cuda_device_available(&why);
  const int rc = RUN_ALL_TESTS();  // without a GPU the GPU tests skip, so listing still works
  if (rc != 0 || gpu || ::testing::UnitTest::GetInstance()->skipped_test_count() == 0) return rc;
  std::printf("no GPU: %s (GPU tests skipped)\n", why.c_str());
  return causeway::kSkipExitCode;
}
