// Linear ops over a WeightMatrix read in place. fp32 weights go to one OpenBLAS sgemm, the layout
// chosen by the transpose flag. bf16/f16 weights are cut into panels of output features, one
// OpenMP task per panel: each thread widens its panel k-block by k-block into a thread-local fp32
// tile that fits in L2 and runs a single-threaded sgemm on it (OpenBLAS's OpenMP build runs
// serially inside a parallel region), so widening and multiplying both scale with the threads
// and the tile is multiplied while still in cache. With SixteenBitCompute::BF16 a bf16 weight goes
// to the CPU's bf16 dot products instead, where it has them (bf16_dot_gemm.h).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cpu/bf16_dot_gemm.h"
#include "backend/ops_linear.h"

namespace causeway::cpu {

namespace {

std::atomic<SixteenBitCompute> g_sixteen_bit_compute{SixteenBitCompute::Exact};

// Tile of a 16-bit weight widened at once: up to kPanel output features by kDepth input
// features (256 x 512 fp32 = 512 KiB).
constexpr int64_t kPanel = 256;
constexpr int64_t kDepth = 512;

// The right operand B (K, J) of C = A @ B, read from a weight where it lies: element (k, j) at
// index k * ld + j, or j * ld + k when j_major, counted from `offset` elements into data.
struct WeightView {
  const void* data;
  DType dtype;
  int64_t K, J;
  bool j_major;
  int64_t ld;
  int64_t offset = 0;

  const void* at(int64_t k, int64_t j) const {
    const int64_t index = offset + (j_major ? j * ld + k : k * ld + j);
    return static_cast<const char*>(data) + index * static_cast<int64_t>(dtype_size(dtype));
  }
};

std::string describe(const WeightMatrix& W) {
  return std::string(dtype_name(W.dtype)) + " (in " + std::to_string(W.in) + ", out " +
         std::to_string(W.out) + (W.out_major ? ", stored (out, in))" : ", stored (in, out))");
}

void check_float_weight(const WeightMatrix& W, const char* op) {
  if (W.dtype != DType::F32 && W.dtype != DType::BF16 && W.dtype != DType::F16)
    throw std::invalid_argument(std::string(op) + ": weight dtype must be F32, BF16 or F16, got " +
                                describe(W));
  if (W.data == nullptr && W.in > 0 && W.out > 0)
    throw std::invalid_argument(std::string(op) + ": weight " + describe(W) + " has no data");
}

// B (in, out) of out = inp @ B: W(o, i) is at o * in + i when out_major, else i * out + o.
WeightView forward_view(const WeightMatrix& W) {
  return {W.data, W.dtype, W.in, W.out, W.out_major, W.out_major ? W.in : W.out};
}
// B (out, in) of d_inp = d_out @ B: the same storage read the other way round.
WeightView backward_view(const WeightMatrix& W) {
  return {W.data, W.dtype, W.out, W.in, !W.out_major, W.out_major ? W.in : W.out};
}

// Sized for the largest tile seen so far by this thread; OpenMP's pool threads keep theirs
// between calls, so it is allocated once per thread.
float* tile_scratch(int64_t n) {
  thread_local std::vector<float> scratch;
  if (static_cast<int64_t>(scratch.size()) < n) scratch.resize(n);
  return scratch.data();
}

// B widened tile (kb, pj) row-major, or (pj, kb) when j_major: the sgemm then reads it
// transposed, so every widened run is contiguous in both source and tile.
void widen_tile(float* tile, const WeightView& B, int64_t k0, int64_t kb, int64_t j0, int64_t pj) {
  if (B.j_major)
    for (int64_t j = 0; j < pj; ++j) widen_to_f32(tile + j * kb, B.at(k0, j0 + j), B.dtype, kb);
  else
    for (int64_t k = 0; k < kb; ++k) widen_to_f32(tile + k * pj, B.at(k0 + k, j0), B.dtype, pj);
}

// C (M, J) = A (M, K) @ B, or C += A @ B when accumulate. lda / ldc: row strides of A and C.
void gemm_weight(float* C, int64_t ldc, const float* A, int64_t lda, int64_t M, const WeightView& B,
                 bool accumulate) {
  if (M == 0 || B.J == 0) return;
  if (B.K == 0) {  // an empty sum: BLAS implementations differ on whether they touch C
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::fill_n(C + m * ldc, B.J, 0.0f);
    return;
  }
  if (B.dtype == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, B.j_major ? CblasTrans : CblasNoTrans,
                static_cast<int>(M), static_cast<int>(B.J), static_cast<int>(B.K), 1.0f, A,
                static_cast<int>(lda), static_cast<const float*>(B.at(0, 0)),
                static_cast<int>(B.ld), accumulate ? 1.0f : 0.0f, C, static_cast<int>(ldc));
    return;
  }
  if (B.dtype == DType::BF16 && sixteen_bit_compute() == SixteenBitCompute::BF16 &&
      bf16_dot_gemm(C, ldc, A, lda, M, static_cast<const uint16_t*>(B.at(0, 0)), B.K, B.J,
                    B.j_major, B.ld, accumulate))
    return;
  // A whole number of panels per thread (so none idles at the end), each at most kPanel wide
  // and a multiple of 16 features for the sgemm kernels.
  const int64_t threads = omp_get_max_threads();
  const int64_t rounds = (B.J + threads * kPanel - 1) / (threads * kPanel);
  int64_t panel = (B.J + threads * rounds - 1) / (threads * rounds);
  panel = std::min(B.J, (panel + 15) / 16 * 16);
  const int64_t panels = (B.J + panel - 1) / panel;
  const int64_t depth = std::min(B.K, kDepth);
#pragma omp parallel for schedule(dynamic)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t j0 = p * panel;
    const int64_t pj = std::min(panel, B.J - j0);
    float* tile = tile_scratch(panel * depth);
    for (int64_t k0 = 0; k0 < B.K; k0 += depth) {
      const int64_t kb = std::min(depth, B.K - k0);
      widen_tile(tile, B, k0, kb, j0, pj);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, B.j_major ? CblasTrans : CblasNoTrans,
                  static_cast<int>(M), static_cast<int>(pj), static_cast<int>(kb), 1.0f, A + k0,
                  static_cast<int>(lda), tile, static_cast<int>(B.j_major ? kb : pj),
                  accumulate || k0 > 0 ? 1.0f : 0.0f, C + j0, static_cast<int>(ldc));
    }
  }
}

