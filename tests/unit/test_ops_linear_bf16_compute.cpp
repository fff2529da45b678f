// SixteenBitCompute::BF16 (backend/ops_linear.h): bf16 weights on the CPU's bf16 dot products.
// Where this CPU has them (bf16_compute_native()) each op must equal the fp32 op on the rounded
// weights AND the bf16-rounded inputs to fp32 summation error, and the exact path to bf16's
// documented bound, 2^-8 of each entry's sum of |terms|; where it has none (qemu Haswell, or
// CAUSEWAY_CPU_BF16=0) BF16 must compute exactly as the default. Tolerances, never bit equality.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/ops_linear.h"
#include "random_values.h"

namespace causeway {
namespace {

using cpu::bf16_to_f32;
using cpu::f16_to_f32;
using cpu::f32_to_bf16;
using cpu::f32_to_f16;

using fixtures::random_vector;

std::vector<float> rounded_to_bf16(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t k = 0; k < v.size(); ++k) r[k] = bf16_to_f32(f32_to_bf16(v[k]));
  return r;
}

std::vector<float> absolute(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t k = 0; k < v.size(); ++k) r[k] = std::abs(v[k]);
  return r;
}

// A weight (out, in) in `dtype` and layout, plus the same rounded values held as fp32, and their
// absolute values (fp32): the op on |x| and |W| gives each entry's sum of |terms|.
struct Weights {
  std::vector<uint16_t> words;
  std::vector<float> rounded, magnitude;
  WeightMatrix half, f32, abs_f32;

  Weights(int64_t in, int64_t out, DType dtype, bool out_major, uint32_t seed) {
    const auto M = random_vector(in * out, seed);  // logical (out, in)
    rounded.resize(M.size());
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        const float x = M[o * in + i];
        const uint16_t w = dtype == DType::BF16 ? f32_to_bf16(x) : f32_to_f16(x);
        const size_t at = out_major ? o * in + i : i * out + o;
        if (words.empty()) words.resize(M.size());
        words[at] = w;
        rounded[at] = dtype == DType::BF16 ? bf16_to_f32(w) : f16_to_f32(w);
      }
    magnitude = absolute(rounded);
    half = {words.data(), dtype, in, out, out_major};
    f32 = {rounded.data(), DType::F32, in, out, out_major};
    abs_f32 = {magnitude.data(), DType::F32, in, out, out_major};
  }
  Weights(const Weights&) = delete;
};

// Sets the process-wide compute for one test and restores the default after it.
struct ComputeGuard {
  explicit ComputeGuard(cpu::SixteenBitCompute c) { cpu::set_sixteen_bit_compute(c); }
  ~ComputeGuard() { cpu::set_sixteen_bit_compute(cpu::SixteenBitCompute::Exact); }
};

// `got` (BF16 compute) against the exact op's `exact` and the fp32 op on rounded inputs
// `on_rounded`, entry by entry, relative to `magnitude` (the sums of |terms|).
void expect_bf16_result(const std::vector<float>& got, const std::vector<float>& exact,
                        const std::vector<float>& on_rounded, const std::vector<float>& magnitude,
                        const std::string& what) {
  ASSERT_EQ(got.size(), exact.size()) << what;
  const bool native = cpu::bf16_compute_native();
  double largest_difference = 0.0;
  for (size_t k = 0; k < got.size(); ++k) {
    const double scale = magnitude[k] + 1e-30;
    if (native) {
      ASSERT_NEAR(got[k], on_rounded[k], 1e-5 * scale) << what << " at " << k;
      ASSERT_NEAR(got[k], exact[k], 0x1p-8 * scale) << what << " at " << k;
    } else {
      ASSERT_NEAR(got[k], exact[k], 1e-6 * scale) << what << " at " << k;
    }
    largest_difference = std::max(largest_difference, std::abs(got[k] - exact[k]) / scale);
  }
  // On bf16 hardware the inputs really were rounded: the fast path ran, not the widening one.
  if (native) EXPECT_GT(largest_difference, 1e-5) << what;
}

