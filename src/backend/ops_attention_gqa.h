// Attention for the decoder families beyond GPT-2 (issue 11), as TransformerLens 3.9 computes
// it: grouped-query heads, Gemma 2's score soft-capping and sliding windows, and a scale that
// is a parameter (Gemma 2 scales by 1/sqrt(query_pre_attn_scalar), not 1/sqrt(d_head)).
// Shape letters as in ops.h; NKV = key/value heads (NKV divides NH; NKV == NH is plain
// multi-head attention). Query head h reads kv head h / (NH / NKV), TL's repeat_interleave.
// The softmax step is attention_softmax_forward / _backward of ops.h: a row with every key
// masked gives a pattern of zeros, and masked entries get gradient 0.
#pragma once

#include <cstdint>

namespace causeway::cpu {

// scores[b, h, i, j] = softcap(scale * q[b, i, h, :] . k[b, j, h / (NH / NKV), :]) for visible
// keys, -inf otherwise (the query at row i is position t = q_begin + i).
//   q: (B, T - q_begin, NH, HS)   k: (B, T, NKV, HS)   scores: (B, NH, T - q_begin, T)
// scale multiplies the dot product (1 / attn_scale in TL's terms). softcap > 0 replaces s by
// softcap * tanh(s / softcap), applied before the mask, as TL does; 0 = no cap.
// window > 0: key j visible from position t iff t - window < j <= t; 0: plain causal j <= t.
// Nothing aliases.
void attention_scores_gqa_forward(float* scores, const float* q, const float* k, int B, int T,
                                  int NH, int NKV, int HS, float scale, float softcap,
                                  int window, int q_begin = 0);

// z[b, i, h, :] = sum over j of pattern[b, h, i, j] * v[b, j, h / (NH / NKV), :]. Every key
// is read (a hook may have put weight on masked keys).
//   pattern: (B, NH, T - q_begin, T)   v: (B, T, NKV, HS)   z: (B, T - q_begin, NH, HS)
void attention_values_gqa_forward(float* z, const float* pattern, const float* v, int B, int T,
                                  int NH, int NKV, int HS, int q_begin = 0);

// Backward over all T queries (q_begin 0); outputs overwritten, nothing aliases.
// d_pattern (B, NH, T, T) = d_z . v; d_v (B, T, NKV, HS) sums over the NH / NKV query heads
// that share each kv head.
void attention_values_gqa_backward(float* d_pattern, float* d_v, const float* d_z,
                                   const float* pattern, const float* v, int B, int T, int NH,
                                   int NKV, int HS);
// d_q (B, T, NH, HS), d_k (B, T, NKV, HS, summed over the heads of a group) from d_scores
// (B, NH, T, T). Masked entries carry no gradient whatever d_scores holds there. With a cap,
// the derivative 1 - tanh^2(scale * q.k / softcap) is recomputed from q and k, not read from
// the scores, which a hook may have replaced. Same scale / softcap / window as the forward.
void attention_scores_gqa_backward(float* d_q, float* d_k, const float* d_scores, const float* q,
                                   const float* k, int B, int T, int NH, int NKV, int HS,
                                   float scale, float softcap, int window);

}  // namespace causeway::cpu