// dst (C) = token v's vector W(v, :) widened: a contiguous row when out_major, else a column.
void load_token(float* dst, const WeightMatrix& W, int64_t v) {
  if (W.out_major) {
    widen_to_f32(dst, static_cast<const char*>(W.data) + v * W.in * dtype_size(W.dtype), W.dtype,
                 W.in);
    return;
  }
  for (int64_t c = 0; c < W.in; ++c)
    widen_to_f32(dst + c, static_cast<const char*>(W.data) + (c * W.out + v) * dtype_size(W.dtype),
                 W.dtype, 1);
}

void check_tokens(const int32_t* ids, int64_t n, const WeightMatrix& W, const char* op,
                  const char* field) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= W.out)
      throw std::out_of_range(std::string(op) + ": " + field + "[" + std::to_string(i) +
                              "] = " + std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                              std::to_string(W.out) + ")");
}

}  // namespace

void set_sixteen_bit_compute(SixteenBitCompute compute) { g_sixteen_bit_compute = compute; }
SixteenBitCompute sixteen_bit_compute() { return g_sixteen_bit_compute; }
bool bf16_compute_native() {
  return sixteen_bit_compute() == SixteenBitCompute::BF16 && bf16_dot_products_available();
}

void linear_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                    int64_t N) {
  check_float_weight(W, "linear_forward");
  if (N == 0) return;
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) std::memcpy(out + n * W.out, bias, sizeof(float) * W.out);
  }
  gemm_weight(out, W.out, inp, W.in, N, forward_view(W), bias != nullptr);
}

void linear_backward(float* d_inp, float* d_weight, float* d_bias, const float* d_out,
                     const float* inp, const WeightMatrix& W, int64_t N) {
  check_float_weight(W, "linear_backward");
  if (d_weight && W.dtype != DType::F32)
    throw std::invalid_argument(
        "linear_backward: d_weight needs an F32 weight (its gradient is "
        "accumulated in the weight's layout), got " +
        describe(W));
  if (N == 0) return;
  if (d_inp) gemm_weight(d_inp, W.in, d_out, W.out, N, backward_view(W), false);
  const int n = static_cast<int>(N), in = static_cast<int>(W.in), out = static_cast<int>(W.out);
  if (d_weight && W.out_major)  // (out, in) += d_out^T @ inp
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, d_out, out, inp, in,
                1.0f, d_weight, in);
  else if (d_weight)  // (in, out) += inp^T @ d_out
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, n, 1.0f, inp, in, d_out, out,
                1.0f, d_weight, out);
  if (d_bias) {
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < W.out; ++o) {
      float s = 0.0f;
      for (int64_t r = 0; r < N; ++r) s += d_out[r * W.out + o];
      d_bias[o] += s;
    }
  }
}