struct Size {
  int64_t N, in, out;
};
// Odd sizes, one row, and sizes past the widening path's 512-deep and 256-wide tiles.
const Size kSizes[] = {{1, 5, 7}, {1, 2048, 64}, {17, 130, 33}, {33, 1100, 600}};

TEST(CpuOpsLinear, Bf16ComputeForwardEqualsFp32OnRoundedWeightsAndInputs) {
  ComputeGuard guard(cpu::SixteenBitCompute::BF16);
  for (const Size& s : kSizes)
    for (bool out_major : {true, false})
      for (bool with_bias : {false, true}) {
        const std::string what = "N " + std::to_string(s.N) + " in " + std::to_string(s.in) +
                                 " out " + std::to_string(s.out) +
                                 (out_major ? " (out, in)" : " (in, out)") +
                                 (with_bias ? " bias" : "");
        Weights w(s.in, s.out, DType::BF16, out_major, 11);
        const auto x = random_vector(s.N * s.in, 12);
        const auto x16 = rounded_to_bf16(x);
        const auto bias = random_vector(s.out, 13);
        const auto abs_bias = absolute(bias);
        const float* b = with_bias ? bias.data() : nullptr;
        std::vector<float> got(s.N * s.out, 99.0f), exact(s.N * s.out), on_rounded(s.N * s.out),
            magnitude(s.N * s.out);
        cpu::linear_forward(got.data(), x.data(), w.half, b, s.N);
        cpu::linear_forward(exact.data(), x.data(), w.f32, b, s.N);
        cpu::linear_forward(on_rounded.data(), x16.data(), w.f32, b, s.N);
        cpu::linear_forward(magnitude.data(), absolute(x).data(), w.abs_f32,
                            with_bias ? abs_bias.data() : nullptr, s.N);
        expect_bf16_result(got, exact, on_rounded, magnitude, what);
      }
}

TEST(CpuOpsLinear, Bf16ComputeCoversPerHeadAndBackwardOps) {
  ComputeGuard guard(cpu::SixteenBitCompute::BF16);
  const int64_t N = 9;
  const int H = 4, HS = 64;
  const int64_t C = 256;
  for (bool out_major : {true, false}) {
    const std::string layout = out_major ? " (out, in)" : " (in, out)";
    {  // per-head result of W_O (in = H * HS, out = C)
      Weights w(H * HS, C, DType::BF16, out_major, 21);
      const auto z = random_vector(N * H * HS, 22);
      std::vector<float> got(N * H * C), exact(N * H * C), on_rounded(N * H * C),
          magnitude(N * H * C);
      cpu::attention_result_forward(got.data(), z.data(), w.half, N, H, HS);
      cpu::attention_result_forward(exact.data(), z.data(), w.f32, N, H, HS);
      cpu::attention_result_forward(on_rounded.data(), rounded_to_bf16(z).data(), w.f32, N, H, HS);
      cpu::attention_result_forward(magnitude.data(), absolute(z).data(), w.abs_f32, N, H, HS);
      expect_bf16_result(got, exact, on_rounded, magnitude, "attention_result_forward" + layout);
    }
    {  // per-head inputs (in = C, out = H * HS) and their input gradient
      Weights w(C, H * HS, DType::BF16, out_major, 23);
      const auto x = random_vector(N * H * C, 24);
      std::vector<float> got(N * H * HS), exact(N * H * HS), on_rounded(N * H * HS),
          magnitude(N * H * HS);
      cpu::linear_heads_forward(got.data(), x.data(), w.half, nullptr, N, H);
      cpu::linear_heads_forward(exact.data(), x.data(), w.f32, nullptr, N, H);
      cpu::linear_heads_forward(on_rounded.data(), rounded_to_bf16(x).data(), w.f32, nullptr, N, H);
      cpu::linear_heads_forward(magnitude.data(), absolute(x).data(), w.abs_f32, nullptr, N, H);
      expect_bf16_result(got, exact, on_rounded, magnitude, "linear_heads_forward" + layout);

      const auto d_out = random_vector(N * H * HS, 25);
      std::vector<float> d_got(H * N * C), d_exact(H * N * C), d_rounded(H * N * C),
          d_magnitude(H * N * C);
      cpu::linear_heads_backward(d_got.data(), d_out.data(), w.half, N, H);
      cpu::linear_heads_backward(d_exact.data(), d_out.data(), w.f32, N, H);
      cpu::linear_heads_backward(d_rounded.data(), rounded_to_bf16(d_out).data(), w.f32, N, H);
      cpu::linear_heads_backward(d_magnitude.data(), absolute(d_out).data(), w.abs_f32, N, H);
      expect_bf16_result(d_got, d_exact, d_rounded, d_magnitude, "linear_heads_backward" + layout);
    }
    {  // input gradient of a plain linear
      Weights w(C, 3 * C, DType::BF16, out_major, 26);
      const auto d_out = random_vector(N * 3 * C, 27);
      std::vector<float> got(N * C), exact(N * C), on_rounded(N * C), magnitude(N * C);
      cpu::linear_backward(got.data(), nullptr, nullptr, d_out.data(), nullptr, w.half, N);
      cpu::linear_backward(exact.data(), nullptr, nullptr, d_out.data(), nullptr, w.f32, N);
      cpu::linear_backward(on_rounded.data(), nullptr, nullptr, rounded_to_bf16(d_out).data(),
                           nullptr, w.f32, N);
      cpu::linear_backward(magnitude.data(), nullptr, nullptr, absolute(d_out).data(), nullptr,
                           w.abs_f32, N);
      expect_bf16_result(got, exact, on_rounded, magnitude, "linear_backward d_inp" + layout);
    }
  }
}

