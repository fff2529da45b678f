// Embedding lookups: row gathers, parallel over rows.
#include <cstring>

#include "backend/ops.h"

namespace causeway::cpu {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(out + n * C, table + static_cast<int64_t>(ids[n]) * C, sizeof(float) * C);
}

void position_embedding_forward(float* out, const float* table, int B, int T, int C) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      std::memcpy(out + (static_cast<int64_t>(b) * T + t) * C,
                  table + static_cast<int64_t>(t) * C, sizeof(float) * C);
}

void embedding_backward(float* d_table, const float* d_out, const int32_t* ids, int64_t N, int C) {
  // Rows may repeat a token, so the scatter-add stays serial over rows.
  for (int64_t n = 0; n < N; ++n) {
    float* row = d_table + static_cast<int64_t>(ids[n]) * C;
    const float* g = d_out + n * C;
#pragma omp simd
    for (int i = 0; i < C; ++i) row[i] += g[i];
  }
}

void position_embedding_backward(float* d_table, const float* d_out, int B, int T, int C) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b) {
      const float* g = d_out + (static_cast<int64_t>(b) * T + t) * C;
      float* row = d_table + static_cast<int64_t>(t) * C;
#pragma omp simd
      for (int i = 0; i < C; ++i) row[i] += g[i];
    }
}

}  // namespace causeway::cpu
