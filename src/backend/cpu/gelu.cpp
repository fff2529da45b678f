// GELU activations, vectorized through tanh_approx (libm's tanhf does not vectorize).
#include <cmath>

#include "backend/cpu/vec_math.h"
#include "backend/ops.h"

namespace causeway::cpu {

CAUSEWAY_SIMD_CLONES
void gelu_forward(float* out, const float* inp, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    out[i] = 0.5f * x * (1.0f + tanh_approx(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
  }
}

void gelu_erf_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = 0.5f * inp[i] * (1.0f + std::erf(inp[i] * 0.70710678f));
}

CAUSEWAY_SIMD_CLONES
void gelu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float th = tanh_approx(kSqrt2OverPi * (x + 0.044715f * x * x * x));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
    d_inp[i] = d_out[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
  }
}

void gelu_erf_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) {
  constexpr float kInvSqrt2Pi = 0.3989422804014327f;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float cdf = 0.5f * (1.0f + std::erf(x * 0.70710678f));
    d_inp[i] = d_out[i] * (cdf + x * kInvSqrt2Pi * std::exp(-0.5f * x * x));
  }
}

}  // namespace causeway::cpu
