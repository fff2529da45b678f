// Linear ops over a WeightMatrix (backend/ops_linear.h): fp32 in both layouts against a
// double-precision reference written here; bf16/f16 against the fp32 op on the same rounded
// weights; the backward, per-head result, embedding and unembedding against references; the
// 16-bit conversions on hand-worked cases, exhaustively over all 65536 words, and against the
// compiler's own _Float16 where it has one.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
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

float bits_to_float(uint32_t b) { return std::bit_cast<float>(b); }

// A weight with logical values M (out, in), held in `dtype` and `layout` as a checkpoint would
// hold it. `values` are the logical values after rounding to dtype: what the op must compute with.
struct StoredWeight {
  std::vector<float> f32;
  std::vector<uint16_t> words;
  std::vector<float> values;  // (out, in), rounded to dtype
  WeightMatrix W;

  StoredWeight(const std::vector<float>& M, int64_t in, int64_t out, DType dtype, bool out_major) {
    values.resize(M.size());
    for (size_t k = 0; k < M.size(); ++k)
      values[k] = dtype == DType::BF16  ? bf16_to_f32(f32_to_bf16(M[k]))
                  : dtype == DType::F16 ? f16_to_f32(f32_to_f16(M[k]))
                                        : M[k];
    std::vector<float> stored(M.size());
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        stored[out_major ? o * in + i : i * out + o] = values[o * in + i];
    if (dtype == DType::F32) {
      f32 = stored;
    } else {
      for (float x : stored) words.push_back(dtype == DType::BF16 ? f32_to_bf16(x) : f32_to_f16(x));
    }
    W.data = dtype == DType::F32 ? static_cast<const void*>(f32.data()) : words.data();
    W.dtype = dtype;
    W.in = in;
    W.out = out;
    W.out_major = out_major;
  }
  StoredWeight(const StoredWeight&) = delete;
};

struct Size {
  int64_t N, in, out;
};
// Odd sizes, and one past the op's 512-deep k-blocks and 256-wide panels.
const Size kSizes[] = {{1, 5, 7}, {3, 64, 96}, {17, 130, 33}, {3, 1100, 600}};
const DType kHalfTypes[] = {DType::BF16, DType::F16};

std::string label(const Size& s, DType dtype, bool out_major) {
  return "N " + std::to_string(s.N) + " in " + std::to_string(s.in) + " out " +
         std::to_string(s.out) + " " + dtype_name(dtype) +
         (out_major ? " (out, in)" : " (in, out)");
}

// y (R, J) = x (R, K) @ B where B(k, j) = get(k, j), in double; also sum |x * B| per entry, the
// scale that rounding errors of a K-term fp32 sum are proportional to.
template <typename Get>
void reference_product(std::vector<double>& y, std::vector<double>& magnitude,
                       const std::vector<float>& x, int64_t R, int64_t K, int64_t J, Get get) {
  y.assign(R * J, 0.0);
  magnitude.assign(R * J, 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < J; ++j)
      for (int64_t k = 0; k < K; ++k) {
        const double t = static_cast<double>(x[r * K + k]) * get(k, j);
        y[r * J + j] += t;
        magnitude[r * J + j] += std::abs(t);
      }
}

// Every entry within rel * (its sum of |terms|) of the reference (plus a floor for exact zeros).
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& magnitude, double rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k)
    ASSERT_NEAR(got[k], want[k], rel * magnitude[k] + 1e-30) << what << " at " << k;
}

TEST(CpuOpsLinear, Fp32ForwardMatchesDoubleReferenceInBothLayouts) {
  for (const Size& s : kSizes)
    for (bool out_major : {true, false}) {
      const auto M = random_vector(s.out * s.in, 1);
      const auto x = random_vector(s.N * s.in, 2);
      const auto bias = random_vector(s.out, 3);
      StoredWeight w(M, s.in, s.out, DType::F32, out_major);
      std::vector<double> want, magnitude;
      reference_product(want, magnitude, x, s.N, s.in, s.out,
                        [&](int64_t i, int64_t o) { return M[o * s.in + i]; });
      std::vector<float> out(s.N * s.out, 99.0f);
      cpu::linear_forward(out.data(), x.data(), w.W, nullptr, s.N);
      expect_close(out, want, magnitude, 1e-5, label(s, DType::F32, out_major) + " no bias");
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t o = 0; o < s.out; ++o) {
          want[n * s.out + o] += bias[o];
          magnitude[n * s.out + o] += std::abs(bias[o]);
        }
      cpu::linear_forward(out.data(), x.data(), w.W, bias.data(), s.N);
      expect_close(out, want, magnitude, 1e-5, label(s, DType::F32, out_major) + " bias");
    }
}

