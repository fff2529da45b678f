// Grouped-query attention with optional soft-cap and sliding window (ops_attention_gqa.h),
// materializing scores and pattern so both can be hooked. Simple kernels, one thread per output
// element, each summing in a fixed order (no atomics): correct first; a flash-style kernel for
// long contexts is later work (issue 14).
#include <cmath>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

// First visible key of position t: 0 when causal, else the oldest of the last `window`.
__device__ inline int first_key(int t, int window) {
  return window > 0 && t - window + 1 > 0 ? t - window + 1 : 0;
}

__device__ inline float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}

// scores (B, NH, Tq, T): one thread per entry.
__global__ void scores_kernel(float* scores, const float* q, const float* k, int B, int T, int NH,
                              int NKV, int HS, float scale, float softcap, int window,
                              int q_begin) {
  const int Tq = T - q_begin;
  const int group = NH / NKV;
  const int64_t Cq = static_cast<int64_t>(NH) * HS, Ckv = static_cast<int64_t>(NKV) * HS;
  CAUSEWAY_GRID_STRIDE(idx, static_cast<int64_t>(B) * NH * Tq * T) {
    const int s = static_cast<int>(idx % T);
    const int i = static_cast<int>((idx / T) % Tq);
    const int h = static_cast<int>((idx / (static_cast<int64_t>(T) * Tq)) % NH);
    const int b = static_cast<int>(idx / (static_cast<int64_t>(T) * Tq * NH));
    const int t = q_begin + i;
    if (s < first_key(t, window) || s > t) {
      scores[idx] = -INFINITY;
      continue;
    }
    const float x = dot(q + (static_cast<int64_t>(b) * Tq + i) * Cq + h * HS,
                        k + (static_cast<int64_t>(b) * T + s) * Ckv + (h / group) * HS, HS) *
                    scale;
    scores[idx] = softcap > 0.0f ? softcap * tanhf(x / softcap) : x;
  }
}

// z (B, Tq, NH, HS): one thread per entry; every key is read (a hook may weight masked keys).
__global__ void values_kernel(float* z, const float* pattern, const float* v, int B, int T,
                              int NH, int NKV, int HS, int q_begin) {
  const int Tq = T - q_begin;
  const int group = NH / NKV;
  const int64_t Ckv = static_cast<int64_t>(NKV) * HS;
  CAUSEWAY_GRID_STRIDE(idx, static_cast<int64_t>(B) * Tq * NH * HS) {
    const int j = static_cast<int>(idx % HS);
    const int h = static_cast<int>((idx / HS) % NH);
    const int i = static_cast<int>((idx / (static_cast<int64_t>(HS) * NH)) % Tq);
    const int b = static_cast<int>(idx / (static_cast<int64_t>(HS) * NH * Tq));
    const float* p = pattern + ((static_cast<int64_t>(b) * NH + h) * Tq + i) * T;
    const float* vb = v + static_cast<int64_t>(b) * T * Ckv + (h / group) * HS + j;
    float acc = 0.0f;
    for (int s = 0; s < T; ++s) acc += p[s] * vb[s * Ckv];
    z[idx] = acc;
  }
}

// d_pattern (B, NH, T, T) = d_z . v
__global__ void d_pattern_kernel(float* d_pattern, const float* d_z, const float* v, int B, int T,
                                 int NH, int NKV, int HS) {
  const int group = NH / NKV;
  const int64_t Cq = static_cast<int64_t>(NH) * HS, Ckv = static_cast<int64_t>(NKV) * HS;
  CAUSEWAY_GRID_STRIDE(idx, static_cast<int64_t>(B) * NH * T * T) {
    const int s = static_cast<int>(idx % T);
    const int t = static_cast<int>((idx / T) % T);
    const int h = static_cast<int>((idx / (static_cast<int64_t>(T) * T)) % NH);
    const int b = static_cast<int>(idx / (static_cast<int64_t>(T) * T * NH));
    d_pattern[idx] = dot(d_z + (static_cast<int64_t>(b) * T + t) * Cq + h * HS,
                         v + (static_cast<int64_t>(b) * T + s) * Ckv + (h / group) * HS, HS);
  }
}

