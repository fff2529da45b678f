// The CUDA backend: the Backend interface over the ops of ops_cuda.h, every pointer a device
// pointer. Construction binds the calling thread to the device; ops run on that thread's
// default stream. Also the GPU probe, usable on machines with no GPU or no driver.
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway {

namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) {
    cuda::check(cudaSetDevice(device), ("cudaSetDevice(" + std::to_string(device) + ")").c_str());
    cuda::cublas_handle();  // created now, so a broken cuBLAS fails here rather than mid-forward
  }
  Device device() const override { return Device::CUDA; }
  const char* name() const override { return "cuda"; }

  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N,
                         int C) const override {
    cuda::embedding_forward(out, ids, table, N, C);
  }
  void position_embedding_forward(float* out, const float* table, int B, int T,
                                  int C) const override {
    cuda::position_embedding_forward(out, table, B, T, C);
  }
  void add_forward(float* out, const float* a, const float* b, int64_t n) const override {
    cuda::add_forward(out, a, b, n);
  }
  void layernorm_stats(float* mean, float* rstd, const float* inp, int64_t N, int C,
                       float eps) const override {
    cuda::layernorm_stats(mean, rstd, inp, N, C, eps);
  }
  void layernorm_apply(float* out, const float* inp, const float* mean, const float* rstd,
                       const float* weight, const float* bias, int64_t N, int C) const override {
    cuda::layernorm_apply(out, inp, mean, rstd, weight, bias, N, C);
  }
  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                         const float* weight, const float* bias, int64_t N, int C,
                         float eps) const override {
    cuda::layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
  }
  void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                      int64_t N, int IC, int OC) const override {
    cuda::matmul_forward(out, inp, weight, bias, N, IC, OC);
  }
  void matmul_transposed_forward(float* out, const float* inp, const float* weight, int64_t N,
                                 int IC, int OC) const override {
    cuda::matmul_transposed_forward(out, inp, weight, N, IC, OC);
  }
  void gelu_forward(float* out, const float* inp, int64_t n) const override {
    cuda::gelu_forward(out, inp, n);
  }
  void gelu_erf_forward(float* out, const float* inp, int64_t n) const override {
    cuda::gelu_erf_forward(out, inp, n);
  }
  void attention_scores_forward(float* scores, const float* q, const float* k, int B, int T,
                                int NH, int HS, int q_begin) const override {
    cuda::attention_scores_forward(scores, q, k, B, T, NH, HS, q_begin);
  }
  void attention_softmax_forward(float* pattern, const float* scores, int B, int NH, int T,
                                 int q_begin) const override {
    cuda::attention_softmax_forward(pattern, scores, B, NH, T, q_begin);
  }
  void attention_values_forward(float* z, const float* pattern, const float* v, int B, int T,
                                int NH, int HS, int q_begin) const override {
    cuda::attention_values_forward(z, pattern, v, B, T, NH, HS, q_begin);
  }
  void attention_result_forward(float* result, const float* z, const float* W_O, int64_t N,
                                int NH, int HS, int C) const override {
    cuda::attention_result_forward(result, z, W_O, N, NH, HS, C);
  }
  void sum_heads_forward(float* out, const float* result, const float* bias, int64_t N, int NH,
                         int C) const override {
    cuda::sum_heads_forward(out, result, bias, N, NH, C);
  }
  void embedding_backward(float* d_table, const float* d_out, const int32_t* ids, int64_t N, int C) const override {
    cuda::embedding_backward(d_table, d_out, ids, N, C);
  }
  void position_embedding_backward(float* d_table, const float* d_out, int B, int T, int C) const override {
    cuda::position_embedding_backward(d_table, d_out, B, T, C);
  }
  void layernorm_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out, const float* inp, const float* mean, const float* rstd, const float* weight, int64_t N, int C) const override {
    cuda::layernorm_backward(d_inp, d_weight, d_bias, d_out, inp, mean, rstd, weight, N, C);
  }
  void matmul_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out, const float* inp, const float* weight, int64_t N, int IC, int OC) const override {
    cuda::matmul_backward(d_inp, d_weight, d_bias, d_out, inp, weight, N, IC, OC);
  }
  void matmul_transposed_backward(float* d_inp, float* d_weight, const float* d_out, const float* inp, const float* weight, int64_t N, int IC, int OC) const override {
    cuda::matmul_transposed_backward(d_inp, d_weight, d_out, inp, weight, N, IC, OC);
  }
  void linear_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                      int64_t N) const override {
    cuda::linear_forward(out, inp, W, bias, N);
  }
  void linear_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                       const float* inp, const WeightMatrix& W, int64_t N) const override {
    cuda::linear_backward(d_inp, d_weight, d_bias, d_out, inp, W, N);
  }
  void attention_result_forward(float* result, const float* z, const WeightMatrix& W_O,
                                int64_t N, int NH, int HS) const override {
    cuda::attention_result_forward(result, z, W_O, N, NH, HS);
  }
  void linear_heads_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                            int64_t N, int H) const override {
    cuda::linear_heads_forward(out, inp, W, bias, N, H);
  }
  void linear_heads_backward(float* d_inp, const float* d_out, const WeightMatrix& W, int64_t N,
                             int H) const override {
    cuda::linear_heads_backward(d_inp, d_out, W, N, H);
  }
  void embedding_forward(float* out, const int32_t* ids, const WeightMatrix& table, int64_t N,
                         float scale) const override {
    cuda::embedding_forward(out, ids, table, N, scale);
  }
  void unembed_rows(float* out, const float* x, const WeightMatrix& W_U, const int32_t* tokens,
                    int n, int64_t B) const override {
    cuda::unembed_rows(out, x, W_U, tokens, n, B);
  }
  void rmsnorm_stats(float* scale, const float* inp, int64_t N, int C, float eps) const override {
    cuda::rmsnorm_stats(scale, inp, N, C, eps);
  }
  void rmsnorm_apply(float* out, const float* inp, const float* scale, const float* weight,
                     int64_t N, int C) const override {
    cuda::rmsnorm_apply(out, inp, scale, weight, N, C);
  }
  void rmsnorm_backward(float* d_inp, float* d_weight, const float* d_out, const float* inp,
                        const float* scale, const float* weight, int64_t N,
                        int C) const override {
    cuda::rmsnorm_backward(d_inp, d_weight, d_out, inp, scale, weight, N, C);
  }
  void silu_forward(float* out, const float* inp, int64_t n) const override {
    cuda::silu_forward(out, inp, n);
  }
  void silu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) const override {
    cuda::silu_backward(d_inp, d_out, inp, n);
  }
  void gated_forward(float* out, const float* gate, const float* up, int64_t n,
                     cpu::GatedActivation activation) const override {
    cuda::gated_forward(out, gate, up, n, activation);
  }
  void gated_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                      const float* up, int64_t n, cpu::GatedActivation activation) const override {
    cuda::gated_backward(d_gate, d_up, d_out, gate, up, n, activation);
  }
  void softcap_forward(float* out, const float* inp, int64_t n, float cap) const override {
    cuda::softcap_forward(out, inp, n, cap);
  }
  void softcap_backward(float* d_inp, const float* d_out, const float* inp, int64_t n,
                        float cap) const override {
    cuda::softcap_backward(d_inp, d_out, inp, n, cap);
  }
  void rotary_forward(float* out, const float* inp, const int32_t* positions, int64_t N, int NH,
                      int HS, int rotary_dim, const float* inv_freq) const override {
    cuda::rotary_forward(out, inp, positions, N, NH, HS, rotary_dim, inv_freq);
  }
  void rotary_backward(float* d_inp, const float* d_out, const int32_t* positions, int64_t N,
                       int NH, int HS, int rotary_dim, const float* inv_freq) const override {
    cuda::rotary_backward(d_inp, d_out, positions, N, NH, HS, rotary_dim, inv_freq);
  }
  void attention_scores_gqa_forward(float* scores, const float* q, const float* k, int B, int T,
                                    int NH, int NKV, int HS, float scale, float softcap,
                                    int window, int q_begin) const override {
    cuda::attention_scores_gqa_forward(scores, q, k, B, T, NH, NKV, HS, scale, softcap, window,
                                      q_begin);
  }
  void attention_values_gqa_forward(float* z, const float* pattern, const float* v, int B, int T,
                                    int NH, int NKV, int HS, int q_begin) const override {
    cuda::attention_values_gqa_forward(z, pattern, v, B, T, NH, NKV, HS, q_begin);
  }
  void attention_values_gqa_backward(float* d_pattern, float* d_v, const float* d_z,
                                     const float* pattern, const float* v, int B, int T, int NH,
                                     int NKV, int HS) const override {
    cuda::attention_values_gqa_backward(d_pattern, d_v, d_z, pattern, v, B, T, NH, NKV, HS);
  }
  void attention_scores_gqa_backward(float* d_q, float* d_k, const float* d_scores,
                                     const float* q, const float* k, int B, int T, int NH,
                                     int NKV, int HS, float scale, float softcap,
                                     int window) const override {
    cuda::attention_scores_gqa_backward(d_q, d_k, d_scores, q, k, B, T, NH, NKV, HS, scale,
                                       softcap, window);
  }
  void gelu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) const override {
    cuda::gelu_backward(d_inp, d_out, inp, n);
  }
  void gelu_erf_backward(float* d_inp, const float* d_out, const float* inp, int64_t n) const override {
    cuda::gelu_erf_backward(d_inp, d_out, inp, n);
  }
  void attention_values_backward(float* d_pattern, float* d_v, const float* d_z, const float* pattern, const float* v, int B, int T, int NH, int HS) const override {
    cuda::attention_values_backward(d_pattern, d_v, d_z, pattern, v, B, T, NH, HS);
  }
  void attention_softmax_backward(float* d_scores, const float* d_pattern, const float* pattern, int B, int NH, int T) const override {
    cuda::attention_softmax_backward(d_scores, d_pattern, pattern, B, NH, T);
  }
  void attention_scores_backward(float* d_q, float* d_k, const float* d_scores, const float* q, const float* k, int B, int T, int NH, int HS) const override {
    cuda::attention_scores_backward(d_q, d_k, d_scores, q, k, B, T, NH, HS);
  }
};

}  // namespace

bool cuda_device_available(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error so later probes start clean
    return false;
  }
  if (count == 0) {
    if (why) *why = "the CUDA runtime found 0 devices";
    return false;
  }
  if (why) *why = std::to_string(count) + " device(s)";
  return true;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  std::string why;
  if (!cuda_device_available(&why)) throw Error("make_cuda_backend: no GPU: " + why);
  int count = 0;
  cuda::check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (device < 0 || device >= count)
    throw InputError("--device", "cuda", "device " + std::to_string(device) + " is not one of the " +
                                             std::to_string(count) + " GPU(s) here");
  return std::make_unique<CudaBackend>(device);
}

}  // namespace causeway
