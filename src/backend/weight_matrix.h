// A weight matrix as the checkpoint stores it: its element type (fp32, or bf16/f16 kept as
// stored and widened to fp32 inside the op) and its layout. Hugging Face's nn.Linear stores
// (out, in); GPT-2's Conv1D stores (in, out). The linear ops read either, so no family's
// weights are transposed or widened in memory.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace causeway {

struct WeightMatrix {
  const void* data = nullptr;  // fp32, or raw 16-bit words for BF16 / F16
  DType dtype = DType::F32;
  int64_t in = 0, out = 0;     // the matrix maps `in` features to `out` features
  bool out_major = true;       // true: stored (out, in) (nn.Linear); false: (in, out) (Conv1D)

  bool empty() const { return data == nullptr; }
  const float* f32() const { return static_cast<const float*>(data); }
  // Element (o, i) is at o * in + i when out_major, else i * out + o.
};

}  // namespace causeway