TEST(CpuOpsLinear, HalfForwardEqualsFp32ForwardOnTheRoundedWeights) {
  for (const Size& s : kSizes)
    for (DType dtype : kHalfTypes)
      for (bool out_major : {true, false}) {
        const auto M = random_vector(s.out * s.in, 4);
        const auto x = random_vector(s.N * s.in, 5);
        const auto bias = random_vector(s.out, 6);
        StoredWeight half(M, s.in, s.out, dtype, out_major);
        StoredWeight rounded(half.values, s.in, s.out, DType::F32, out_major);
        // The two may sum in different orders (the 16-bit path runs k-blocks), so the bound is
        // relative to each entry's sum of |terms|. Weights not rounded the same way would miss
        // it: their error is up to 2^-8 (bf16) or 2^-11 (f16) of each term.
        std::vector<double> unused, magnitude;
        reference_product(unused, magnitude, x, s.N, s.in, s.out,
                          [&](int64_t i, int64_t o) { return half.values[o * s.in + i]; });
        for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
          std::vector<float> got(s.N * s.out, 99.0f), want(s.N * s.out, -99.0f);
          cpu::linear_forward(got.data(), x.data(), half.W, b, s.N);
          cpu::linear_forward(want.data(), x.data(), rounded.W, b, s.N);
          for (int64_t k = 0; k < s.N * s.out; ++k)
            ASSERT_NEAR(got[k], want[k], 1e-6 * (magnitude[k] + (b ? std::abs(b[k % s.out]) : 0)))
                << label(s, dtype, out_major) << (b ? " bias" : " no bias") << " at " << k;
        }
        // The rounding is real: these weights are not all representable in 16 bits.
        EXPECT_NE(half.values, M) << label(s, dtype, out_major);
      }
}

TEST(CpuOpsLinear, BackwardMatchesReferenceForEveryGradient) {
  for (const Size& s : kSizes)
    for (DType dtype : {DType::F32, DType::BF16, DType::F16})
      for (bool out_major : {true, false}) {
        const std::string what = label(s, dtype, out_major);
        const auto M = random_vector(s.out * s.in, 7);
        const auto x = random_vector(s.N * s.in, 8);
        const auto d_out = random_vector(s.N * s.out, 9);
        StoredWeight w(M, s.in, s.out, dtype, out_major);
        const bool fp32 = dtype == DType::F32;

        // d_inp = d_out @ W(o, i), overwritten.
        std::vector<double> want, magnitude;
        reference_product(want, magnitude, d_out, s.N, s.out, s.in,
                          [&](int64_t o, int64_t i) { return w.values[o * s.in + i]; });
        std::vector<float> d_inp(s.N * s.in, 1e20f);
        // Accumulated onto: both start from known values.
        const auto d_weight0 = random_vector(s.out * s.in, 10);
        const auto d_bias0 = random_vector(s.out, 11);
        std::vector<float> d_weight = d_weight0, d_bias = d_bias0;
        cpu::linear_backward(d_inp.data(), fp32 ? d_weight.data() : nullptr, d_bias.data(),
                             d_out.data(), x.data(), w.W, s.N);
        expect_close(d_inp, want, magnitude, 1e-5, what + " d_inp");

        for (int64_t o = 0; o < s.out; ++o) {
          double col = d_bias0[o], col_mag = std::abs(d_bias0[o]);
          for (int64_t n = 0; n < s.N; ++n) {
            col += d_out[n * s.out + o];
            col_mag += std::abs(d_out[n * s.out + o]);
          }
          ASSERT_NEAR(d_bias[o], col, 1e-6 * col_mag) << what << " d_bias " << o;
        }
        if (!fp32) continue;
        // dL/dW(o, i) = sum_n d_out[n, o] * x[n, i], at W's own index.
        for (int64_t o = 0; o < s.out; ++o)
          for (int64_t i = 0; i < s.in; ++i) {
            const int64_t at = out_major ? o * s.in + i : i * s.out + o;
            double g = d_weight0[at], g_mag = std::abs(d_weight0[at]);
            for (int64_t n = 0; n < s.N; ++n) {
              const double t = static_cast<double>(d_out[n * s.out + o]) * x[n * s.in + i];
              g += t;
              g_mag += std::abs(t);
            }
            ASSERT_NEAR(d_weight[at], g, 1e-5 * g_mag)
                << what << " d_weight (" << o << ", " << i << ")";
          }
      }
}

