// bf16 / f16 -> fp32 widening on the device. Both widenings are exact: bf16 is the top half of
// an fp32 word; f16 goes through the hardware conversion, which handles subnormals, inf, NaN.
#include <cuda_fp16.h>

#include <string>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

__device__ inline float widen(const void* src, int64_t index, DType dtype) {
  if (dtype == DType::F32) return static_cast<const float*>(src)[index];
  const uint16_t h = static_cast<const uint16_t*>(src)[index];
  if (dtype == DType::BF16) return __uint_as_float(static_cast<uint32_t>(h) << 16);
  return __half2float(__ushort_as_half(h));
}

__global__ void widen_tile_kernel(float* tile, const void* src, DType dtype, int64_t offset,
                                  int64_t ld, int64_t r0, int64_t rows, int64_t c0,
                                  int64_t cols) {
  CAUSEWAY_GRID_STRIDE(i, rows * cols) {
    const int64_t r = i / cols, c = i % cols;
    tile[i] = widen(src, offset + (r0 + r) * ld + c0 + c, dtype);
  }
}

void check_dtype(DType dtype, const char* op) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw Error(std::string("cuda ") + op + ": dtype " + dtype_name(dtype) +
                " is not a float type (expected F32, BF16 or F16)");
}

}  // namespace

void widen_tile(float* tile, const void* src, DType dtype, int64_t offset, int64_t ld, int64_t r0,
                int64_t rows, int64_t c0, int64_t cols) {
  check_dtype(dtype, "widen_tile");
  if (rows * cols == 0) return;
  widen_tile_kernel<<<blocks_for(rows * cols), kThreads>>>(tile, src, dtype, offset, ld, r0, rows,
                                                           c0, cols);
  check_launch("widen_tile");
}

void widen_to_f32(float* out, const void* src, DType dtype, int64_t n) {
  check_dtype(dtype, "widen_to_f32");
  widen_tile(out, src, dtype, 0, n, 0, 1, 0, n);
}

}  // namespace causeway::cuda
