// Causal attention, materializing scores and pattern (B, NH, T, T) so both can be hooked.
// Parallel over (batch, head, query row); inner loops over the head dim are vectorized.
// Work is O(T^2 * HS) against the O(T * C^2) of the projections, so plain loops suffice.
#include <cmath>
#include <limits>

#include "backend/cpu/vec_math.h"
#include "backend/ops.h"

namespace causeway::cpu {

// GPT-2's attention is grouped-query attention with one key/value head per head, the
// 1/sqrt(d_head) scale, no soft-cap and no window: one kernel serves both.
void attention_scores_forward(float* scores, const float* q, const float* k, int B, int T,
                              int NH, int HS, int q_begin) {
  attention_scores_gqa_forward(scores, q, k, B, T, NH, NH, HS,
                               1.0f / std::sqrt(static_cast<float>(HS)), 0.0f, 0, q_begin);
}

CAUSEWAY_SIMD_CLONES
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
  attention_values_gqa_forward(z, pattern, v, B, T, NH, NH, HS, q_begin);
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

CAUSEWAY_SIMD_CLONES
void sum_heads_forward(float* out, const float* result, const float* bias, int64_t N, int NH,
                       int C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* y = out + n * C;
#pragma omp simd
    for (int i = 0; i < C; ++i) y[i] = bias ? bias[i] : 0.0f;
    for (int h = 0; h < NH; ++h) {
      const float* r = result + (n * NH + h) * C;
#pragma omp simd
      for (int i = 0; i < C; ++i) y[i] += r[i];
    }
  }
}

CAUSEWAY_SIMD_CLONES
void attention_values_backward(float* d_pattern, float* d_v, const float* d_z, const float* pattern,
                               const float* v, int B, int T, int NH, int HS) {
  const int64_t C = static_cast<int64_t>(NH) * HS;
  // d_pattern[b,h,t,s] = d_z[b,t,h,:] . v[b,s,h,:]; d_v[b,s,h,:] = sum_t pattern[b,h,t,s] d_z[b,t,h,:]
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      for (int t = 0; t < T; ++t) {
        const float* dz = d_z + (static_cast<int64_t>(b) * T + t) * C + h * HS;
        float* dp = d_pattern + ((static_cast<int64_t>(b) * NH + h) * T + t) * T;
        for (int s = 0; s < T; ++s) {
          const float* vs = v + (static_cast<int64_t>(b) * T + s) * C + h * HS;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int j = 0; j < HS; ++j) dot += dz[j] * vs[j];
          dp[s] = dot;
        }
      }
      for (int s = 0; s < T; ++s) {
        float* dv = d_v + (static_cast<int64_t>(b) * T + s) * C + h * HS;
#pragma omp simd
        for (int j = 0; j < HS; ++j) dv[j] = 0.0f;
        for (int t = 0; t < T; ++t) {
          const float w = pattern[((static_cast<int64_t>(b) * NH + h) * T + t) * T + s];
          if (w == 0.0f) continue;
          const float* dz = d_z + (static_cast<int64_t>(b) * T + t) * C + h * HS;
#pragma omp simd
          for (int j = 0; j < HS; ++j) dv[j] += w * dz[j];
        }
      }
    }
}

CAUSEWAY_SIMD_CLONES
void attention_softmax_backward(float* d_scores, const float* d_pattern, const float* pattern,
                                int B, int NH, int T) {
  const int64_t rows = static_cast<int64_t>(B) * NH * T;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = pattern + r * T;
    const float* dp = d_pattern + r * T;
    float* ds = d_scores + r * T;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int s = 0; s < T; ++s) dot += p[s] * dp[s];
#pragma omp simd
    for (int s = 0; s < T; ++s) ds[s] = p[s] * (dp[s] - dot);  // masked: p = 0, gradient 0
  }
}

CAUSEWAY_SIMD_CLONES
void attention_scores_backward(float* d_q, float* d_k, const float* d_scores, const float* q,
                               const float* k, int B, int T, int NH, int HS) {
  const int64_t C = static_cast<int64_t>(NH) * HS;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      for (int t = 0; t < T; ++t) {
        float* dq = d_q + (static_cast<int64_t>(b) * T + t) * C + h * HS;
        const float* ds = d_scores + ((static_cast<int64_t>(b) * NH + h) * T + t) * T;
#pragma omp simd
        for (int j = 0; j < HS; ++j) dq[j] = 0.0f;
        for (int s = 0; s <= t; ++s) {
          const float g = ds[s] * scale;
          const float* ks = k + (static_cast<int64_t>(b) * T + s) * C + h * HS;
#pragma omp simd
          for (int j = 0; j < HS; ++j) dq[j] += g * ks[j];
        }
      }
      for (int s = 0; s < T; ++s) {
        float* dk = d_k + (static_cast<int64_t>(b) * T + s) * C + h * HS;
#pragma omp simd
        for (int j = 0; j < HS; ++j) dk[j] = 0.0f;
        for (int t = s; t < T; ++t) {
          const float g = d_scores[((static_cast<int64_t>(b) * NH + h) * T + t) * T + s] * scale;
          const float* qt = q + (static_cast<int64_t>(b) * T + t) * C + h * HS;
#pragma omp simd
          for (int j = 0; j < HS; ++j) dk[j] += g * qt[j];
        }
      }
    }
}

}  // namespace causeway::cpu
