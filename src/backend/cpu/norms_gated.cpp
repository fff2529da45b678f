// RMSNorm, SiLU / gated activations and the tanh soft-cap (declared in ops_norms_gated.h).
// Loops are OpenMP-parallel over rows or elements and use the vectorizable exp/tanh of
// vec_math.h, like the GPT-2 ops.
#include <cmath>

#include "backend/cpu/vec_math.h"
#include "backend/ops_norms_gated.h"

namespace causeway::cpu {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

inline float gelu_tanh(float x) {
  return 0.5f * x * (1.0f + tanh_approx(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
}

inline float gelu_tanh_grad(float x) {
  const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  const float t = tanh_approx(u);
  const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

inline float silu_grad(float x) {
  const float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

}  // namespace

CAUSEWAY_SIMD_CLONES
void rmsnorm_stats(float* scale, const float* inp, int64_t N, int C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int i = 0; i < C; ++i) ss += x[i] * x[i];
    scale[n] = std::sqrt(ss / C + eps);
  }
}

CAUSEWAY_SIMD_CLONES
void rmsnorm_apply(float* out, const float* inp, const float* scale, const float* weight,
                   int64_t N, int C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    float* y = out + n * C;
    // Divide (not multiply by 1/scale) as TL does, so hook_normalized matches to the ulp.
    const float s = scale[n];
    if (weight) {
#pragma omp simd
      for (int i = 0; i < C; ++i) y[i] = (x[i] / s) * weight[i];
    } else {
#pragma omp simd
      for (int i = 0; i < C; ++i) y[i] = x[i] / s;
    }
  }
}

CAUSEWAY_SIMD_CLONES
void rmsnorm_backward(float* d_inp, float* d_weight, const float* d_out, const float* inp,
                      const float* scale, const float* weight, int64_t N, int C) {
  // y = x * w / s with s = sqrt(mean(x^2) + eps), ds/dx_i = x_i / (C s), so with g = d_out * w:
  // dx = g / s - x * sum(g * x) / (C s^3).
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    const float* dy = d_out + n * C;
    float* dx = d_inp + n * C;
    const float s = scale[n];
    float sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_gx)
    for (int i = 0; i < C; ++i) sum_gx += dy[i] * (weight ? weight[i] : 1.0f) * x[i];
    const float inv_s = 1.0f / s;
    const float k = sum_gx * inv_s * inv_s * inv_s / C;
#pragma omp simd
    for (int i = 0; i < C; ++i) dx[i] += dy[i] * (weight ? weight[i] : 1.0f) * inv_s - x[i] * k;
  }
  if (!d_weight) return;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < C; ++i) {
    float dw = 0.0f;
    for (int64_t n = 0; n < N; ++n) dw += d_out[n * C + i] * inp[n * C + i] / scale[n];
    d_weight[i] += dw;
  }
}

CAUSEWAY_SIMD_CLONES
void silu_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] * sigmoid(inp[i]);
}

CAUSEWAY_SIMD_CLONES
void silu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) d_inp[i] = d_out[i] * silu_grad(inp[i]);
}

CAUSEWAY_SIMD_CLONES
void gated_forward(float* out, const float* gate, const float* up, int64_t n,
                   GatedActivation activation) {
  // One loop per activation, so each stays a branch-free vector loop.
  if (activation == GatedActivation::kSilu) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  } else {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = gelu_tanh(gate[i]) * up[i];
  }
}

CAUSEWAY_SIMD_CLONES
void gated_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                    const float* up, int64_t n, GatedActivation activation) {
  if (activation == GatedActivation::kSilu) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float g = gate[i], dy = d_out[i];
      const float s = sigmoid(g);
      d_gate[i] = dy * up[i] * s * (1.0f + g * (1.0f - s));
      d_up[i] = dy * g * s;
    }
  } else {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float g = gate[i], dy = d_out[i];
      d_gate[i] = dy * up[i] * gelu_tanh_grad(g);
      d_up[i] = dy * gelu_tanh(g);
    }
  }
}

CAUSEWAY_SIMD_CLONES
void softcap_forward(float* out, const float* inp, int64_t n, float cap) {
  // inp / cap as TL writes it (not inp * (1 / cap)), so capped scores match to the ulp.
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = cap * tanh_approx(inp[i] / cap);
}

CAUSEWAY_SIMD_CLONES
void softcap_backward(float* d_inp, const float* d_out, const float* inp, int64_t n, float cap) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float t = tanh_approx(inp[i] / cap);
    d_inp[i] = d_out[i] * (1.0f - t * t);
  }
}

}  // namespace causeway::cpu
