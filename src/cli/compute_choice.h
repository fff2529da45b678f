// `[model] compute` / `--compute`: how bf16 weight matrices are multiplied. "f32" (the default)
// widens them to fp32, so results equal an fp32 run on the rounded weights; "bf16" uses the
// CPU's bf16 dot products where it has them (activations rounded to bf16 too, fp32 sums).
#pragma once

#include <string>

#include "backend/ops_linear.h"
#include "core/tensor.h"

namespace causeway {

// "f32" (also "fp32", "float32") or "bf16" ("bfloat16"); InputError(source, field, ...) lists the
// choices otherwise.
cpu::SixteenBitCompute parse_compute(const std::string& text, const std::string& source,
                                     const std::string& field);
const char* compute_name(cpu::SixteenBitCompute compute);
// What the matmuls really compute in on this machine: "bf16" only where bf16 was chosen and the
// bf16 dot products run, else "f32" (what --resume compares).
const char* effective_compute_name(cpu::SixteenBitCompute compute);

// Refuses bf16 compute on weights not held in bf16 (it would change nothing), naming the field.
void check_compute_fits_dtype(cpu::SixteenBitCompute compute, DType held, const std::string& source,
                              const std::string& field);

// What a run that chose bf16 computes in, for its start line: "compute bf16 (bf16 dot products)"
// or "compute bf16 requested, computed in f32 (no bf16 dot products: ...)"; "" for the default.
std::string compute_text(cpu::SixteenBitCompute compute);

}  // namespace causeway
