// Embedding lookups and their gradients; fp32 tables (the WeightMatrix lookup is in linear.cu).
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

__global__ void gather_kernel(float* out, const int32_t* ids, const float* table, int64_t N,
                              int C) {
  CAUSEWAY_GRID_STRIDE(i, N * C) {
    const int64_t n = i / C;
    out[i] = table[static_cast<int64_t>(ids[n]) * C + i % C];
  }
}

__global__ void position_kernel(float* out, const float* table, int B, int T, int C) {
  CAUSEWAY_GRID_STRIDE(i, static_cast<int64_t>(B) * T * C) {
    out[i] = table[i % (static_cast<int64_t>(T) * C)];
  }
}

// Rows may repeat a token, so the scatter-add is atomic (order, hence rounding, may vary).
__global__ void scatter_add_kernel(float* d_table, const float* d_out, const int32_t* ids,
                                   int64_t N, int C) {
  CAUSEWAY_GRID_STRIDE(i, N * C) {
    atomicAdd(d_table + static_cast<int64_t>(ids[i / C]) * C + i % C, d_out[i]);
  }
}

// One thread per (t, i), summing over the batch in order: deterministic.
__global__ void position_backward_kernel(float* d_table, const float* d_out, int B, int T, int C) {
  const int64_t TC = static_cast<int64_t>(T) * C;
  CAUSEWAY_GRID_STRIDE(i, TC) {
    float s = 0.0f;
    for (int b = 0; b < B; ++b) s += d_out[b * TC + i];
    d_table[i] += s;
  }
}

}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int C) {
  if (N * C == 0) return;
  gather_kernel<<<blocks_for(N * C), kThreads>>>(out, ids, table, N, C);
  check_launch("embedding_forward");
}

void position_embedding_forward(float* out, const float* table, int B, int T, int C) {
  const int64_t n = static_cast<int64_t>(B) * T * C;
  if (n == 0) return;
  position_kernel<<<blocks_for(n), kThreads>>>(out, table, B, T, C);
  check_launch("position_embedding_forward");
}

void embedding_backward(float* d_table, const float* d_out, const int32_t* ids, int64_t N, int C) {
  if (N * C == 0) return;
  scatter_add_kernel<<<blocks_for(N * C), kThreads>>>(d_table, d_out, ids, N, C);
  check_launch("embedding_backward");
}

void position_embedding_backward(float* d_table, const float* d_out, int B, int T, int C) {
  const int64_t n = static_cast<int64_t>(T) * C;
  if (n == 0 || B == 0) return;
  position_backward_kernel<<<blocks_for(n), kThreads>>>(d_table, d_out, B, T, C);
  check_launch("position_embedding_backward");
}

}  // namespace causeway::cuda