TEST(CpuOpsLinear, Bf16ComputeLeavesF16WeightsExactAndKeepsNaN) {
  ComputeGuard guard(cpu::SixteenBitCompute::BF16);
  const int64_t N = 3, in = 300, out = 70;
  Weights w(in, out, DType::F16, true, 31);
  const auto x = random_vector(N * in, 32);
  std::vector<float> got(N * out), exact(N * out), magnitude(N * out);
  cpu::linear_forward(got.data(), x.data(), w.half, nullptr, N);
  cpu::linear_forward(exact.data(), x.data(), w.f32, nullptr, N);
  cpu::linear_forward(magnitude.data(), absolute(x).data(), w.abs_f32, nullptr, N);
  for (int64_t k = 0; k < N * out; ++k)
    ASSERT_NEAR(got[k], exact[k], 1e-6 * magnitude[k]) << "f16 weight at " << k;

  // A NaN activation stays NaN through the bf16 rounding, in its own row only.
  Weights b(in, out, DType::BF16, true, 33);
  auto with_nan = x;
  with_nan[in + 7] = std::numeric_limits<float>::quiet_NaN();
  cpu::linear_forward(got.data(), with_nan.data(), b.half, nullptr, N);
  for (int64_t o = 0; o < out; ++o) {
    EXPECT_FALSE(std::isnan(got[o])) << "row 0, " << o;
    EXPECT_TRUE(std::isnan(got[out + o])) << "row 1, " << o;
    EXPECT_FALSE(std::isnan(got[2 * out + o])) << "row 2, " << o;
  }
}

TEST(CpuOpsLinear, SixteenBitComputeDefaultsToExactAndIsSettable) {
  EXPECT_EQ(cpu::sixteen_bit_compute(), cpu::SixteenBitCompute::Exact);
  EXPECT_FALSE(cpu::bf16_compute_native());
  {
    ComputeGuard guard(cpu::SixteenBitCompute::BF16);
    EXPECT_EQ(cpu::sixteen_bit_compute(), cpu::SixteenBitCompute::BF16);
  }
  EXPECT_EQ(cpu::sixteen_bit_compute(), cpu::SixteenBitCompute::Exact);
}

}  // namespace
}  // namespace causeway
