// Causal attention, materializing scores and pattern (B, NH, T, T) so both can be hooked.
// Parallel over (batch, head, query row); inner loops over the head dim are vectorized.
// Work is O(T^2 * HS) against the O(T * C^2) of the projections, so plain loops suffice.
#include <cmath>
#include <limits>

#include "backend/cpu/vec_math.h"
#include "backend/ops.h"

namespace causeway::cpu {

void attention_scores_forward(float* scores, const float* q, const float* k, int B, int T,
                              int NH, int HS, int q_begin) {
  const int64_t C = static_cast<int64_t>(NH) * HS;
  const int Tq = T - q_begin;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float neg_inf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for collapse(3) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < Tq; ++i) {
        const int t = q_begin + i;  // the query's position
        const float* qt = q + (static_cast<int64_t>(b) * Tq + i) * C + h * HS;
        float* row = scores + ((static_cast<int64_t>(b) * NH + h) * Tq + i) * T;
        for (int s = 0; s <= t; ++s) {
          const float* ks = k + (static_cast<int64_t>(b) * T + s) * C + h * HS;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int j = 0; j < HS; ++j) dot += qt[j] * ks[j];
          row[s] = dot * scale;
        }
        for (int s = t + 1; s < T; ++s) row[s] = neg_inf;
      }
}

void attention_softmax_forward(float* pattern, const float* scores, int B, int NH, int T,
                               int q_begin) {
  const int64_t rows = static_cast<int64_t>(B) * NH * (T - q_begin);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = scores + r * T;
    float* y = pattern + r * T;
    // Scores may have been overwritten by a hook, so the whole row is read, not 0..t.
    float mx = kNegInf;
    for (int s = 0; s < T; ++s) mx = x[s] > mx ? x[s] : mx;
    if (mx == kNegInf) {
      for (int s = 0; s < T; ++s) y[s] = 0.0f;  // a fully masked row: zeros, not NaN
      continue;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int s = 0; s < T; ++s) {
      const float e = x[s] == kNegInf ? 0.0f : exp_approx(x[s] - mx);
      y[s] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int s = 0; s < T; ++s) y[s] *= inv;
  }
}

void attention_values_forward(float* z, const float* pattern, const float* v, int B, int T,
                              int NH, int HS, int q_begin) {
  const int64_t C = static_cast<int64_t>(NH) * HS;
  const int Tq = T - q_begin;
#pragma omp parallel for collapse(3) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < Tq; ++i)
      for (int h = 0; h < NH; ++h) {
        const float* p = pattern + ((static_cast<int64_t>(b) * NH + h) * Tq + i) * T;
        float* zt = z + (static_cast<int64_t>(b) * Tq + i) * C + h * HS;
#pragma omp simd
        for (int j = 0; j < HS; ++j) zt[j] = 0.0f;
        // A hook may have put weight on future keys; honour it rather than assume causality.
        for (int s = 0; s < T; ++s) {
          const float w = p[s];
          if (w == 0.0f) continue;
          const float* vs = v + (static_cast<int64_t>(b) * T + s) * C + h * HS;
#pragma omp simd
          for (int j = 0; j < HS; ++j) zt[j] += w * vs[j];
        }
      }
}

}  // namespace causeway::cpu

#include <cblas.h>

namespace causeway::cpu {

void attention_result_forward(float* result, const float* z, const float* W_O, int64_t N, int NH,
                              int HS, int C) {
  // One strided sgemm per head: z's head slice has row stride NH*HS, result's has NH*C.
  for (int h = 0; h < NH; ++h)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N), C, HS, 1.0f,
                z + h * HS, NH * HS, W_O + static_cast<int64_t>(h) * HS * C, C, 0.0f,
                result + static_cast<int64_t>(h) * C, NH * C);
}

void sum_heads_forward(float* out, const float* result, const float* bias, int64_t N, int NH,
                       int C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* y = out + n * C;
#pragma omp simd
    for (int i = 0; i < C; ++i) y[i] = bias[i];
    for (int h = 0; h < NH; ++h) {
      const float* r = result + (n * NH + h) * C;
#pragma omp simd
      for (int i = 0; i < C; ++i) y[i] += r[i];
    }
  }
}

}  // namespace causeway::cpu
