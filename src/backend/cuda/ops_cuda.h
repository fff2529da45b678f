// The CUDA op set: the free functions of backend/ops*.h, name for name and argument for
// argument, in namespace causeway::cuda. Every pointer is a device pointer (the weight data of
// a WeightMatrix included); shapes, layouts, aliasing rules and the overwrite / += contract are
// those documented in ops.h, ops_linear.h, ops_norms_gated.h, ops_rotary.h and
// ops_attention_gqa.h. Ops are queued on the default stream and return before the GPU is done,
// except the ones that validate token ids (embedding_forward with a WeightMatrix, unembed_rows),
// which read a flag back. Plain C++, so host code can include it.
#pragma once

#include <cstdint>

#include "backend/ops_norms_gated.h"
#include "backend/weight_matrix.h"

namespace causeway::cuda {

// embedding.cu
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int C);
void position_embedding_forward(float* out, const float* table, int B, int T, int C);
void embedding_backward(float* d_table, const float* d_out, const int32_t* ids, int64_t N, int C);
void position_embedding_backward(float* d_table, const float* d_out, int B, int T, int C);
// residual.cu
void add_forward(float* out, const float* a, const float* b, int64_t n);
// layernorm.cu
void layernorm_stats(float* mean, float* rstd, const float* inp, int64_t N, int C, float eps);
void layernorm_apply(float* out, const float* inp, const float* mean, const float* rstd,
                     const float* weight, const float* bias, int64_t N, int C);
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int64_t N, int C, float eps);
void layernorm_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                        const float* inp, const float* mean, const float* rstd,
                        const float* weight, int64_t N, int C);
// matmul.cu
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int64_t N, int IC, int OC);
void matmul_transposed_forward(float* out, const float* inp, const float* weight, int64_t N,
                               int IC, int OC);
void matmul_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                     const float* inp, const float* weight, int64_t N, int IC, int OC);
void matmul_transposed_backward(float* d_inp, float* d_weight, const float* d_out,
                                const float* inp, const float* weight, int64_t N, int IC, int OC);
// Column sums of d_out (N, OC) added to d_bias (OC); shared by matmul and linear backward.
void bias_backward(float* d_bias, const float* d_out, int64_t N, int64_t OC, const char* op);
// Every row of out (N, OC) = bias (OC).
void broadcast_bias(float* out, const float* bias, int64_t N, int64_t OC, const char* op);
// gelu.cu
void gelu_forward(float* out, const float* inp, int64_t n);
void gelu_erf_forward(float* out, const float* inp, int64_t n);
void gelu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n);
void gelu_erf_backward(float* d_inp, const float* d_out, const float* inp, int64_t n);
// attention.cu
void attention_scores_forward(float* scores, const float* q, const float* k, int B, int T,
                              int NH, int HS, int q_begin);
void attention_softmax_forward(float* pattern, const float* scores, int B, int NH, int T,
                               int q_begin);
void attention_values_forward(float* z, const float* pattern, const float* v, int B, int T,
                              int NH, int HS, int q_begin);
void attention_result_forward(float* result, const float* z, const float* W_O, int64_t N, int NH,
                              int HS, int C);
void sum_heads_forward(float* out, const float* result, const float* bias, int64_t N, int NH,
                       int C);
void attention_values_backward(float* d_pattern, float* d_v, const float* d_z, const float* pattern,
                               const float* v, int B, int T, int NH, int HS);
void attention_softmax_backward(float* d_scores, const float* d_pattern, const float* pattern,
                                int B, int NH, int T);
void attention_scores_backward(float* d_q, float* d_k, const float* d_scores, const float* q,
                               const float* k, int B, int T, int NH, int HS);
// attention_gqa.cu
void attention_scores_gqa_forward(float* scores, const float* q, const float* k, int B, int T,
                                  int NH, int NKV, int HS, float scale, float softcap, int window,
                                  int q_begin);
void attention_values_gqa_forward(float* z, const float* pattern, const float* v, int B, int T,
                                  int NH, int NKV, int HS, int q_begin);
void attention_values_gqa_backward(float* d_pattern, float* d_v, const float* d_z,
                                   const float* pattern, const float* v, int B, int T, int NH,
                                   int NKV, int HS);
void attention_scores_gqa_backward(float* d_q, float* d_k, const float* d_scores, const float* q,
                                   const float* k, int B, int T, int NH, int NKV, int HS,
                                   float scale, float softcap, int window);
// linear.cu
void linear_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                    int64_t N);
void linear_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                     const float* inp, const WeightMatrix& W, int64_t N);
void attention_result_forward(float* result, const float* z, const WeightMatrix& W_O, int64_t N,
                              int NH, int HS);
void linear_heads_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                          int64_t N, int H);
void linear_heads_backward(float* d_inp, const float* d_out, const WeightMatrix& W, int64_t N,
                           int H);
void embedding_forward(float* out, const int32_t* ids, const WeightMatrix& table, int64_t N,
                       float scale);
void unembed_rows(float* out, const float* x, const WeightMatrix& W_U, const int32_t* tokens, int n,
                  int64_t B);
// norms_gated.cu
void rmsnorm_stats(float* scale, const float* inp, int64_t N, int C, float eps);
void rmsnorm_apply(float* out, const float* inp, const float* scale, const float* weight,
                   int64_t N, int C);
void rmsnorm_backward(float* d_inp, float* d_weight, const float* d_out, const float* inp,
                      const float* scale, const float* weight, int64_t N, int C);
void silu_forward(float* out, const float* inp, int64_t n);
void silu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n);
void gated_forward(float* out, const float* gate, const float* up, int64_t n,
                   cpu::GatedActivation activation);
void gated_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                    const float* up, int64_t n, cpu::GatedActivation activation);
void softcap_forward(float* out, const float* inp, int64_t n, float cap);
void softcap_backward(float* d_inp, const float* d_out, const float* inp, int64_t n, float cap);
// rotary.cu (inv_freq: a device array of rotary_dim / 2 floats, from cpu::rotary_inv_freq)
void rotary_forward(float* out, const float* inp, const int32_t* positions, int64_t N, int NH,
                    int HS, int rotary_dim, const float* inv_freq);
void rotary_backward(float* d_inp, const float* d_out, const int32_t* positions, int64_t N,
                     int NH, int HS, int rotary_dim, const float* inv_freq);
// half_precision.cu: out[i] = src[i] widened to fp32 (F32, BF16 or F16 on the device).
void widen_to_f32(float* out, const void* src, DType dtype, int64_t n);
// tile (rows, cols) compact = the 16-bit or fp32 matrix at src + offset with row stride ld,
// rows r0.., columns c0.. (element (r, c) at offset + (r0 + r) * ld + c0 + c), widened.
void widen_tile(float* tile, const void* src, DType dtype, int64_t offset, int64_t ld, int64_t r0,
                int64_t rows, int64_t c0, int64_t cols);

}  // namespace causeway::cuda
