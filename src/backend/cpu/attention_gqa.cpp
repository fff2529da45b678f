// Grouped-query attention with optional soft-cap and sliding window (ops_attention_gqa.h).
// Same layout as attention.cpp: parallel over (batch, head, query row), head-dim loops
// vectorized; the backward runs per (batch, kv group) so the group's d_k / d_v sums need no
// atomics.
#include <cmath>
#include <limits>

#include "backend/cpu/vec_math.h"
#include "backend/ops_attention_gqa.h"

namespace causeway::cpu {

namespace {

// First visible key of position t: 0 when causal, else the oldest of the last `window`.
inline int first_key(int t, int window) {
  return window > 0 && t - window + 1 > 0 ? t - window + 1 : 0;
}

}  // namespace

CAUSEWAY_SIMD_CLONES
void attention_scores_gqa_forward(float* scores, const float* q, const float* k, int B, int T,
                                  int NH, int NKV, int HS, float scale, float softcap,
                                  int window, int q_begin) {
  const int64_t Cq = static_cast<int64_t>(NH) * HS;
  const int64_t Ckv = static_cast<int64_t>(NKV) * HS;
  const int group = NH / NKV;
  const int Tq = T - q_begin;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const float inv_cap = softcap > 0.0f ? 1.0f / softcap : 0.0f;
#pragma omp parallel for collapse(3) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < Tq; ++i) {
        const int t = q_begin + i;
        const int s0 = first_key(t, window);
        const float* qt = q + (static_cast<int64_t>(b) * Tq + i) * Cq + h * HS;
        float* row = scores + ((static_cast<int64_t>(b) * NH + h) * Tq + i) * T;
        const float* kb = k + static_cast<int64_t>(b) * T * Ckv + (h / group) * HS;
        for (int s = 0; s < s0; ++s) row[s] = neg_inf;
        for (int s = s0; s <= t; ++s) {
          const float* ks = kb + s * Ckv;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int j = 0; j < HS; ++j) dot += qt[j] * ks[j];
          const float x = dot * scale;
          row[s] = softcap > 0.0f ? softcap * tanh_approx(x * inv_cap) : x;
        }
        for (int s = t + 1; s < T; ++s) row[s] = neg_inf;
      }
}

CAUSEWAY_SIMD_CLONES
void attention_values_gqa_forward(float* z, const float* pattern, const float* v, int B, int T,
                                  int NH, int NKV, int HS, int q_begin) {
  const int64_t Cq = static_cast<int64_t>(NH) * HS;
  const int64_t Ckv = static_cast<int64_t>(NKV) * HS;
  const int group = NH / NKV;
  const int Tq = T - q_begin;
#pragma omp parallel for collapse(3) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < Tq; ++i)
      for (int h = 0; h < NH; ++h) {
        const float* p = pattern + ((static_cast<int64_t>(b) * NH + h) * Tq + i) * T;
        float* zt = z + (static_cast<int64_t>(b) * Tq + i) * Cq + h * HS;
        const float* vb = v + static_cast<int64_t>(b) * T * Ckv + (h / group) * HS;
#pragma omp simd
        for (int j = 0; j < HS; ++j) zt[j] = 0.0f;
        // A hook may have put weight on future keys; honour it rather than assume causality.
        for (int s = 0; s < T; ++s) {
          const float w = p[s];
          if (w == 0.0f) continue;
          const float* vs = vb + s * Ckv;
#pragma omp simd
          for (int j = 0; j < HS; ++j) zt[j] += w * vs[j];
        }
      }
}

CAUSEWAY_SIMD_CLONES
void attention_values_gqa_backward(float* d_pattern, float* d_v, const float* d_z,
                                   const float* pattern, const float* v, int B, int T, int NH,
                                   int NKV, int HS) {
  const int64_t Cq = static_cast<int64_t>(NH) * HS;
  const int64_t Ckv = static_cast<int64_t>(NKV) * HS;
  const int group = NH / NKV;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int g = 0; g < NKV; ++g) {
      const float* vb = v + static_cast<int64_t>(b) * T * Ckv + g * HS;
      float* dvb = d_v + static_cast<int64_t>(b) * T * Ckv + g * HS;
      for (int s = 0; s < T; ++s) {
#pragma omp simd
        for (int j = 0; j < HS; ++j) dvb[s * Ckv + j] = 0.0f;
      }
      for (int h = g * group; h < (g + 1) * group; ++h)
        for (int t = 0; t < T; ++t) {
          const float* dz = d_z + (static_cast<int64_t>(b) * T + t) * Cq + h * HS;
          const int64_t r = ((static_cast<int64_t>(b) * NH + h) * T + t) * T;
          for (int s = 0; s < T; ++s) {
            const float* vs = vb + s * Ckv;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < HS; ++j) dot += dz[j] * vs[j];
            d_pattern[r + s] = dot;
            const float w = pattern[r + s];
            if (w == 0.0f) continue;
            float* dv = dvb + s * Ckv;
#pragma omp simd
            for (int j = 0; j < HS; ++j) dv[j] += w * dz[j];
          }
        }
    }
}

CAUSEWAY_SIMD_CLONES
void attention_scores_gqa_backward(float* d_q, float* d_k, const float* d_scores, const float* q,
                                   const float* k, int B, int T, int NH, int NKV, int HS,
                                   float scale, float softcap, int window) {
  const int64_t Cq = static_cast<int64_t>(NH) * HS;
  const int64_t Ckv = static_cast<int64_t>(NKV) * HS;
  const int group = NH / NKV;
  const float inv_cap = softcap > 0.0f ? 1.0f / softcap : 0.0f;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int g = 0; g < NKV; ++g) {
      const float* kb = k + static_cast<int64_t>(b) * T * Ckv + g * HS;
      float* dkb = d_k + static_cast<int64_t>(b) * T * Ckv + g * HS;
      for (int s = 0; s < T; ++s) {
#pragma omp simd
        for (int j = 0; j < HS; ++j) dkb[s * Ckv + j] = 0.0f;
      }
      for (int h = g * group; h < (g + 1) * group; ++h)
        for (int t = 0; t < T; ++t) {
          const float* qt = q + (static_cast<int64_t>(b) * T + t) * Cq + h * HS;
          float* dq = d_q + (static_cast<int64_t>(b) * T + t) * Cq + h * HS;
          const float* ds = d_scores + ((static_cast<int64_t>(b) * NH + h) * T + t) * T;
#pragma omp simd
          for (int j = 0; j < HS; ++j) dq[j] = 0.0f;
          for (int s = first_key(t, window); s <= t; ++s) {
            const float* ks = kb + s * Ckv;
            float gr = ds[s] * scale;
            if (softcap > 0.0f) {
              float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
              for (int j = 0; j < HS; ++j) dot += qt[j] * ks[j];
              const float th = tanh_approx(dot * scale * inv_cap);
              gr *= 1.0f - th * th;
            }
            float* dk = dkb + s * Ckv;
#pragma omp simd
            for (int j = 0; j < HS; ++j) {
              dq[j] += gr * ks[j];
              dk[j] += gr * qt[j];
            }
          }
        }
    }
}

}  // namespace causeway::cpu
