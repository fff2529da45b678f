// The op set of a transformer forward and its backward (GPT-2's here, the other families'
// in the headers included below).
// Shape letters: N = rows (B*T), B = batch, T = positions, C = d_model, NH = heads,
// HS = d_head, OC/IC = out/in features, V = vocab. All tensors are row-major fp32.
// The CUDA backend provides the same names and signatures in namespace causeway::cuda.
#pragma once

#include <cstdint>

// The ops of the other model families (issue 11): rotary embeddings, RMSNorm, gated MLPs,
// soft-capping, grouped-query and sliding-window attention.
#include "backend/ops_attention_gqa.h"
#include "backend/ops_norms_gated.h"
#include "backend/ops_rotary.h"

namespace causeway::cpu {

// out[n, :] = table[ids[n], :]                                  table (V, C), out (N, C)
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int C);
// out[b, t, :] = table[t, :]                                    table (P, C), out (B, T, C)
void position_embedding_forward(float* out, const float* table, int B, int T, int C);

// out = a + b, elementwise; out may alias a.
void add_forward(float* out, const float* a, const float* b, int64_t n);

// LayerNorm as TransformerLens splits it: stats (mean, rstd = 1/sqrt(var + eps)) then apply,
// so hook `ln.hook_scale` (= 1/rstd) can be read or replaced in between.
void layernorm_stats(float* mean, float* rstd, const float* inp, int64_t N, int C, float eps);
void layernorm_apply(float* out, const float* inp, const float* mean, const float* rstd,
                     const float* weight, const float* bias, int64_t N, int C);
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int64_t N, int C, float eps);

// out (N, OC) = inp (N, IC) @ weight (IC, OC) + bias (OC); bias may be null. Hugging Face
// GPT-2 stores Conv1D weights as (IC, OC), so they are used as read.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int64_t N, int IC, int OC);
// out (N, OC) = inp (N, IC) @ weight^T, weight (OC, IC): the tied unembedding (wte is (V, C)).
void matmul_transposed_forward(float* out, const float* inp, const float* weight, int64_t N,
                               int IC, int OC);

// GPT-2's tanh approximation of GELU ("gelu_new"); out may alias inp.
void gelu_forward(float* out, const float* inp, int64_t n);
// Exact erf GELU ("gelu").
void gelu_erf_forward(float* out, const float* inp, int64_t n);

// Causal self-attention in three hookable steps. Queries may cover only positions
// q_begin..T-1 (a patch at position p changes nothing before p, so only those rows are
// recomputed); keys and values always cover all T positions.
//   q, z: (B, T - q_begin, NH, HS)   k, v: (B, T, NH, HS)   scores, pattern: (B, NH, T - q_begin, T)
// Masked scores (key after query) are -inf and their pattern entries 0, as in TransformerLens.
void attention_scores_forward(float* scores, const float* q, const float* k, int B, int T,
                              int NH, int HS, int q_begin = 0);
void attention_softmax_forward(float* pattern, const float* scores, int B, int NH, int T,
                               int q_begin = 0);
void attention_values_forward(float* z, const float* pattern, const float* v, int B, int T,
                              int NH, int HS, int q_begin = 0);


// Backward of the ops above (activation gradients; weight gradients where a pointer is given).
// d_table[ids[n], :] += d_out[n, :] (rows may repeat a token)
void embedding_backward(float* d_table, const float* d_out, const int32_t* ids, int64_t N, int C);
// d_table[t, :] += sum over b of d_out[b, t, :]
void position_embedding_backward(float* d_table, const float* d_out, int B, int T, int C);
// d_inp += the input gradient; d_weight, d_bias += theirs (both null: activations only)
void layernorm_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out, const float* inp, const float* mean, const float* rstd, const float* weight, int64_t N, int C);
// d_inp = d_out @ weight^T (overwritten); d_weight, d_bias += theirs; any may be null
void matmul_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out, const float* inp, const float* weight, int64_t N, int IC, int OC);
// for matmul_transposed_forward: d_inp = d_out @ weight (overwritten); d_weight += d_out^T @ inp
void matmul_transposed_backward(float* d_inp, float* d_weight, const float* d_out, const float* inp, const float* weight, int64_t N, int IC, int OC);
// d_inp = d_out * gelu_new'(inp)
void gelu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n);
// d_inp = d_out * gelu'(inp)
void gelu_erf_backward(float* d_inp, const float* d_out, const float* inp, int64_t n);
// Backward of the three attention steps over all T queries (q_begin 0); outputs overwritten.
void attention_values_backward(float* d_pattern, float* d_v, const float* d_z, const float* pattern, const float* v, int B, int T, int NH, int HS);
void attention_softmax_backward(float* d_scores, const float* d_pattern, const float* pattern, int B, int NH, int T);
void attention_scores_backward(float* d_q, float* d_k, const float* d_scores, const float* q, const float* k, int B, int T, int NH, int HS);

}  // namespace causeway::cpu

namespace causeway::cpu {

// Per-head attention output (TransformerLens hook_result): result (N, NH, C) with
// result[n, h, :] = z[n, h, :] @ W_O[h*HS:(h+1)*HS, :]. W_O is (NH*HS, C).
void attention_result_forward(float* result, const float* z, const float* W_O, int64_t N, int NH,
                              int HS, int C);
// out (N, C) = sum over heads of result (N, NH, C) + bias (C); bias may be null.
void sum_heads_forward(float* out, const float* result, const float* bias, int64_t N, int NH,
                       int C);

}  // namespace causeway::cpu
