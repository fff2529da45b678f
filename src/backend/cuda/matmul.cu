// fp32 matmuls on cuBLAS (pedantic math: no TF32); the bias is broadcast into the output first
// so the GEMM accumulates onto it (beta = 1), as on the CPU.
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

__global__ void broadcast_kernel(float* out, const float* bias, int64_t N, int64_t OC) {
  CAUSEWAY_GRID_STRIDE(i, N * OC) out[i] = bias[i % OC];
}

// One thread per column, rows summed in order: deterministic.
__global__ void column_sum_kernel(float* d_bias, const float* d_out, int64_t N, int64_t OC) {
  CAUSEWAY_GRID_STRIDE(o, OC) {
    float s = 0.0f;
    for (int64_t r = 0; r < N; ++r) s += d_out[r * OC + o];
    d_bias[o] += s;
  }
}

}  // namespace

void broadcast_bias(float* out, const float* bias, int64_t N, int64_t OC, const char* op) {
  if (N * OC == 0) return;
  broadcast_kernel<<<blocks_for(N * OC), kThreads>>>(out, bias, N, OC);
  check_launch(op);
}

void bias_backward(float* d_bias, const float* d_out, int64_t N, int64_t OC, const char* op) {
  if (OC == 0) return;
  column_sum_kernel<<<blocks_for(OC), kThreads>>>(d_bias, d_out, N, OC);
  check_launch(op);
}

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int64_t N, int IC, int OC) {
  if (N == 0) return;
  if (bias) broadcast_bias(out, bias, N, OC, "matmul_forward (bias)");
  gemm_row_major(false, false, N, OC, IC, 1.0f, inp, IC, weight, OC, bias ? 1.0f : 0.0f, out, OC,
                 "matmul_forward");
}

void matmul_transposed_forward(float* out, const float* inp, const float* weight, int64_t N,
                               int IC, int OC) {
  if (N == 0) return;
  gemm_row_major(false, true, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC,
                 "matmul_transposed_forward");
}

void matmul_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                     const float* inp, const float* weight, int64_t N, int IC, int OC) {
  if (N == 0) return;
  if (d_inp)  // d_inp (N, IC) = d_out (N, OC) @ weight^T
    gemm_row_major(false, true, N, IC, OC, 1.0f, d_out, OC, weight, OC, 0.0f, d_inp, IC,
                   "matmul_backward (d_inp)");
  if (d_weight)  // d_weight (IC, OC) += inp^T @ d_out
    gemm_row_major(true, false, IC, OC, N, 1.0f, inp, IC, d_out, OC, 1.0f, d_weight, OC,
                   "matmul_backward (d_weight)");
  if (d_bias) bias_backward(d_bias, d_out, N, OC, "matmul_backward (d_bias)");
}

void matmul_transposed_backward(float* d_inp, float* d_weight, const float* d_out,
                                const float* inp, const float* weight, int64_t N, int IC, int OC) {
  if (N == 0) return;
  if (d_inp)  // d_inp (N, IC) = d_out (N, OC) @ weight (OC, IC)
    gemm_row_major(false, false, N, IC, OC, 1.0f, d_out, OC, weight, IC, 0.0f, d_inp, IC,
                   "matmul_transposed_backward (d_inp)");
  if (d_weight)  // d_weight (OC, IC) += d_out^T @ inp
    gemm_row_major(true, false, OC, IC, N, 1.0f, d_out, OC, inp, IC, 1.0f, d_weight, IC,
                   "matmul_transposed_backward (d_weight)");
}

}  // namespace causeway::cuda
