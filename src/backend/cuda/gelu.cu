// GELU activations (tanh approximation and exact erf), elementwise.
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

__global__ void gelu_kernel(float* out, const float* inp, int64_t n) {
  CAUSEWAY_GRID_STRIDE(i, n) {
    const float x = inp[i];
    out[i] = 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
  }
}

__global__ void gelu_erf_kernel(float* out, const float* inp, int64_t n) {
  CAUSEWAY_GRID_STRIDE(i, n) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * 0.70710678f));
}

__global__ void gelu_backward_kernel(float* d_inp, const float* d_out, const float* inp,
                                     int64_t n) {
  CAUSEWAY_GRID_STRIDE(i, n) {
    const float x = inp[i];
    const float th = tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
    d_inp[i] = d_out[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
  }
}

__global__ void gelu_erf_backward_kernel(float* d_inp, const float* d_out, const float* inp,
                                         int64_t n) {
  CAUSEWAY_GRID_STRIDE(i, n) {
    const float x = inp[i];
    const float cdf = 0.5f * (1.0f + erff(x * 0.70710678f));
    d_inp[i] = d_out[i] * (cdf + x * kInvSqrt2Pi * expf(-0.5f * x * x));
  }
}

}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
  if (n == 0) return;
  gelu_kernel<<<blocks_for(n), kThreads>>>(out, inp, n);
  check_launch("gelu_forward");
}

void gelu_erf_forward(float* out, const float* inp, int64_t n) {
  if (n == 0) return;
  gelu_erf_kernel<<<blocks_for(n), kThreads>>>(out, inp, n);
  check_launch("gelu_erf_forward");
}

void gelu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) {
  if (n == 0) return;
  gelu_backward_kernel<<<blocks_for(n), kThreads>>>(d_inp, d_out, inp, n);
  check_launch("gelu_backward");
}

void gelu_erf_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) {
  if (n == 0) return;
  gelu_erf_backward_kernel<<<blocks_for(n), kThreads>>>(d_inp, d_out, inp, n);
  check_launch("gelu_erf_backward");
}

}  // namespace causeway::cuda
