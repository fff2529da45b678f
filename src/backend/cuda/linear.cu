// Linear ops over a WeightMatrix read in place on the device. fp32 weights go straight to one
// cuBLAS SGEMM (pedantic math: no TF32). bf16/f16 weights are widened to fp32 a tile at a time
// into per-thread device scratch (at most kTileElements, 64 MiB) and multiplied tile by tile
// with fp32 accumulation, so a 16-bit model never holds an fp32 copy of a whole matrix.
#include <cuda_fp16.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

constexpr int64_t kTileElements = int64_t{1} << 24;

// The right operand B (K, J) of C = A @ B where the weight lies: element (k, j) at
// offset + k * ld + j, or offset + j * ld + k when j_major (as in cpu/linear.cpp).
struct WeightView {
  const void* data;
  DType dtype;
  int64_t K, J;
  bool j_major;
  int64_t ld;
  int64_t offset = 0;
};

std::string describe(const WeightMatrix& W) {
  return std::string(dtype_name(W.dtype)) + " (in " + std::to_string(W.in) + ", out " +
         std::to_string(W.out) + (W.out_major ? ", stored (out, in))" : ", stored (in, out))");
}

void check_float_weight(const WeightMatrix& W, const char* op) {
  if (W.dtype != DType::F32 && W.dtype != DType::BF16 && W.dtype != DType::F16)
    throw std::invalid_argument(std::string(op) + ": weight dtype must be F32, BF16 or F16, got " +
                                describe(W));
  if (W.data == nullptr && W.in > 0 && W.out > 0)
    throw std::invalid_argument(std::string(op) + ": weight " + describe(W) + " has no data");
}

WeightView forward_view(const WeightMatrix& W) {
  return {W.data, W.dtype, W.in, W.out, W.out_major, W.out_major ? W.in : W.out};
}
WeightView backward_view(const WeightMatrix& W) {
  return {W.data, W.dtype, W.out, W.in, !W.out_major, W.out_major ? W.in : W.out};
}

__global__ void fill_kernel(float* C, int64_t ldc, int64_t M, int64_t J) {
  CAUSEWAY_GRID_STRIDE(i, M * J) C[(i / J) * ldc + i % J] = 0.0f;
}

// C (M, J) = A (M, K) @ B, or C += A @ B when accumulate; lda / ldc: row strides.
void gemm_weight(float* C, int64_t ldc, const float* A, int64_t lda, int64_t M, const WeightView& B,
                 bool accumulate, const char* op) {
  if (M == 0 || B.J == 0) return;
  if (B.K == 0) {  // an empty sum: cuBLAS may not touch C
    if (!accumulate) {
      fill_kernel<<<blocks_for(M * B.J), kThreads>>>(C, ldc, M, B.J);
      check_launch(op);
    }
    return;
  }
  if (B.dtype == DType::F32) {
    gemm_row_major(false, B.j_major, M, B.J, B.K, 1.0f, A, lda,
                   static_cast<const float*>(B.data) + B.offset, B.ld, accumulate ? 1.0f : 0.0f,
                   C, ldc, op);
    return;
  }
  if (B.j_major) {  // storage rows are output features j: a tile is pj whole rows (pj, K)
    const int64_t pj = std::max<int64_t>(1, std::min(B.J, kTileElements / B.K));
    float* tile = static_cast<float*>(device_scratch(sizeof(float) * pj * B.K));
    for (int64_t j0 = 0; j0 < B.J; j0 += pj) {
      const int64_t nj = std::min(pj, B.J - j0);
      widen_tile(tile, B.data, B.dtype, B.offset, B.ld, j0, nj, 0, B.K);
      gemm_row_major(false, true, M, nj, B.K, 1.0f, A, lda, tile, B.K, accumulate ? 1.0f : 0.0f,
                     C + j0, ldc, op);
    }
  } else {  // storage rows are input features k: a tile is kb rows (kb, J), summed over tiles
    const int64_t kb = std::max<int64_t>(1, std::min(B.K, kTileElements / B.J));
    float* tile = static_cast<float*>(device_scratch(sizeof(float) * kb * B.J));
    for (int64_t k0 = 0; k0 < B.K; k0 += kb) {
      const int64_t nk = std::min(kb, B.K - k0);
      widen_tile(tile, B.data, B.dtype, B.offset, B.ld, k0, nk, 0, B.J);
      gemm_row_major(false, false, M, B.J, nk, 1.0f, A + k0, lda, tile, B.J,
                     accumulate || k0 > 0 ? 1.0f : 0.0f, C, ldc, op);
    }
  }
}