TEST(CpuOpsLinear, BackwardDInpAgreesWithFiniteDifferences) {
  // L = sum(g * linear_forward(x)); dL/dx by central differences in the forward itself.
  const int64_t N = 2, in = 6, out = 5;
  for (DType dtype : {DType::F32, DType::BF16})
    for (bool out_major : {true, false}) {
      StoredWeight w(random_vector(out * in, 12), in, out, dtype, out_major);
      auto x = random_vector(N * in, 13);
      const auto g = random_vector(N * out, 14);
      std::vector<float> d_inp(N * in);
      cpu::linear_backward(d_inp.data(), nullptr, nullptr, g.data(), x.data(), w.W, N);
      auto loss = [&]() {
        std::vector<float> y(N * out);
        cpu::linear_forward(y.data(), x.data(), w.W, nullptr, N);
        double l = 0.0;
        for (size_t k = 0; k < y.size(); ++k) l += static_cast<double>(g[k]) * y[k];
        return l;
      };
      const float h = 1.0f / 64;  // exact in fp32, so x +- h moves x by exactly h
      for (int64_t k = 0; k < N * in; ++k) {
        const float x0 = x[k];
        x[k] = x0 + h;
        const double up = loss();
        x[k] = x0 - h;
        const double down = loss();
        x[k] = x0;
        EXPECT_NEAR(d_inp[k], (up - down) / (2 * h), 1e-4)
            << dtype_name(dtype) << (out_major ? " (out, in)" : " (in, out)") << " x[" << k << "]";
      }
    }
}

TEST(CpuOpsLinear, WeightGradientOfA16BitWeightThrowsBeforeWriting) {
  StoredWeight w(random_vector(4 * 3, 15), 3, 4, DType::BF16, true);
  const auto x = random_vector(2 * 3, 16), d_out = random_vector(2 * 4, 17);
  std::vector<float> d_inp(2 * 3, 5.0f), d_weight(4 * 3, 5.0f), d_bias(4, 5.0f);
  try {
    cpu::linear_backward(d_inp.data(), d_weight.data(), d_bias.data(), d_out.data(), x.data(), w.W,
                         2);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("BF16"), std::string::npos) << e.what();
  }
  for (const auto* v : {&d_inp, &d_weight, &d_bias})
    for (float g : *v) EXPECT_EQ(g, 5.0f);
}

TEST(CpuOpsLinear, PerHeadResultMatchesReferenceAndSumsToTheProjection) {
  const int64_t N = 5;
  const int NH = 3, HS = 4;
  const int64_t C = 7, in = NH * HS;
  for (DType dtype : {DType::F32, DType::BF16, DType::F16})
    for (bool out_major : {true, false}) {
      const std::string what =
          std::string(dtype_name(dtype)) + (out_major ? " (out, in)" : " (in, out)");
      StoredWeight w(random_vector(C * in, 18), in, C, dtype, out_major);
      const auto z = random_vector(N * in, 19);
      std::vector<float> result(N * NH * C, 99.0f), projected(N * C);
      cpu::attention_result_forward(result.data(), z.data(), w.W, N, NH, HS);
      cpu::linear_forward(projected.data(), z.data(), w.W, nullptr, N);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) {
          double sum = 0.0, sum_mag = 0.0;
          for (int h = 0; h < NH; ++h) {
            double head = 0.0, head_mag = 0.0;
            for (int d = 0; d < HS; ++d) {
              const double t =
                  static_cast<double>(z[(n * NH + h) * HS + d]) * w.values[c * in + h * HS + d];
              head += t;
              head_mag += std::abs(t);
            }
            ASSERT_NEAR(result[(n * NH + h) * C + c], head, 1e-5 * head_mag)
                << what << " result[" << n << ", " << h << ", " << c << "]";
            sum += result[(n * NH + h) * C + c];
            sum_mag += head_mag;
          }
          ASSERT_NEAR(sum, projected[n * C + c], 1e-5 * sum_mag) << what << " sum over heads";
        }
    }
  StoredWeight w(random_vector(C * in, 18), in, C, DType::F32, true);
  std::vector<float> result(N * NH * C), z(N * in);
  EXPECT_THROW(cpu::attention_result_forward(result.data(), z.data(), w.W, N, NH, HS + 1),
               std::invalid_argument);
}

