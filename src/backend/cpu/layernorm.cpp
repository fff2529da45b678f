// LayerNorm in two passes over each row (mean, then centred variance) in double-free fp32:
// the two-pass form matches PyTorch to ~1e-7 where the one-pass E[x^2]-E[x]^2 form does not.
#include <cmath>

#include "backend/cpu/vec_math.h"
#include "backend/ops.h"

namespace causeway::cpu {

CAUSEWAY_SIMD_CLONES
void layernorm_stats(float* mean, float* rstd, const float* inp, int64_t N, int C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < C; ++i) s += x[i];
    const float m = s / C;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int i = 0; i < C; ++i) v += (x[i] - m) * (x[i] - m);
    mean[n] = m;
    rstd[n] = 1.0f / std::sqrt(v / C + eps);
  }
}

CAUSEWAY_SIMD_CLONES
void layernorm_apply(float* out, const float* inp, const float* mean, const float* rstd,
                     const float* weight, const float* bias, int64_t N, int C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    float* y = out + n * C;
    const float m = mean[n], r = rstd[n];
#pragma omp simd
    for (int i = 0; i < C; ++i) y[i] = (x[i] - m) * r * weight[i] + bias[i];
  }
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int64_t N, int C, float eps) {
  layernorm_stats(mean, rstd, inp, N, C, eps);
  layernorm_apply(out, inp, mean, rstd, weight, bias, N, C);
}

CAUSEWAY_SIMD_CLONES
void layernorm_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                        const float* inp, const float* mean, const float* rstd,
                        const float* weight, int64_t N, int C) {
  // d_inp = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = d_out * weight.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    const float* dy = d_out + n * C;
    float* dx = d_inp + n * C;
    const float mu = mean[n], rs = rstd[n];
    float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (int i = 0; i < C; ++i) {
      const float g = dy[i] * weight[i];
      sum_g += g;
      sum_gx += g * (x[i] - mu) * rs;
    }
    sum_g /= C;
    sum_gx /= C;
#pragma omp simd
    for (int i = 0; i < C; ++i) {
      const float xhat = (x[i] - mu) * rs;
      dx[i] += rs * (dy[i] * weight[i] - sum_g - xhat * sum_gx);
    }
  }
  if (!d_weight) return;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < C; ++i) {
    float dw = 0.0f, db = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const float dy = d_out[n * C + i];
      dw += dy * (inp[n * C + i] - mean[n]) * rstd[n];
      db += dy;
    }
    d_weight[i] += dw;
    d_bias[i] += db;
  }
}

}  // namespace causeway::cpu
