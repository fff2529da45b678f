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