// d_v (B, T, NKV, HS) = sum over the group's heads h and queries t of pattern * d_z.
__global__ void d_v_kernel(float* d_v, const float* d_z, const float* pattern, int B, int T,
                           int NH, int NKV, int HS) {
  const int group = NH / NKV;
  const int64_t Cq = static_cast<int64_t>(NH) * HS;
  CAUSEWAY_GRID_STRIDE(idx, static_cast<int64_t>(B) * T * NKV * HS) {
    const int j = static_cast<int>(idx % HS);
    const int g = static_cast<int>((idx / HS) % NKV);
    const int s = static_cast<int>((idx / (static_cast<int64_t>(HS) * NKV)) % T);
    const int b = static_cast<int>(idx / (static_cast<int64_t>(HS) * NKV * T));
    float acc = 0.0f;
    for (int h = g * group; h < (g + 1) * group; ++h)
      for (int t = 0; t < T; ++t)
        acc += pattern[((static_cast<int64_t>(b) * NH + h) * T + t) * T + s] *
               d_z[(static_cast<int64_t>(b) * T + t) * Cq + h * HS + j];
    d_v[idx] = acc;
  }
}

// The score gradient of visible entry (t, s), through the cap (recomputed from q and k, not
// read from scores, which a hook may have replaced).
__device__ inline float score_grad(const float* d_scores, const float* qt, const float* ks,
                                   int64_t r, int HS, float scale, float softcap) {
  float g = d_scores[r] * scale;
  if (softcap > 0.0f) {
    const float th = tanhf(dot(qt, ks, HS) * scale / softcap);
    g *= 1.0f - th * th;
  }
  return g;
}

// d_q (B, T, NH, HS) = sum over visible s of grad(t, s) * k[s].
__global__ void d_q_kernel(float* d_q, const float* d_scores, const float* q, const float* k,
                           int B, int T, int NH, int NKV, int HS, float scale, float softcap,
                           int window) {
  const int group = NH / NKV;
  const int64_t Cq = static_cast<int64_t>(NH) * HS, Ckv = static_cast<int64_t>(NKV) * HS;
  CAUSEWAY_GRID_STRIDE(idx, static_cast<int64_t>(B) * T * NH * HS) {
    const int j = static_cast<int>(idx % HS);
    const int h = static_cast<int>((idx / HS) % NH);
    const int t = static_cast<int>((idx / (static_cast<int64_t>(HS) * NH)) % T);
    const int b = static_cast<int>(idx / (static_cast<int64_t>(HS) * NH * T));
    const float* qt = q + (static_cast<int64_t>(b) * T + t) * Cq + h * HS;
    const float* kb = k + static_cast<int64_t>(b) * T * Ckv + (h / group) * HS;
    const int64_t row = ((static_cast<int64_t>(b) * NH + h) * T + t) * T;
    float acc = 0.0f;
    for (int s = first_key(t, window); s <= t; ++s)
      acc += score_grad(d_scores, qt, kb + s * Ckv, row + s, HS, scale, softcap) * kb[s * Ckv + j];
    d_q[idx] = acc;
  }
}

