// Scalar math written so GCC/Clang vectorize it inside `#pragma omp simd` loops (libm's
// expf/tanhf are not vectorized without -ffast-math). Accuracy: a few ulp over the fp32 range.
// It vectorizes at the baseline x86-64 (SSE2) too: no roundf (SSE4.1), no float-to-int
// conversion; CMakeLists.txt adds -fno-trapping-math, without which GCC keeps the clamps below
// as branches that only AVX-512's masked operations can vectorize.
#pragma once

#include <cstdint>
#include <cstring>

// The hot loops of the CPU kernels are compiled three times, for the baseline x86-64, AVX2 +
// FMA (x86-64-v3) and AVX-512 (x86-64-v4), and the dynamic loader picks the best the CPU has
// (GCC function multiversioning): one portable binary runs on every node at its full vector
// width. Not needed where the build already targets AVX2 or more (CAUSEWAY_NATIVE=ON).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__AVX2__)
#define CAUSEWAY_SIMD_CLONES \
  __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define CAUSEWAY_SIMD_CLONES
#endif

namespace causeway::cpu {

// exp(x) by range reduction x = k*ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r
// and 2^k built in the exponent bits. Inputs below -87 flush to 0 (softmax's masked entries).
inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;
  constexpr float kLn2Lo = 1.428606765330187e-06f;
  // Adding 1.5 * 2^23 rounds x * log2(e) to the nearest integer k, which then sits in the low
  // mantissa bits of `shifted` (valid for |k| < 2^22).
  constexpr float kRoundShift = 12582912.0f;
  // Clamped so that NaN passes through: a NaN score must stay NaN for the non-finite checks.
  x = x > 88.0f ? 88.0f : x;
  x = x < -87.0f ? -87.0f : x;
  const float shifted = x * kLog2e + kRoundShift;
  const float k = shifted - kRoundShift;
  float r = x - k * kLn2Hi - k * kLn2Lo;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t shifted_bits, shift_bits;
  std::memcpy(&shifted_bits, &shifted, sizeof(shifted_bits));
  std::memcpy(&shift_bits, &kRoundShift, sizeof(shift_bits));
  int32_t bits = (shifted_bits - shift_bits + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// tanh(x) = sign(x) * (1 - 2 / (e^{2|x|} + 1)); saturates cleanly for large |x|.
inline float tanh_approx(float x) {
  float ax = x < 0.0f ? -x : x;
  float e = exp_approx(2.0f * ax);
  float t = 1.0f - 2.0f / (e + 1.0f);
  return x < 0.0f ? -t : t;
}

}  // namespace causeway::cpu
