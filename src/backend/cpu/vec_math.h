// Scalar math written so GCC/Clang vectorize it inside `#pragma omp simd` loops (libm's
// expf/tanhf are not vectorized without -ffast-math). Accuracy: a few ulp over the fp32 range.
#pragma once

#include <cstdint>
#include <cstring>

namespace causeway::cpu {

// exp(x) by range reduction x = k*ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r
// and 2^k built in the exponent bits. Inputs below -87 flush to 0 (softmax's masked entries).
inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;
  constexpr float kLn2Lo = 1.428606765330187e-06f;
  x = x < 88.0f ? x : 88.0f;
  x = x > -87.0f ? x : -87.0f;
  float k = __builtin_roundf(x * kLog2e);
  float r = x - k * kLn2Hi - k * kLn2Lo;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
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
