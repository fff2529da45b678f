#include "cli/compute_choice.h"

#include "backend/cpu/bf16_dot_gemm.h"
#include "core/error.h"
#include "model/stored_dtype.h"

namespace causeway {

cpu::SixteenBitCompute parse_compute(const std::string& text, const std::string& source,
                                     const std::string& field) {
  if (text == "f32" || text == "fp32" || text == "float32") return cpu::SixteenBitCompute::Exact;
  if (text == "bf16" || text == "bfloat16") return cpu::SixteenBitCompute::BF16;
  throw InputError(source, field, "\"" + text + "\" is not a compute type (choices: f32, bf16)");
}

const char* compute_name(cpu::SixteenBitCompute compute) {
  return compute == cpu::SixteenBitCompute::BF16 ? "bf16" : "f32";
}

const char* effective_compute_name(cpu::SixteenBitCompute compute) {
  return compute == cpu::SixteenBitCompute::BF16 && cpu::bf16_dot_products_available() ? "bf16" : "f32";
}

void check_compute_fits_dtype(cpu::SixteenBitCompute compute, DType held, const std::string& source,
                              const std::string& field) {
  if (compute == cpu::SixteenBitCompute::BF16 && held != DType::BF16)
    throw InputError(source, field,
                     std::string("\"bf16\" needs weights held in bf16 (dtype = \"bf16\"), not ") +
                         weight_dtype_name(held));
}

std::string compute_text(cpu::SixteenBitCompute compute) {
  if (compute == cpu::SixteenBitCompute::Exact) return "";
  if (cpu::bf16_dot_products_available()) return "compute bf16 (bf16 dot products)";
  return "compute bf16 requested, computed in f32 (no bf16 dot products: needs AVX512_BF16 and "
         "oneDNN, and CAUSEWAY_CPU_BF16 not 0)";
}

}  // namespace causeway
