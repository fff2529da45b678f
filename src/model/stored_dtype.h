// The dtype a checkpoint stores its weight matrices in, beside the dtype causeway holds them
// in, so every command can say when 16-bit weights are widened to fp32 (twice the memory).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/tensor.h"

namespace causeway {

class Checkpoint;

struct StoredDtype {
  std::optional<DType> dtype;  // the matrices' one dtype; empty when unknown or mixed
  std::string text;            // "bf16", "f32", "bf16 and f32", "bf16 (config.json)", "unknown"
  bool sixteen_bit() const { return dtype == DType::BF16 || dtype == DType::F16; }
};

// "f32", "bf16", "f16": the spelling of --dtype and [model] dtype.
const char* weight_dtype_name(DType d);

// From the safetensors headers: the dtypes of the tensors of two or more dimensions (norm
// vectors are often kept in fp32 beside bf16 matrices). No tensor data is read.
StoredDtype stored_dtype(const Checkpoint& ckpt);
// The checkpoint's headers when the folder has weights; otherwise config.json's "dtype"
// (transformers 5) or "torch_dtype" as the config claims it, marked "(config.json)".
StoredDtype stored_dtype(const std::filesystem::path& model_dir);

// "bf16, held as f32": the pair every command prints.
std::string weights_dtype_text(const StoredDtype& stored, DType held);

}  // namespace causeway
