// LayerNorm: one warp per row, two passes (mean, then centred variance) as on the CPU; the
// weight and bias gradients are one thread per feature summing rows in order.
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

__global__ void stats_kernel(float* mean, float* rstd, const float* inp, int64_t N, int C,
                             float eps) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t n = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; n < N;
       n += warps) {
    const float* x = inp + n * C;
    float s = 0.0f;
    for (int i = lane; i < C; i += 32) s += x[i];
    const float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int i = lane; i < C; i += 32) v += (x[i] - m) * (x[i] - m);
    v = warp_sum(v);
    if (lane == 0) {
      mean[n] = m;
      rstd[n] = 1.0f / sqrtf(v / C + eps);
    }
  }
}

__global__ void apply_kernel(float* out, const float* inp, const float* mean, const float* rstd,
                             const float* weight, const float* bias, int64_t N, int C) {
  CAUSEWAY_GRID_STRIDE(i, N * C) {
    const int64_t n = i / C;
    const int c = static_cast<int>(i % C);
    out[i] = (inp[i] - mean[n]) * rstd[n] * weight[c] + bias[c];
  }
}

// d_inp += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = d_out * weight.
__global__ void backward_input_kernel(float* d_inp, const float* d_out, const float* inp,
                                      const float* mean, const float* rstd, const float* weight,
                                      int64_t N, int C) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t n = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; n < N;
       n += warps) {
    const float* x = inp + n * C;
    const float* dy = d_out + n * C;
    float* dx = d_inp + n * C;
    const float mu = mean[n], rs = rstd[n];
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int i = lane; i < C; i += 32) {
      const float g = dy[i] * weight[i];
      sum_g += g;
      sum_gx += g * (x[i] - mu) * rs;
    }
    sum_g = warp_sum(sum_g) / C;
    sum_gx = warp_sum(sum_gx) / C;
    for (int i = lane; i < C; i += 32) {
      const float xhat = (x[i] - mu) * rs;
      dx[i] += rs * (dy[i] * weight[i] - sum_g - xhat * sum_gx);
    }
  }
}

__global__ void backward_params_kernel(float* d_weight, float* d_bias, const float* d_out,
                                       const float* inp, const float* mean, const float* rstd,
                                       int64_t N, int C) {
  CAUSEWAY_GRID_STRIDE(i, C) {
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

}  // namespace

void layernorm_stats(float* mean, float* rstd, const float* inp, int64_t N, int C, float eps) {
  if (N == 0) return;
  stats_kernel<<<warp_blocks_for(N), kThreads>>>(mean, rstd, inp, N, C, eps);
  check_launch("layernorm_stats");
}

void layernorm_apply(float* out, const float* inp, const float* mean, const float* rstd,
                     const float* weight, const float* bias, int64_t N, int C) {
  if (N * C == 0) return;
  apply_kernel<<<blocks_for(N * C), kThreads>>>(out, inp, mean, rstd, weight, bias, N, C);
  check_launch("layernorm_apply");
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int64_t N, int C, float eps) {
  layernorm_stats(mean, rstd, inp, N, C, eps);
  layernorm_apply(out, inp, mean, rstd, weight, bias, N, C);
}

void layernorm_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                        const float* inp, const float* mean, const float* rstd,
                        const float* weight, int64_t N, int C) {
  if (N == 0) return;
  backward_input_kernel<<<warp_blocks_for(N), kThreads>>>(d_inp, d_out, inp, mean, rstd, weight,
                                                          N, C);
  check_launch("layernorm_backward");
  if (!d_weight) return;
  backward_params_kernel<<<blocks_for(C), kThreads>>>(d_weight, d_bias, d_out, inp, mean, rstd,
                                                      N, C);
  check_launch("layernorm_backward (weight, bias)");
}

}  // namespace causeway::cuda
