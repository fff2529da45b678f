// C = A @ B on the CPU's bf16 dot-product instructions (AVX512_BF16, AMX) through oneDNN:
// A (fp32 activations) is rounded to bf16, B is a bf16 weight read where it lies, products are
// summed in fp32. Used only when the run asks for bf16 compute (ops_linear.h); the caller falls
// back to widening B to fp32 whenever this returns false.
#pragma once

#include <cstdint>

namespace causeway::cpu {

// True when this process can take the fast path: oneDNN was built in, the CPU has AVX512_BF16
// (checked at run time, so one portable binary serves every node), and the environment does not
// say CAUSEWAY_CPU_BF16=0 (the switch that forces the widening path, for tests and benchmarks).
bool bf16_dot_products_available();

// C (M, J) = A (M, K) @ B, or C += A @ B when accumulate; lda / ldc are row strides of A and C.
// B element (k, j) is at b[j * ldb + k] when j_major, else b[k * ldb + j]. Returns false, having
// written nothing, when the fast path is unavailable or oneDNN offers only its reference kernel
// for this shape.
bool bf16_dot_gemm(float* C, int64_t ldc, const float* A, int64_t lda, int64_t M,
                   const uint16_t* b, int64_t K, int64_t J, bool j_major, int64_t ldb,
                   bool accumulate);

}  // namespace causeway::cpu
