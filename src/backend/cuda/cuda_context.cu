// Status checks, the per-thread cuBLAS handle and device scratch, and row-major GEMM.
#include <string>

#include "backend/cuda/cuda_common.h"

namespace causeway::cuda {

void check(cudaError_t status, const char* op) {
  if (status != cudaSuccess)
    throw Error(std::string("cuda ") + op + ": " + cudaGetErrorName(status) + " (" +
                cudaGetErrorString(status) + ")");
}

void check(cublasStatus_t status, const char* op) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuda ") + op + ": cuBLAS " + cublasGetStatusName(status) + " (" +
                cublasGetStatusString(status) + ")");
}

namespace {

// Released when the thread exits; a handle is bound to the device current at creation, so one
// is kept per device.
struct ThreadState {
  static constexpr int kMaxDevices = 64;
  cublasHandle_t handles[kMaxDevices] = {};
  void* scratch[kMaxDevices] = {};
  size_t scratch_bytes[kMaxDevices] = {};
  int* flag[kMaxDevices] = {};
  ~ThreadState() {
    for (int d = 0; d < kMaxDevices; ++d) {
      if (handles[d]) cublasDestroy(handles[d]);
      if (scratch[d]) cudaFree(scratch[d]);
      if (flag[d]) cudaFree(flag[d]);
    }
  }
};

ThreadState& state() {
  thread_local ThreadState s;
  return s;
}

int current_device(const char* op) {
  int device = 0;
  check(cudaGetDevice(&device), op);
  if (device < 0 || device >= ThreadState::kMaxDevices)
    throw Error(std::string("cuda ") + op + ": device " + std::to_string(device) +
                " is beyond the " + std::to_string(ThreadState::kMaxDevices) + " supported");
  return device;
}

}  // namespace

cublasHandle_t cublas_handle() {
  const int d = current_device("cublas_handle");
  cublasHandle_t& h = state().handles[d];
  if (!h) {
    check(cublasCreate(&h), "cublasCreate");
    check(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
  }
  return h;
}

void* device_scratch(size_t bytes) {
  const int d = current_device("device_scratch");
  ThreadState& s = state();
  if (s.scratch_bytes[d] < bytes) {
    if (s.scratch[d]) check(cudaFree(s.scratch[d]), "device_scratch (cudaFree)");
    s.scratch[d] = nullptr;
    s.scratch_bytes[d] = 0;
    check(cudaMalloc(&s.scratch[d], bytes), "device_scratch (cudaMalloc)");
    s.scratch_bytes[d] = bytes;
  }
  return s.scratch[d];
}

int* device_flag() {
  const int d = current_device("device_flag");
  int*& f = state().flag[d];
  if (!f) check(cudaMalloc(&f, sizeof(int)), "device_flag (cudaMalloc)");
  return f;
}

void gemm_row_major(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc, const char* op) {
  if (M == 0 || N == 0) return;
  check(cublasSgemm(cublas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
                    static_cast<int>(K), &alpha, B, static_cast<int>(ldb), A,
                    static_cast<int>(lda), &beta, C, static_cast<int>(ldc)),
        op);
}

}  // namespace causeway::cuda