// First index whose token is outside [0, V), or n when all are inside.
__global__ void find_bad_token_kernel(int* first_bad, const int32_t* ids, int64_t n, int64_t V) {
  CAUSEWAY_GRID_STRIDE(i, n) {
    if (ids[i] < 0 || ids[i] >= V) atomicMin(first_bad, static_cast<int>(i));
  }
}

// Throws std::out_of_range naming the first bad id, before anything is written (as the CPU op).
void check_tokens(const int32_t* ids, int64_t n, const WeightMatrix& W, const char* op,
                  const char* field) {
  if (n == 0) return;
  int* flag = device_flag();
  const int none = static_cast<int>(n);
  check(cudaMemcpy(flag, &none, sizeof(int), cudaMemcpyHostToDevice), op);
  find_bad_token_kernel<<<blocks_for(n), kThreads>>>(flag, ids, n, W.out);
  check_launch(op);
  int first = none;
  check(cudaMemcpy(&first, flag, sizeof(int), cudaMemcpyDeviceToHost), op);
  if (first == none) return;
  int32_t id = 0;
  check(cudaMemcpy(&id, ids + first, sizeof(int32_t), cudaMemcpyDeviceToHost), op);
  throw std::out_of_range(std::string(op) + ": " + field + "[" + std::to_string(first) +
                          "] = " + std::to_string(id) + " is outside the vocabulary [0, " +
                          std::to_string(W.out) + ")");
}

__device__ inline float weight_at(const WeightMatrix& W, int64_t index) {
  if (W.dtype == DType::F32) return static_cast<const float*>(W.data)[index];
  const uint16_t h = static_cast<const uint16_t*>(W.data)[index];
  if (W.dtype == DType::BF16) return __uint_as_float(static_cast<uint32_t>(h) << 16);
  return __half2float(__ushort_as_half(h));
}

// out[n, c] = W(ids[n], c) * scale: a row of a (V, C) table, or a column of a (C, V) one.
__global__ void token_rows_kernel(float* out, const int32_t* ids, WeightMatrix W, int64_t N,
                                  float scale) {
  const int64_t C = W.in;
  CAUSEWAY_GRID_STRIDE(i, N * C) {
    const int64_t v = ids[i / C], c = i % C;
    out[i] = weight_at(W, W.out_major ? v * W.in + c : c * W.out + v) * scale;
  }
}

int64_t head_width(const WeightMatrix& W, int H, const char* op) {
  if (H <= 0 || W.out % H != 0)
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(H) +
                                " heads do not divide W " + describe(W));
  return W.out / H;
}

}  // namespace

void linear_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                    int64_t N) {
  check_float_weight(W, "linear_forward");
  if (N == 0) return;
  if (bias) broadcast_bias(out, bias, N, W.out, "linear_forward (bias)");
  gemm_weight(out, W.out, inp, W.in, N, forward_view(W), bias != nullptr, "linear_forward");
}

