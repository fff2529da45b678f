// Rotary position embeddings, NeoX rotate_half layout (backend/ops_rotary.h). As on the CPU the
// angle and its sine / cosine are taken in double and rounded once, so long positions carry no
// fp32 angle error of our own. One thread per (row, head, pair).
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/ops_cuda.h"

namespace causeway::cuda {

namespace {

// sign = +1: the forward rotation; -1: its transpose. Pair i touches only i and i + half, so
// in-place use is safe.
__global__ void rotate_kernel(float* out, const float* inp, const int32_t* positions, int64_t N,
                              int NH, int HS, int rotary_dim, const float* inv_freq, float sign) {
  const int half = rotary_dim / 2;
  const int pass = HS - rotary_dim;  // dims copied unrotated (only when out != inp)
  const int per_head = half + (out != inp ? pass : 0);
  CAUSEWAY_GRID_STRIDE(idx, N * NH * per_head) {
    const int64_t row = idx / per_head;  // (n, h)
    const int i = static_cast<int>(idx % per_head);
    const float* x = inp + row * HS;
    float* y = out + row * HS;
    if (i >= half) {
      const int j = rotary_dim + (i - half);
      y[j] = x[j];
      continue;
    }
    const double a = static_cast<double>(positions[row / NH]) * static_cast<double>(inv_freq[i]);
    const float c = static_cast<float>(cos(a));
    const float s = sign * static_cast<float>(sin(a));
    const float x1 = x[i], x2 = x[i + half];
    y[i] = x1 * c - x2 * s;
    y[i + half] = x2 * c + x1 * s;
  }
}

void rotate(float* out, const float* inp, const int32_t* positions, int64_t N, int NH, int HS,
            int rotary_dim, const float* inv_freq, float sign, const char* op) {
  const int64_t per_head = rotary_dim / 2 + (out != inp ? HS - rotary_dim : 0);
  const int64_t n = N * NH * per_head;
  if (n == 0) return;
  rotate_kernel<<<blocks_for(n), kThreads>>>(out, inp, positions, N, NH, HS, rotary_dim, inv_freq,
                                             sign);
  check_launch(op);
}

}  // namespace

void rotary_forward(float* out, const float* inp, const int32_t* positions, int64_t N, int NH,
                    int HS, int rotary_dim, const float* inv_freq) {
  rotate(out, inp, positions, N, NH, HS, rotary_dim, inv_freq, 1.0f, "rotary_forward");
}

void rotary_backward(float* d_inp, const float* d_out, const int32_t* positions, int64_t N,
                     int NH, int HS, int rotary_dim, const float* inv_freq) {
  rotate(d_inp, d_out, positions, N, NH, HS, rotary_dim, inv_freq, -1.0f, "rotary_backward");
}

}  // namespace causeway::cuda
