// Shared by the CUDA op files only (compiled by nvcc): status checks that turn every CUDA and
// cuBLAS failure into a causeway::Error naming the op, launch sizes, the per-thread cuBLAS
// handle and device scratch, and row-major GEMM on top of column-major cuBLAS.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/error.h"

namespace causeway::cuda {

void check(cudaError_t status, const char* op);
void check(cublasStatus_t status, const char* op);
// After a kernel launch: a bad configuration shows up here, not as a return value.
inline void check_launch(const char* op) { check(cudaGetLastError(), op); }

constexpr int kThreads = 256;
// Blocks for a grid-stride loop over n items; capped so huge n reuses threads.
inline unsigned int blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned int>(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}
// Blocks when each row gets one warp (kThreads / 32 rows per block).
inline unsigned int warp_blocks_for(int64_t rows) { return blocks_for(rows * 32); }

// The calling thread's cuBLAS handle for the current device, created on first use with TF32
// and other reduced-precision shortcuts off (CUBLAS_PEDANTIC_MATH), so fp32 GEMMs are fp32.
cublasHandle_t cublas_handle();
// Device scratch of at least `bytes`, owned by the calling thread and grown (never shrunk) on
// demand: ops that widen 16-bit weights stage tiles here instead of allocating per call.
void* device_scratch(size_t bytes);
// A device int the index checks write to (reset by the caller).
int* device_flag();

// C (M, N) = alpha * op(A) @ op(B) + beta * C, all row-major with row strides lda, ldb, ldc;
// op(X) is X^T when trans_X. Done as the column-major C^T = op(B)^T op(A)^T.
void gemm_row_major(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc, const char* op);

// Warp-wide sum and max (all 32 lanes take part and all get the result).
__device__ inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

#define CAUSEWAY_GRID_STRIDE(i, n)                                                        \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

}  // namespace causeway::cuda
