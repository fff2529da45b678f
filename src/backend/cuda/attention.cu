// GPT-2 attention: the score and value steps are the grouped-query kernels with one kv head per
// head (attention_gqa.cu); softmax is one warp per row; per-head results are strided GEMMs.
#include <cmath>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

// Scores may have been overwritten by a hook, so the whole row is read; a fully masked row
// gives zeros, not NaN.
__global__ void softmax_kernel(float* pattern, const float* scores, int64_t rows, int T) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; r < rows;
       r += warps) {
    const float* x = scores + r * T;
    float* y = pattern + r * T;
    float mx = -INFINITY;
    for (int s = lane; s < T; s += 32) mx = fmaxf(mx, x[s]);
    mx = warp_max(mx);
    if (mx == -INFINITY) {
      for (int s = lane; s < T; s += 32) y[s] = 0.0f;
      continue;
    }
    float sum = 0.0f;
    for (int s = lane; s < T; s += 32) {
      const float e = x[s] == -INFINITY ? 0.0f : expf(x[s] - mx);
      y[s] = e;
      sum += e;
    }
    const float inv = 1.0f / warp_sum(sum);
    for (int s = lane; s < T; s += 32) y[s] *= inv;
  }
}

__global__ void softmax_backward_kernel(float* d_scores, const float* d_pattern,
                                        const float* pattern, int64_t rows, int T) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; r < rows;
       r += warps) {
    const float* p = pattern + r * T;
    const float* dp = d_pattern + r * T;
    float dot = 0.0f;
    for (int s = lane; s < T; s += 32) dot += p[s] * dp[s];
    dot = warp_sum(dot);
    for (int s = lane; s < T; s += 32) d_scores[r * T + s] = p[s] * (dp[s] - dot);
  }
}

__global__ void sum_heads_kernel(float* out, const float* result, const float* bias, int64_t N,
                                 int NH, int C) {
  CAUSEWAY_GRID_STRIDE(idx, N * C) {
    const int64_t n = idx / C;
    const int i = static_cast<int>(idx % C);
    float y = bias ? bias[i] : 0.0f;
    for (int h = 0; h < NH; ++h) y += result[(n * NH + h) * C + i];
    out[idx] = y;
  }
}

}  // namespace

void attention_scores_forward(float* scores, const float* q, const float* k, int B, int T,
                              int NH, int HS, int q_begin) {
  attention_scores_gqa_forward(scores, q, k, B, T, NH, NH, HS,
                               1.0f / std::sqrt(static_cast<float>(HS)), 0.0f, 0, q_begin);
}

void attention_softmax_forward(float* pattern, const float* scores, int B, int NH, int T,
                               int q_begin) {
  const int64_t rows = static_cast<int64_t>(B) * NH * (T - q_begin);
  if (rows == 0 || T == 0) return;
  softmax_kernel<<<warp_blocks_for(rows), kThreads>>>(pattern, scores, rows, T);
  check_launch("attention_softmax_forward");
}

void attention_values_forward(float* z, const float* pattern, const float* v, int B, int T,
                              int NH, int HS, int q_begin) {
  attention_values_gqa_forward(z, pattern, v, B, T, NH, NH, HS, q_begin);
}

void attention_result_forward(float* result, const float* z, const float* W_O, int64_t N, int NH,
                              int HS, int C) {
  // One strided GEMM per head: z's head slice has row stride NH*HS, result's has NH*C.
  for (int h = 0; h < NH; ++h)
    gemm_row_major(false, false, N, C, HS, 1.0f, z + h * HS, static_cast<int64_t>(NH) * HS,
                   W_O + static_cast<int64_t>(h) * HS * C, C, 0.0f,
                   result + static_cast<int64_t>(h) * C, static_cast<int64_t>(NH) * C,
                   "attention_result_forward");
}

void sum_heads_forward(float* out, const float* result, const float* bias, int64_t N, int NH,
                       int C) {
  if (N * C == 0) return;
  sum_heads_kernel<<<blocks_for(N * C), kThreads>>>(out, result, bias, N, NH, C);
  check_launch("sum_heads_forward");
}

void attention_values_backward(float* d_pattern, float* d_v, const float* d_z, const float* pattern,
                               const float* v, int B, int T, int NH, int HS) {
  attention_values_gqa_backward(d_pattern, d_v, d_z, pattern, v, B, T, NH, NH, HS);
}

void attention_softmax_backward(float* d_scores, const float* d_pattern, const float* pattern,
                                int B, int NH, int T) {
  const int64_t rows = static_cast<int64_t>(B) * NH * T;
  if (rows == 0) return;
  softmax_backward_kernel<<<warp_blocks_for(rows), kThreads>>>(d_scores, d_pattern, pattern, rows,
                                                               T);
  check_launch("attention_softmax_backward");
}

void attention_scores_backward(float* d_q, float* d_k, const float* d_scores, const float* q,
                               const float* k, int B, int T, int NH, int HS) {
  attention_scores_gqa_backward(d_q, d_k, d_scores, q, k, B, T, NH, NH, HS,
                                1.0f / std::sqrt(static_cast<float>(HS)), 0.0f, 0);
}

}  // namespace causeway::cuda