void attention_result_forward(float* result, const float* z, const WeightMatrix& W_O, int64_t N,
                              int NH, int HS) {
  check_float_weight(W_O, "attention_result_forward");
  if (W_O.in != static_cast<int64_t>(NH) * HS)
    throw std::invalid_argument("attention_result_forward: W_O " + describe(W_O) +
                                " must have in = NH * HS = " + std::to_string(NH) + " * " +
                                std::to_string(HS));
  const int64_t C = W_O.out;
  for (int h = 0; h < NH; ++h) {
    // Head h reads input features h*HS.. of W_O: rows of the (in, out) view from k = h*HS.
    WeightView head = forward_view(W_O);
    head.K = HS;
    head.offset = W_O.out_major ? static_cast<int64_t>(h) * HS : static_cast<int64_t>(h) * HS * C;
    gemm_weight(result + h * C, NH * C, z + static_cast<int64_t>(h) * HS, W_O.in, N, head, false);
  }
}

namespace {

int64_t head_width(const WeightMatrix& W, int H, const char* op) {
  if (H <= 0 || W.out % H != 0)
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(H) +
                                " heads do not divide W " + describe(W));
  return W.out / H;
}

}  // namespace

void linear_heads_forward(float* out, const float* inp, const WeightMatrix& W, const float* bias,
                          int64_t N, int H) {
  check_float_weight(W, "linear_heads_forward");
  const int64_t HS = head_width(W, H, "linear_heads_forward");
  if (N == 0) return;
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) std::memcpy(out + n * W.out, bias, sizeof(float) * W.out);
  }
  for (int h = 0; h < H; ++h) {
    // Output features h*HS.. of the (in, out) view: columns from j = h*HS.
    WeightView head = forward_view(W);
    head.J = HS;
    head.offset = W.out_major ? h * HS * W.in : h * HS;
    gemm_weight(out + h * HS, W.out, inp + h * W.in, H * W.in, N, head, bias != nullptr);
  }
}

void linear_heads_backward(float* d_inp, const float* d_out, const WeightMatrix& W, int64_t N,
                           int H) {
  check_float_weight(W, "linear_heads_backward");
  const int64_t HS = head_width(W, H, "linear_heads_backward");
  if (N == 0) return;
  for (int h = 0; h < H; ++h) {
    // Rows h*HS.. of the (out, in) view.
    WeightView head = backward_view(W);
    head.K = HS;
    head.offset = W.out_major ? h * HS * W.in : h * HS;
    gemm_weight(d_inp + h * N * W.in, W.in, d_out + h * HS, W.out, N, head, false);
  }
}

void embedding_forward(float* out, const int32_t* ids, const WeightMatrix& table, int64_t N,
                       float scale) {
  check_float_weight(table, "embedding_forward");
  check_tokens(ids, N, table, "embedding_forward", "ids");
  const int64_t C = table.in;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* row = out + n * C;
    load_token(row, table, ids[n]);
    if (scale != 1.0f) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) row[c] *= scale;
    }
  }
}

void unembed_rows(float* out, const float* x, const WeightMatrix& W_U, const int32_t* tokens, int n,
                  int64_t B) {
  check_float_weight(W_U, "unembed_rows");
  check_tokens(tokens, n, W_U, "unembed_rows", "tokens");
  if (n == 0 || B == 0) return;
  const int64_t C = W_U.in;
  std::vector<float> rows(static_cast<size_t>(n) * C);  // the n token vectors (n, C), fp32
  for (int j = 0; j < n; ++j) load_token(rows.data() + j * C, W_U, tokens[j]);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(B), n, static_cast<int>(C),
              1.0f, x, static_cast<int>(C), rows.data(), static_cast<int>(C), 0.0f, out, n);
}

}  // namespace causeway::cpu
