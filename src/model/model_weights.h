// The parameters of any supported family in one arena, laid out from the family's weight
// table (weight_table.h). Names follow TransformerLens (W_Q, b_in, ...). Matrices keep the
// checkpoint's layout: GPT-2's Conv1D (in, out), everyone else's nn.Linear (out, in), so a
// tensor-parallel rank reads its slice as stored. Vectors (norms, biases) are always fp32;
// matrices are fp32, or kept as bf16 / f16 words when `[model] dtype` asks for it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/weight_matrix.h"
#include "core/arena.h"
#include "model/model_config.h"

namespace causeway {

class Checkpoint;
struct TensorShard;

// "f32" (also "fp32", "float32"), "bf16" ("bfloat16") or "f16" ("fp16", "float16"): how
// weight matrices are held. InputError(source, field, ...) lists the choices otherwise.
DType parse_weight_dtype(const std::string& text, const std::string& source,
                         const std::string& field);

// A weight matrix: an fp32 Tensor in its stored shape (data null when held in 16 bits), plus
// what a linear op needs to read it in either precision.
struct Weight : Tensor {
  const uint16_t* half = nullptr;  // the 16-bit words when dtype is BF16 or F16
  DType dtype = DType::F32;
  bool out_major = true;           // stored (out, in); false: (in, out)
  WeightMatrix matrix() const;
};

struct BlockWeights {
  Tensor ln1_w, ln1_b;       // (C); b empty for RMSNorm
  Weight W_Q, W_K, W_V;      // C -> NH*HS, C -> KV*HS
  Tensor b_Q, b_K, b_V;      // empty without q/k/v biases
  Tensor q_norm_w, k_norm_w; // (HS), q/k norms only
  Weight W_O;                // NH*HS -> C
  Tensor b_O;                // (C) or empty
  Tensor ln1_post_w;         // (C), post-norms only
  Tensor ln2_w, ln2_b;       // (C)
  Weight W_gate, W_in;       // C -> M (W_gate: gated MLPs only)
  Tensor b_gate, b_in;       // (M) or empty
  Weight W_out;              // M -> C
  Tensor b_out;              // (C) or empty
  Tensor ln2_post_w;         // (C), post-norms only
};

class ModelWeights {
 public:
  // Zero-filled, matrices in `dtype` (F32, BF16 or F16).
  explicit ModelWeights(const ModelConfig& cfg, DType dtype = DType::F32);
  ~ModelWeights();
  ModelWeights(ModelWeights&&) noexcept;
  ModelWeights& operator=(ModelWeights&&) noexcept;

  // Reads every tensor of the family's table from the checkpoint (GPT-2 with or without the
  // "transformer." prefix). Every size of `cfg` and every shape is checked against the stored
  // tensors before memory is allocated; errors name `config_source` (the config.json read).
  // With a shard, only this tensor-parallel rank's slices are read and held (shapes of
  // shard->local(cfg)).
  static ModelWeights load(const ModelConfig& cfg, const Checkpoint& ckpt,
                           const std::string& config_source = "config.json",
                           DType dtype = DType::F32, const TensorShard* shard = nullptr);

  // What load() checks before allocating, alone: the layer count and every tensor's shape
  // against the checkpoint's headers (no tensor data is read). InputError names the field.
  static void check_against(const ModelConfig& cfg, const Checkpoint& ckpt,
                            const std::string& config_source = "config.json");

  Weight W_E;              // (V, C): token rows (embedding lookup); scaled at run time
  Tensor W_pos;            // (P, C); empty for rotary models
  std::vector<BlockWeights> blocks;
  Tensor ln_final_w, ln_final_b;  // (C); b empty for RMSNorm
  Weight W_U;              // (V, C) out-major: the unembedding (W_E itself when tied)

  // The fp32 parameters (all of them when dtype is F32: what training updates).
  const Arena& arena() const { return arena_; }
  DType dtype() const { return dtype_; }
  // Bytes held: fp32 arena plus 16-bit matrices.
  size_t bytes() const;
  // What bytes() would be for `cfg` (a tensor-parallel rank: its local config), without
  // allocating: the sizing of a dry run.
  static size_t bytes_for(const ModelConfig& cfg, DType dtype);

 private:
  struct Layout;
  void bind(const ModelConfig& cfg);
  Arena arena_;
  DType dtype_ = DType::F32;
  std::vector<uint16_t> half_;  // 16-bit matrices, back to back
  struct HalfSlot {
    size_t offset;  // in half_
    Shape shape;
  };
  std::map<std::string, HalfSlot> half_slots_;  // by parameter name
};

}  // namespace causeway