TEST(CpuOpsLinear, EmbeddingGathersScaledRowsOfAnyDtypeAndLayout) {
  const int64_t V = 11, C = 6;
  const std::vector<int32_t> ids = {3, 0, 10, 3};
  const float scale = 2.5f;
  for (DType dtype : {DType::F32, DType::BF16, DType::F16})
    for (bool out_major : {true, false}) {
      StoredWeight table(random_vector(V * C, 20), C, V, dtype, out_major);
      std::vector<float> out(ids.size() * C, 99.0f);
      cpu::embedding_forward(out.data(), ids.data(), table.W, static_cast<int64_t>(ids.size()),
                             scale);
      for (size_t n = 0; n < ids.size(); ++n)
        for (int64_t c = 0; c < C; ++c)
          ASSERT_EQ(out[n * C + c], table.values[ids[n] * C + c] * scale)
              << dtype_name(dtype) << (out_major ? " (V, C)" : " (C, V)") << " row " << n;
      for (int32_t bad : {-1, static_cast<int32_t>(V)}) {
        const std::vector<int32_t> bad_ids = {0, bad};
        std::vector<float> untouched(2 * C, 7.0f);
        EXPECT_THROW(cpu::embedding_forward(untouched.data(), bad_ids.data(), table.W, 2, 1.0f),
                     std::out_of_range);
        for (float v : untouched) EXPECT_EQ(v, 7.0f);
      }
    }
}

TEST(CpuOpsLinear, UnembedRowsMatchesDotProductsWithTheTokenRows) {
  const int64_t V = 13, C = 9, B = 4;
  const std::vector<int32_t> tokens = {12, 0, 5};
  const int n = static_cast<int>(tokens.size());
  for (DType dtype : {DType::F32, DType::BF16, DType::F16})
    for (bool out_major : {true, false}) {
      StoredWeight W_U(random_vector(V * C, 21), C, V, dtype, out_major);
      const auto x = random_vector(B * C, 22);
      std::vector<double> want, magnitude;
      reference_product(want, magnitude, x, B, C, n,
                        [&](int64_t c, int64_t j) { return W_U.values[tokens[j] * C + c]; });
      std::vector<float> out(B * n, 99.0f);
      cpu::unembed_rows(out.data(), x.data(), W_U.W, tokens.data(), n, B);
      expect_close(out, want, magnitude, 1e-5,
                   std::string(dtype_name(dtype)) + (out_major ? " (V, C)" : " (C, V)"));
      const int32_t bad = static_cast<int32_t>(V);
      EXPECT_THROW(cpu::unembed_rows(out.data(), x.data(), W_U.W, &bad, 1, B), std::out_of_range);
    }
}

TEST(CpuOpsLinear, Bf16ConversionHandCases) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_f32(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  // Ties go to the even neighbour; just above a tie rounds up.
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3F808000)), 0x3F80);
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3F818000)), 0x3F82);
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3F808001)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3F817FFF)), 0x3F81);
  // The largest float rounds past the largest bf16 to inf.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  // NaN stays NaN, even with its payload only in the bits that are dropped.
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(bits_to_float(0x7F800001)))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(bits_to_float(0xFF800001)))));
}

TEST(CpuOpsLinear, F16ConversionHandCases) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);  // below the tie with 2^16
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // the tie: even neighbour is 2^16, out of range
  EXPECT_EQ(f32_to_f16(1e6f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-1e6f), 0xFC00);
  EXPECT_EQ(f32_to_f16(inf), 0x7C00);
  EXPECT_EQ(f16_to_f32(0x7C00), inf);
  EXPECT_EQ(f16_to_f32(0xFC00), -inf);
  // Ties between normals: 1 + 2^-11 -> 1 (even), 1 + 3 * 2^-11 -> 1 + 2^-9 (even).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Subnormals: 6e-8 is nearest to the smallest, 2^-24 (5.96e-8).
  EXPECT_EQ(f32_to_f16(6e-8f), 0x0001);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03FF), 1023 * std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);            // tie with 0 -> 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0001f, -25)), 0x0001);         // just above the tie
  EXPECT_EQ(f32_to_f16(3 * std::ldexp(1.0f, -25)), 0x0002);        // 1.5 units -> 2
  EXPECT_EQ(f32_to_f16(5 * std::ldexp(1.0f, -25)), 0x0002);        // 2.5 units -> 2
  EXPECT_EQ(f32_to_f16(1023.5f * std::ldexp(1.0f, -24)), 0x0400);  // up into the normals
  EXPECT_EQ(f32_to_f16(1e-10f), 0x0000);
  EXPECT_EQ(f32_to_f16(-1e-10f), 0x8000);
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
  EXPECT_EQ(f16_to_f32(0x8000), 0.0f);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(bits_to_float(0x7F800001)))));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));
}

