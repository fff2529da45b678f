// One interface over the op set (ops.h), one implementation per device, so the model is
// written once. Methods mirror the free functions of ops.h name for name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/ops_norms_gated.h"
#include "backend/weight_matrix.h"
#include "core/tensor.h"

namespace causeway {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual const char* name() const = 0;

  virtual void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N,
                                 int C) const = 0;
  virtual void position_embedding_forward(float* out, const float* table, int B, int T,
                                          int C) const = 0;
  virtual void add_forward(float* out, const float* a, const float* b, int64_t n) const = 0;
  virtual void layernorm_stats(float* mean, float* rstd, const float* inp, int64_t N, int C,
                               float eps) const = 0;
  virtual void layernorm_apply(float* out, const float* inp, const float* mean, const float* rstd,
                               const float* weight, const float* bias, int64_t N,
                               int C) const = 0;
  virtual void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                 const float* weight, const float* bias, int64_t N, int C,
                                 float eps) const = 0;
  virtual void matmul_forward(float* out, const float* inp, const float* weight,
                              const float* bias, int64_t N, int IC, int OC) const = 0;
  virtual void matmul_transposed_forward(float* out, const float* inp, const float* weight,
                                         int64_t N, int IC, int OC) const = 0;
  virtual void gelu_forward(float* out, const float* inp, int64_t n) const = 0;
  virtual void gelu_erf_forward(float* out, const float* inp, int64_t n) const = 0;
  virtual void attention_scores_forward(float* scores, const float* q, const float* k, int B,
                                        int T, int NH, int HS, int q_begin) const = 0;
  virtual void attention_softmax_forward(float* pattern, const float* scores, int B, int NH,
                                         int T, int q_begin) const = 0;
  virtual void attention_values_forward(float* z, const float* pattern, const float* v, int B,
                                        int T, int NH, int HS, int q_begin) const = 0;
  virtual void attention_result_forward(float* result, const float* z, const float* W_O,
                                        int64_t N, int NH, int HS, int C) const = 0;
  virtual void sum_heads_forward(float* out, const float* result, const float* bias, int64_t N,
                                 int NH, int C) const = 0;
  // The family ops (ops_linear.h, ops_norms_gated.h, ops_rotary.h, ops_attention_gqa.h).
  virtual void linear_forward(float* out, const float* inp, const WeightMatrix& W,
                              const float* bias, int64_t N) const = 0;
  virtual void linear_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                               const float* inp, const WeightMatrix& W, int64_t N) const = 0;
  virtual void attention_result_forward(float* result, const float* z, const WeightMatrix& W_O,
                                        int64_t N, int NH, int HS) const = 0;
  virtual void linear_heads_forward(float* out, const float* inp, const WeightMatrix& W,
                                    const float* bias, int64_t N, int H) const = 0;
  virtual void linear_heads_backward(float* d_inp, const float* d_out, const WeightMatrix& W,
                                     int64_t N, int H) const = 0;
  virtual void embedding_forward(float* out, const int32_t* ids, const WeightMatrix& table,
                                 int64_t N, float scale) const = 0;
  virtual void unembed_rows(float* out, const float* x, const WeightMatrix& W_U,
                            const int32_t* tokens, int n, int64_t B) const = 0;
  virtual void rmsnorm_stats(float* scale, const float* inp, int64_t N, int C,
                             float eps) const = 0;
  virtual void rmsnorm_apply(float* out, const float* inp, const float* scale,
                             const float* weight, int64_t N, int C) const = 0;
  virtual void rmsnorm_backward(float* d_inp, float* d_weight, const float* d_out,
                                const float* inp, const float* scale, const float* weight,
                                int64_t N, int C) const = 0;
  virtual void silu_forward(float* out, const float* inp, int64_t n) const = 0;
  virtual void silu_backward(float* d_inp, const float* d_out, const float* inp,
                             int64_t n) const = 0;
  virtual void gated_forward(float* out, const float* gate, const float* up, int64_t n,
                             cpu::GatedActivation activation) const = 0;
  virtual void gated_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                              const float* up, int64_t n,
                              cpu::GatedActivation activation) const = 0;
  virtual void softcap_forward(float* out, const float* inp, int64_t n, float cap) const = 0;
  virtual void softcap_backward(float* d_inp, const float* d_out, const float* inp, int64_t n,
                                float cap) const = 0;
  virtual void rotary_forward(float* out, const float* inp, const int32_t* positions, int64_t N,
                              int NH, int HS, int rotary_dim, const float* inv_freq) const = 0;
  virtual void rotary_backward(float* d_inp, const float* d_out, const int32_t* positions,
                               int64_t N, int NH, int HS, int rotary_dim,
                               const float* inv_freq) const = 0;
  virtual void attention_scores_gqa_forward(float* scores, const float* q, const float* k, int B,
                                            int T, int NH, int NKV, int HS, float scale,
                                            float softcap, int window, int q_begin) const = 0;
  virtual void attention_values_gqa_forward(float* z, const float* pattern, const float* v,
                                            int B, int T, int NH, int NKV, int HS,
                                            int q_begin) const = 0;
  virtual void attention_values_gqa_backward(float* d_pattern, float* d_v, const float* d_z,
                                             const float* pattern, const float* v, int B, int T,
                                             int NH, int NKV, int HS) const = 0;
  virtual void attention_scores_gqa_backward(float* d_q, float* d_k, const float* d_scores,
                                             const float* q, const float* k, int B, int T,
                                             int NH, int NKV, int HS, float scale,
                                             float softcap, int window) const = 0;
  virtual void embedding_backward(float* d_table, const float* d_out, const int32_t* ids, int64_t N, int C) const = 0;
  virtual void position_embedding_backward(float* d_table, const float* d_out, int B, int T, int C) const = 0;
  virtual void layernorm_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out, const float* inp, const float* mean, const float* rstd, const float* weight, int64_t N, int C) const = 0;
  virtual void matmul_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out, const float* inp, const float* weight, int64_t N, int IC, int OC) const = 0;
  virtual void matmul_transposed_backward(float* d_inp, float* d_weight, const float* d_out, const float* inp, const float* weight, int64_t N, int IC, int OC) const = 0;
  virtual void gelu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) const = 0;
  virtual void gelu_erf_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) const = 0;
  virtual void attention_values_backward(float* d_pattern, float* d_v, const float* d_z, const float* pattern, const float* v, int B, int T, int NH, int HS) const = 0;
  virtual void attention_softmax_backward(float* d_scores, const float* d_pattern, const float* pattern, int B, int NH, int T) const = 0;
  virtual void attention_scores_backward(float* d_q, float* d_k, const float* d_scores, const float* q, const float* k, int B, int T, int NH, int HS) const = 0;
};

// The CPU backend (OpenBLAS + OpenMP); `threads` <= 0 keeps the runtime's default.
std::unique_ptr<Backend> make_cpu_backend();
// Sets OpenMP's and OpenBLAS's thread counts together so the two pools do not fight.
void set_cpu_threads(int threads);
int cpu_threads();

#ifdef CAUSEWAY_HAVE_CUDA
// Whether a CUDA GPU can be used here; false (with the runtime's reason in *why) when there is
// no driver, no device, or the runtime fails. Safe to call on machines without a GPU.
bool cuda_device_available(std::string* why);
// The CUDA backend on GPU `device` (its pointers are device pointers, see
// backend/cuda/ops_cuda.h). Throws causeway::Error when no GPU is available.
std::unique_ptr<Backend> make_cuda_backend(int device);
#endif

}  // namespace causeway
