// bf16 / f16 <-> fp32 conversions. Narrowing is integer arithmetic on the fp32 bits, so the
// result does not depend on the FPU's rounding mode or flush-to-zero flags.
#include <cstring>
#include <stdexcept>
#include <string>

#include "backend/cpu/vec_math.h"
#include "backend/ops_linear.h"

namespace causeway::cpu {

uint16_t f32_to_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  // A NaN whose payload sits only in the dropped bits would round to inf: set the quiet bit.
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Round to nearest, ties to even: add just under half an ulp, plus one when the kept lsb is 1.
  // A carry into the exponent is correct rounding, up to inf.
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

uint16_t f32_to_f16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t mag = bits & 0x7FFFFFFFu;
  if (mag >= 0x7F800000u)  // inf stays inf; NaN keeps its top payload bits, made quiet
    return sign | 0x7C00u | (mag > 0x7F800000u ? 0x0200u | ((mag >> 13) & 0x03FFu) : 0u);
  // 65520 is halfway between 65504 (largest half, odd mantissa) and 2^16: ties to even -> inf.
  if (mag >= 0x477FF000u) return sign | 0x7C00u;
  if (mag >= 0x38800000u) {  // normal half (>= 2^-14): rebias the exponent, round 13 bits away
    const uint32_t rounded = mag + 0x0FFFu + ((mag >> 13) & 1u);
    return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
  }
  // Subnormal half: the value in units of 2^-24, rounded to nearest even. 2^-25 itself is the
  // tie between 0 and 2^-24 and goes to 0.
  if (mag <= 0x33000000u) return sign;
  const uint32_t mantissa = (mag & 0x007FFFFFu) | 0x00800000u;
  const uint32_t shift = 126u - (mag >> 23);  // 14..24 over this range
  uint32_t units = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (units & 1u))) ++units;  // may carry into 2^-14: still right
  return sign | static_cast<uint16_t>(units);
}

namespace {

CAUSEWAY_SIMD_CLONES
void widen_bf16(float* out, const uint16_t* src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(src[i]);
}

CAUSEWAY_SIMD_CLONES
void widen_f16(float* out, const uint16_t* src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(src[i]);
}

}  // namespace

void widen_to_f32(float* out, const void* src, DType dtype, int64_t n) {
  switch (dtype) {
    case DType::F32:
      std::memcpy(out, src, sizeof(float) * n);
      return;
    case DType::BF16:
      widen_bf16(out, static_cast<const uint16_t*>(src), n);
      return;
    case DType::F16:
      widen_f16(out, static_cast<const uint16_t*>(src), n);
      return;
    default:
      throw std::invalid_argument(std::string("widen_to_f32: dtype ") + dtype_name(dtype) +
                                  " is not a float type (expected F32, BF16 or F16)");
  }
}

}  // namespace causeway::cpu
