// RMSNorm (one warp per row), SiLU / gated activations and the tanh soft-cap (elementwise).
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ inline float gelu_tanh(float x) {
  return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
}
__device__ inline float gelu_tanh_grad(float x) {
  const float t = tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
  const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

__global__ void rms_stats_kernel(float* scale, const float* inp, int64_t N, int C, float eps) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t n = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; n < N;
       n += warps) {
    const float* x = inp + n * C;
    float ss = 0.0f;
    for (int i = lane; i < C; i += 32) ss += x[i] * x[i];
    ss = warp_sum(ss);
    if (lane == 0) scale[n] = sqrtf(ss / C + eps);
  }
}

// Divides by the scale (not multiplies by its inverse) as TL and the CPU op do.
__global__ void rms_apply_kernel(float* out, const float* inp, const float* scale,
                                 const float* weight, int64_t N, int C) {
  CAUSEWAY_GRID_STRIDE(i, N * C) {
    const float y = inp[i] / scale[i / C];
    out[i] = weight ? y * weight[i % C] : y;
  }
}

// dx += g / s - x * sum(g * x) / (C s^3), g = d_out * weight.
__global__ void rms_backward_input_kernel(float* d_inp, const float* d_out, const float* inp,
                                          const float* scale, const float* weight, int64_t N,
                                          int C) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t n = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; n < N;
       n += warps) {
    const float* x = inp + n * C;
    const float* dy = d_out + n * C;
    float* dx = d_inp + n * C;
    float sum_gx = 0.0f;
    for (int i = lane; i < C; i += 32) sum_gx += dy[i] * (weight ? weight[i] : 1.0f) * x[i];
    sum_gx = warp_sum(sum_gx);
    const float inv_s = 1.0f / scale[n];
    const float k = sum_gx * inv_s * inv_s * inv_s / C;
    for (int i = lane; i < C; i += 32) dx[i] += dy[i] * (weight ? weight[i] : 1.0f) * inv_s - x[i] * k;
  }
}

__global__ void rms_backward_weight_kernel(float* d_weight, const float* d_out, const float* inp,
                                           const float* scale, int64_t N, int C) {
  CAUSEWAY_GRID_STRIDE(i, C) {
    float dw = 0.0f;
    for (int64_t n = 0; n < N; ++n) dw += d_out[n * C + i] * inp[n * C + i] / scale[n];
    d_weight[i] += dw;
  }
}

__global__ void silu_kernel(float* out, const float* inp, int64_t n) {
  CAUSEWAY_GRID_STRIDE(i, n) out[i] = inp[i] * sigmoid(inp[i]);
}

__global__ void silu_backward_kernel(float* d_inp, const float* d_out, const float* inp,
                                     int64_t n) {
  CAUSEWAY_GRID_STRIDE(i, n) {
    const float s = sigmoid(inp[i]);
    d_inp[i] = d_out[i] * s * (1.0f + inp[i] * (1.0f - s));
  }
}

__global__ void gated_kernel(float* out, const float* gate, const float* up, int64_t n,
                             bool silu) {
  CAUSEWAY_GRID_STRIDE(i, n) {
    const float g = gate[i];
    out[i] = (silu ? g * sigmoid(g) : gelu_tanh(g)) * up[i];
  }
}

__global__ void gated_backward_kernel(float* d_gate, float* d_up, const float* d_out,
                                      const float* gate, const float* up, int64_t n, bool silu) {
  CAUSEWAY_GRID_STRIDE(i, n) {
    const float g = gate[i], dy = d_out[i], u = up[i];
    if (silu) {
      const float s = sigmoid(g);
      d_gate[i] = dy * u * s * (1.0f + g * (1.0f - s));
      d_up[i] = dy * g * s;
    } else {
      d_gate[i] = dy * u * gelu_tanh_grad(g);
      d_up[i] = dy * gelu_tanh(g);
    }
  }
}

__global__ void softcap_kernel(float* out, const float* inp, int64_t n, float cap) {
  CAUSEWAY_GRID_STRIDE(i, n) out[i] = cap * tanhf(inp[i] / cap);
}

__global__ void softcap_backward_kernel(float* d_inp, const float* d_out, const float* inp,
                                        int64_t n, float cap) {
  CAUSEWAY_GRID_STRIDE(i, n) {
    const float t = tanhf(inp[i] / cap);
    d_inp[i] = d_out[i] * (1.0f - t * t);
  }
}

}  // namespace

void rmsnorm_stats(float* scale, const float* inp, int64_t N, int C, float eps) {
  if (N == 0) return;
  rms_stats_kernel<<<warp_blocks_for(N), kThreads>>>(scale, inp, N, C, eps);
  check_launch("rmsnorm_stats");
}

void rmsnorm_apply(float* out, const float* inp, const float* scale, const float* weight,
                   int64_t N, int C) {
  if (N * C == 0) return;
  rms_apply_kernel<<<blocks_for(N * C), kThreads>>>(out, inp, scale, weight, N, C);
  check_launch("rmsnorm_apply");
}

void rmsnorm_backward(float* d_inp, float* d_weight, const float* d_out, const float* inp,
                      const float* scale, const float* weight, int64_t N, int C) {
  if (N == 0) return;
  rms_backward_input_kernel<<<warp_blocks_for(N), kThreads>>>(d_inp, d_out, inp, scale, weight,
                                                              N, C);
  check_launch("rmsnorm_backward");
  if (!d_weight) return;
  rms_backward_weight_kernel<<<blocks_for(C), kThreads>>>(d_weight, d_out, inp, scale, N, C);
  check_launch("rmsnorm_backward (weight)");
}

void silu_forward(float* out, const float* inp, int64_t n) {
  if (n == 0) return;
  silu_kernel<<<blocks_for(n), kThreads>>>(out, inp, n);
  check_launch("silu_forward");
}

void silu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) {
  if (n == 0) return;
  silu_backward_kernel<<<blocks_for(n), kThreads>>>(d_inp, d_out, inp, n);
  check_launch("silu_backward");
}

void gated_forward(float* out, const float* gate, const float* up, int64_t n,
                   cpu::GatedActivation activation) {
  if (n == 0) return;
  gated_kernel<<<blocks_for(n), kThreads>>>(out, gate, up, n,
                                            activation == cpu::GatedActivation::kSilu);
  check_launch("gated_forward");
}

void gated_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                    const float* up, int64_t n, cpu::GatedActivation activation) {
  if (n == 0) return;
  gated_backward_kernel<<<blocks_for(n), kThreads>>>(d_gate, d_up, d_out, gate, up, n,
                                                     activation == cpu::GatedActivation::kSilu);
  check_launch("gated_backward");
}

void softcap_forward(float* out, const float* inp, int64_t n, float cap) {
  if (n == 0) return;
  softcap_kernel<<<blocks_for(n), kThreads>>>(out, inp, n, cap);
  check_launch("softcap_forward");
}

void softcap_backward(float* d_inp, const float* d_out, const float* inp, int64_t n, float cap) {
  if (n == 0) return;
  softcap_backward_kernel<<<blocks_for(n), kThreads>>>(d_inp, d_out, inp, n, cap);
  check_launch("softcap_backward");
}

}  // namespace causeway::cuda