// d_k (B, T, NKV, HS) = sum over the group's heads and the queries t that see s.
__global__ void d_k_kernel(float* d_k, const float* d_scores, const float* q, const float* k,
                           int B, int T, int NH, int NKV, int HS, float scale, float softcap,
                           int window) {
  const int group = NH / NKV;
  const int64_t Cq = static_cast<int64_t>(NH) * HS, Ckv = static_cast<int64_t>(NKV) * HS;
  CAUSEWAY_GRID_STRIDE(idx, static_cast<int64_t>(B) * T * NKV * HS) {
    const int j = static_cast<int>(idx % HS);
    const int g = static_cast<int>((idx / HS) % NKV);
    const int s = static_cast<int>((idx / (static_cast<int64_t>(HS) * NKV)) % T);
    const int b = static_cast<int>(idx / (static_cast<int64_t>(HS) * NKV * T));
    const float* ks = k + (static_cast<int64_t>(b) * T + s) * Ckv + g * HS;
    const int t_end = window > 0 && s + window < T ? s + window : T;  // t - window < s
    float acc = 0.0f;
    for (int h = g * group; h < (g + 1) * group; ++h)
      for (int t = s; t < t_end; ++t) {
        const float* qt = q + (static_cast<int64_t>(b) * T + t) * Cq + h * HS;
        const int64_t r = ((static_cast<int64_t>(b) * NH + h) * T + t) * T + s;
        acc += score_grad(d_scores, qt, ks, r, HS, scale, softcap) * qt[j];
      }
    d_k[idx] = acc;
  }
}

}  // namespace

void attention_scores_gqa_forward(float* scores, const float* q, const float* k, int B, int T,
                                  int NH, int NKV, int HS, float scale, float softcap, int window,
                                  int q_begin) {
  const int64_t n = static_cast<int64_t>(B) * NH * (T - q_begin) * T;
  if (n == 0) return;
  scores_kernel<<<blocks_for(n), kThreads>>>(scores, q, k, B, T, NH, NKV, HS, scale, softcap,
                                             window, q_begin);
  check_launch("attention_scores_gqa_forward");
}

void attention_values_gqa_forward(float* z, const float* pattern, const float* v, int B, int T,
                                  int NH, int NKV, int HS, int q_begin) {
  const int64_t n = static_cast<int64_t>(B) * (T - q_begin) * NH * HS;
  if (n == 0) return;
  values_kernel<<<blocks_for(n), kThreads>>>(z, pattern, v, B, T, NH, NKV, HS, q_begin);
  check_launch("attention_values_gqa_forward");
}

void attention_values_gqa_backward(float* d_pattern, float* d_v, const float* d_z,
                                   const float* pattern, const float* v, int B, int T, int NH,
                                   int NKV, int HS) {
  const int64_t np = static_cast<int64_t>(B) * NH * T * T;
  const int64_t nv = static_cast<int64_t>(B) * T * NKV * HS;
  if (np > 0) {
    d_pattern_kernel<<<blocks_for(np), kThreads>>>(d_pattern, d_z, v, B, T, NH, NKV, HS);
    check_launch("attention_values_gqa_backward (d_pattern)");
  }
  if (nv > 0) {
    d_v_kernel<<<blocks_for(nv), kThreads>>>(d_v, d_z, pattern, B, T, NH, NKV, HS);
    check_launch("attention_values_gqa_backward (d_v)");
  }
}

void attention_scores_gqa_backward(float* d_q, float* d_k, const float* d_scores, const float* q,
                                   const float* k, int B, int T, int NH, int NKV, int HS,
                                   float scale, float softcap, int window) {
  const int64_t nq = static_cast<int64_t>(B) * T * NH * HS;
  const int64_t nk = static_cast<int64_t>(B) * T * NKV * HS;
  if (nq > 0) {
    d_q_kernel<<<blocks_for(nq), kThreads>>>(d_q, d_scores, q, k, B, T, NH, NKV, HS, scale,
                                             softcap, window);
    check_launch("attention_scores_gqa_backward (d_q)");
  }
  if (nk > 0) {
    d_k_kernel<<<blocks_for(nk), kThreads>>>(d_k, d_scores, q, k, B, T, NH, NKV, HS, scale,
                                             softcap, window);
    check_launch("attention_scores_gqa_backward (d_k)");
  }
}

}  // namespace causeway::cuda