TEST(CpuOpsLinear, EveryHalfWordWidensExactlyAndRoundTrips) {
  for (uint32_t word = 0; word <= 0xFFFF; ++word) {
    const uint16_t h = static_cast<uint16_t>(word);
    // f16 value from its fields, in double: (-1)^s * 2^(e - 15) * (1 + m/1024), or m * 2^-24.
    const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    const float f = f16_to_f32(h);
    if (e == 31) {
      EXPECT_TRUE(m ? std::isnan(f) : f == sign * std::numeric_limits<float>::infinity()) << h;
      if (m)
        EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << h;
      else
        EXPECT_EQ(f32_to_f16(f), h);
    } else {
      const double want = sign * (e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25));
      ASSERT_EQ(static_cast<double>(f), want) << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
      ASSERT_EQ(f32_to_f16(f), h) << h;
    }
    const float b = bf16_to_f32(h);
    if (std::isnan(b))
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(b)))) << h;
    else
      ASSERT_EQ(f32_to_bf16(b), h) << h;
  }
}

TEST(CpuOpsLinear, EveryTieBetweenNeighboursRoundsToTheEvenOne) {
  // The midpoint of two neighbouring 16-bit values is exact in fp32; ties go to the even word.
  // From 0x7BFF the neighbour is inf (65520 -> inf), and the bf16 neighbour of 0x7F7F is inf too.
  for (uint16_t h = 0; h < 0x7C00; ++h) {
    const float mid = static_cast<float>(
        (static_cast<double>(f16_to_f32(h)) + f16_to_f32(static_cast<uint16_t>(h + 1))) / 2);
    const uint16_t even = h % 2 ? static_cast<uint16_t>(h + 1) : h;
    ASSERT_EQ(f32_to_f16(mid), even) << "f16 " << h;
    ASSERT_EQ(f32_to_f16(-mid), even | 0x8000) << "f16 " << h;
  }
  for (uint16_t h = 0; h < 0x7F80; ++h) {
    const float mid = bits_to_float((static_cast<uint32_t>(h) << 16) | 0x8000u);
    const uint16_t even = h % 2 ? static_cast<uint16_t>(h + 1) : h;
    ASSERT_EQ(f32_to_bf16(mid), even) << "bf16 " << h;
    ASSERT_EQ(f32_to_bf16(-mid), even | 0x8000) << "bf16 " << h;
  }
}

TEST(CpuOpsLinear, WidenToF32MatchesTheScalarConversions) {
  std::vector<uint16_t> words(0x10000 + 3);  // a length that leaves a vector remainder
  for (size_t k = 0; k < words.size(); ++k) words[k] = static_cast<uint16_t>(k * 40503u);
  std::vector<float> out(words.size());
  for (DType dtype : {DType::BF16, DType::F16}) {
    cpu::widen_to_f32(out.data(), words.data(), dtype, static_cast<int64_t>(words.size()));
    for (size_t k = 0; k < words.size(); ++k) {
      const float want = dtype == DType::BF16 ? bf16_to_f32(words[k]) : f16_to_f32(words[k]);
      ASSERT_EQ(std::bit_cast<uint32_t>(out[k]), std::bit_cast<uint32_t>(want))
          << dtype_name(dtype) << " word " << words[k];
    }
  }
  const std::vector<float> src = {1.5f, -0.0f, 3e38f};
  cpu::widen_to_f32(out.data(), src.data(), DType::F32, 3);
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 3), src);
  EXPECT_THROW(cpu::widen_to_f32(out.data(), words.data(), DType::I32, 1), std::invalid_argument);
}

TEST(CpuOpsLinear, F32ToF16AgreesWithTheCompilersFloat16) {
#ifdef __FLT16_MAX__
  // Random bit patterns over the whole float range, and a dense band around the subnormals and
  // the overflow threshold where the rounding cases are.
  std::mt19937 rng(23);
  std::uniform_int_distribution<uint32_t> any;
  std::uniform_real_distribution<float> exponent(-27.0f, 17.0f);
  for (int k = 0; k < 400000; ++k) {
    const float x = k % 2 ? bits_to_float(any(rng)) : std::exp2(exponent(rng)) * (k % 4 ? 1 : -1);
    const _Float16 h = static_cast<_Float16>(x);
    uint16_t want;
    std::memcpy(&want, &h, sizeof(want));
    if (std::isnan(x))
      ASSERT_TRUE(std::isnan(f16_to_f32(f32_to_f16(x))));
    else
      ASSERT_EQ(f32_to_f16(x), want) << std::hexfloat << x;
  }
#else
  GTEST_SKIP() << "this compiler has no _Float16";
#endif
}

}  // namespace
}  // namespace causeway