void linear_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                     const float* inp, const WeightMatrix& W, int64_t N) {
  check_float_weight(W, "linear_backward");
  if (d_weight && W.dtype != DType::F32)
    throw std::invalid_argument(
        "linear_backward: d_weight needs an F32 weight (its gradient is "
        "accumulated in the weight's layout), got " +
        describe(W));
  if (N == 0) return;
  if (d_inp)
    gemm_weight(d_inp, W.in, d_out, W.out, N, backward_view(W), false, "linear_backward (d_inp)");
  if (d_weight && W.out_major)  // (out, in) += d_out^T @ inp
    gemm_row_major(true, false, W.out, W.in, N, 1.0f, d_out, W.out, inp, W.in, 1.0f, d_weight,
                   W.in, "linear_backward (d_weight)");
  else if (d_weight)  // (in, out) += inp^T @ d_out
    gemm_row_major(true, false, W.in, W.out, N, 1.0f, inp, W.in, d_out, W.out, 1.0f, d_weight,
                   W.out, "linear_backward (d_weight)");
  if (d_bias) bias_backward(d_bias, d_out, N, W.out, "linear_backward (d_bias)");
}

void attention_result_forward(float* result, const float* z, const WeightMatrix& W_O, int64_t N,
                              int NH, int HS) {
  check_float_weight(W_O, "attention_result_forward");
  if (W_O.in != static_cast<int64_t>(NH) * HS)
    throw std::invalid_argument("attention_result_forward: W_O " + describe(W_O) +
                                " must have in = NH * HS = " + std::to_string(NH) + " * " +
                                std::to_string(HS));
  const int64_t C = W_O.out;
  for (int h = 0; h < NH; ++h) {
    WeightView head = forward_view(W_O);
    head.K = HS;
    head.offset = W_O.out_major ? static_cast<int64_t>(h) * HS : static_cast<int64_t>(h) * HS * C;
    gemm_weight(result + h * C, NH * C, z + static_cast<int64_t>(h) * HS, W_O.in, N, head, false,
                "attention_result_forward");
  }
}

void linear_heads_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                          int64_t N, int H) {
  check_float_weight(W, "linear_heads_forward");
  const int64_t HS = head_width(W, H, "linear_heads_forward");
  if (N == 0) return;
  if (bias) broadcast_bias(out, bias, N, W.out, "linear_heads_forward (bias)");
  for (int h = 0; h < H; ++h) {
    WeightView head = forward_view(W);
    head.J = HS;
    head.offset = W.out_major ? h * HS * W.in : h * HS;
    gemm_weight(out + h * HS, W.out, inp + h * W.in, H * W.in, N, head, bias != nullptr,
                "linear_heads_forward");
  }
}

void linear_heads_backward(float* d_inp, const float* d_out, const WeightMatrix& W, int64_t N,
                           int H) {
  check_float_weight(W, "linear_heads_backward");
  const int64_t HS = head_width(W, H, "linear_heads_backward");
  if (N == 0) return;
  for (int h = 0; h < H; ++h) {
    WeightView head = backward_view(W);
    head.K = HS;
    head.offset = W.out_major ? h * HS * W.in : h * HS;
    gemm_weight(d_inp + h * W.in, H * W.in, d_out + h * HS, W.out, N, head, false,
                "linear_heads_backward");
  }
}

void embedding_forward(float* out, const int32_t* ids, const WeightMatrix& table, int64_t N,
                       float scale) {
  check_float_weight(table, "embedding_forward");
  check_tokens(ids, N, table, "embedding_forward", "ids");
  if (N * table.in == 0) return;
  token_rows_kernel<<<blocks_for(N * table.in), kThreads>>>(out, ids, table, N, scale);
  check_launch("embedding_forward");
}

void unembed_rows(float* out, const float* x, const WeightMatrix& W_U, const int32_t* tokens, int n,
                  int64_t B) {
  check_float_weight(W_U, "unembed_rows");
  check_tokens(tokens, n, W_U, "unembed_rows", "tokens");
  if (n == 0 || B == 0) return;
  const int64_t C = W_U.in;
  // The n token vectors (n, C) widened into scratch, then one GEMM: out = x @ rows^T.
  float* rows = static_cast<float*>(device_scratch(sizeof(float) * n * C));
  token_rows_kernel<<<blocks_for(n * C), kThreads>>>(rows, tokens, W_U, n, 1.0f);
  check_launch("unembed_rows");
  gemm_row_major(false, true, B, n, C, 1.0f, x, C, rows, C, 0.0f, out, n, "unembed_rows");
}

}  // namespace causeway::cuda
