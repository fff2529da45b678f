// Linear maps over a WeightMatrix as the checkpoint stores it (backend/weight_matrix.h): fp32,
// bf16 or f16, in Hugging Face nn.Linear (out, in) or GPT-2 Conv1D (in, out) layout. Compute is
// fp32 by default: 16-bit weights are widened to fp32 in cache-sized tiles inside the op, never
// as a whole matrix, so a bf16 model keeps half the memory of its fp32 copy. A run may choose
// bf16 dot products instead (SixteenBitCompute below).
// Shape letters as in ops.h: N = rows (B*T), NH = heads, HS = d_head, C = d_model, V = vocab;
// "in" and "out" are W.in and W.out. Activations, biases and gradients are row-major fp32.
// Backward ops overwrite activation gradients and accumulate (+=) parameter gradients.
#pragma once

#include <bit>
#include <cstdint>

#include "backend/weight_matrix.h"

namespace causeway::cpu {

// out (N, out) = inp (N, in) @ W^T + bias, i.e. out[n, o] = sum_i inp[n, i] * W(o, i) + bias[o].
//   bias (out) or null. out must not alias inp.
void linear_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                    int64_t N);
// Backward of linear_forward; any gradient pointer may be null (not computed).
//   d_inp (N, in)  = d_out @ W, overwritten.
//   d_weight       += dL/dW in W's own layout ((out, in) when W.out_major, else (in, out)), fp32.
//                     Only for an fp32 W: a bf16/f16 W with d_weight set throws
//                     std::invalid_argument before anything is written.
//   d_bias (out)   += column sums of d_out.
void linear_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                     const float* inp, const WeightMatrix& W, int64_t N);

// Per-head attention output (TransformerLens hook_result), no bias: with C = W_O.out and
// W_O.in = NH * HS, result[n, h, :] = z[n, h, :] @ (the rows h*HS..(h+1)*HS-1 of W_O as (in, out)),
// so sum over h of result[n, h, :] = linear_forward(z, W_O, no bias)[n, :].
//   z (N, NH, HS)   result (N, NH, C).   Throws std::invalid_argument when W_O.in != NH * HS.
void attention_result_forward(float* result, const float* z, const WeightMatrix& W_O, int64_t N,
                              int NH, int HS);

// Per-head inputs (TransformerLens' split q/k/v inputs): head h has its own input row and reads
// only output features h*HS..(h+1)*HS-1 of W, with HS = W.out / H:
//   out[n, h, :] = inp[n, h, :] @ (those features of W)^T + bias[h*HS..],
//   inp (N, H, in)   out (N, H, HS)   bias (H * HS) or null. Throws std::invalid_argument when
//   H does not divide W.out.
void linear_heads_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                          int64_t N, int H);
// Input gradient of linear_heads_forward, head-major so each head's rows are contiguous:
// d_inp[h, n, :] = d_out[n, h, :] @ (head h's features of W), overwritten.
//   d_out (N, H, HS)   d_inp (H, N, in).
void linear_heads_backward(float* d_inp, const float* d_out, const WeightMatrix& W, int64_t N,
                           int H);

// Token rows of a table held as a WeightMatrix with out = V (one output feature per token) and
// in = C: token v's vector is W(v, :), i.e. row v of a (V, C) table stored out_major (every
// Hugging Face embedding and lm_head), or column v when stored (C, V). The same WeightMatrix
// serves a tied embedding and unembedding.
//   out[n, :] = table(ids[n], :) * scale, widened to fp32.   ids (N), out (N, C).
// Throws std::out_of_range when an id is outside [0, V), before writing anything.
void embedding_forward(float* out, const int32_t* ids, const WeightMatrix& table, int64_t N,
                       float scale);
// Logits of just a few tokens: out[b, j] = x[b, :] . W_U(tokens[j], :), with W_U a table as
// above (out = V, in = C, any dtype and layout).
//   x (B, C)   tokens (n)   out (B, n).   Throws std::out_of_range for a token outside [0, V).
void unembed_rows(float* out, const float* x, const WeightMatrix& W_U, const int32_t* tokens, int n,
                  int64_t B);

// How bf16 weight matrices are multiplied, process-wide (the run's `[model] compute`).
//   Exact (the default): widened to fp32, so results equal fp32 on the rounded weights.
//   BF16: on the CPU's bf16 dot products where it has them (bf16_dot_products_available() in
//     cpu/bf16_dot_gemm.h), which also rounds the activations to bf16 (8-bit mantissa):
//     each product then carries up to 2^-8 relative error, summed in fp32. Where the CPU has
//     none, and for f16 weights, BF16 computes as Exact.
enum class SixteenBitCompute { Exact, BF16 };
void set_sixteen_bit_compute(SixteenBitCompute compute);
SixteenBitCompute sixteen_bit_compute();
// True when BF16 would run on bf16 dot products in this process (else it computes as Exact).
bool bf16_compute_native();

// 16-bit float words. Widening is exact; narrowing rounds to nearest, ties to even, overflows to
// inf and keeps NaN a (quiet) NaN. The widenings are inline and branch-free so that the loops
// over a weight tile vectorize.
inline float bf16_to_f32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}
uint16_t f32_to_bf16(float x);

// IEEE binary16: normals, subnormals (down to 2^-24), inf and NaN.
inline float f16_to_f32(uint16_t h) {
  constexpr uint32_t kExpMask = 0x7C00u << 13;  // the half's exponent field, shifted into place
  const uint32_t magnitude = (h & 0x7FFFu) << 13;
  const uint32_t exp = magnitude & kExpMask;
  const uint32_t rebiased = magnitude + (112u << 23);  // exponent bias 15 -> 127
  // Subnormal half m * 2^-24: build 2^-14 * (1 + m/1024) as a normal float and subtract 2^-14,
  // exact, and without fp32 subnormals (which a DAZ-flushed FPU would read as zero).
  const float subnormal = std::bit_cast<float>(rebiased + (1u << 23)) - 0x1p-14f;
  // Inf / NaN: the all-ones half exponent becomes the all-ones float exponent.
  const float normal = std::bit_cast<float>(rebiased + (exp == kExpMask ? (112u << 23) : 0u));
  const float f = exp == 0 ? subnormal : normal;
  return std::bit_cast<float>(std::bit_cast<uint32_t>(f) |
                              (static_cast<uint32_t>(h & 0x8000u) << 16));
}
uint16_t f32_to_f16(float x);

// out[i] = src[i] widened to fp32, for src fp32, bf16 or f16 words. Throws std::invalid_argument
// for any other dtype.
void widen_to_f32(float* out, const void* src, DType dtype, int64_t n);

}  // namespace causeway::cpu
