// Matmuls go to OpenBLAS sgemm; the bias is broadcast into the output first so sgemm
// accumulates onto it (beta = 1) instead of a second pass over the output.
#include <cblas.h>

#include <cstring>

#include "backend/ops.h"

namespace causeway::cpu {

namespace {
void broadcast_bias(float* out, const float* bias, int64_t N, int OC) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) std::memcpy(out + n * OC, bias, sizeof(float) * OC);
}
}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int64_t N, int IC, int OC) {
  if (N == 0) return;
  if (bias) broadcast_bias(out, bias, N, OC);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N), OC, IC, 1.0f, inp,
              IC, weight, OC, bias ? 1.0f : 0.0f, out, OC);
}

void matmul_transposed_forward(float* out, const float* inp, const float* weight, int64_t N,
                               int IC, int OC) {
  if (N == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(N), OC, IC, 1.0f, inp, IC,
              weight, IC, 0.0f, out, OC);
}

}  // namespace causeway::cpu

namespace causeway::cpu {

void matmul_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                     const float* inp, const float* weight, int64_t N, int IC, int OC) {
  if (N == 0) return;
  const int n = static_cast<int>(N);
  if (d_inp)  // d_inp (N, IC) = d_out (N, OC) @ weight^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, IC, OC, 1.0f, d_out, OC, weight, OC,
                0.0f, d_inp, IC);
  if (d_weight)  // d_weight (IC, OC) += inp^T @ d_out
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IC, OC, n, 1.0f, inp, IC, d_out, OC,
                1.0f, d_weight, OC);
  if (d_bias) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; ++o) {
      float s = 0.0f;
      for (int64_t r = 0; r < N; ++r) s += d_out[r * OC + o];
      d_bias[o] += s;
    }
  }
}

void matmul_transposed_backward(float* d_inp, float* d_weight, const float* d_out,
                                const float* inp, const float* weight, int64_t N, int IC, int OC) {
  if (N == 0) return;
  const int n = static_cast<int>(N);
  if (d_inp)  // d_inp (N, IC) = d_out (N, OC) @ weight (OC, IC)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, IC, OC, 1.0f, d_out, OC, weight, IC,
                0.0f, d_inp, IC);
  if (d_weight)  // d_weight (OC, IC) += d_out^T @ inp
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, n, 1.0f, d_out, OC, inp, IC,
                1.0f, d_weight, IC);
}

}  // namespace causeway::cpu
