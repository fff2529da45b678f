// GPT-2 parameters in one arena, laid out from a single table of {name, shape} built from the
// config. Names follow TransformerLens (W_Q, b_in, ...); layouts follow Hugging Face's Conv1D
// (in, out), so x @ W needs no transpose. Q, K and V are split out of c_attn on load: each is
// a column slice, which is also what a tensor-parallel rank would read.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/arena.h"
#include "model/model_config.h"

namespace causeway {

class Checkpoint;

struct BlockWeights {
  Tensor ln1_w, ln1_b;     // (C)
  Tensor W_Q, W_K, W_V;    // (C, C) columns = heads x d_head
  Tensor b_Q, b_K, b_V;    // (C)
  Tensor W_O, b_O;         // (C, C), (C)
  Tensor ln2_w, ln2_b;     // (C)
  Tensor W_in, b_in;       // (C, M), (M)
  Tensor W_out, b_out;     // (M, C), (C)
};

class GPT2Weights {
 public:
  explicit GPT2Weights(const ModelConfig& cfg);  // zero-filled

  // Reads every tensor from a Hugging Face GPT-2 checkpoint (with or without the
  // "transformer." prefix). Every size of `cfg` and every shape is checked against the stored
  // tensors before memory is allocated; errors name `config_source` (the config.json read).
  static GPT2Weights load(const ModelConfig& cfg, const Checkpoint& ckpt,
                          const std::string& config_source = "config.json");

  Tensor W_E, W_pos;       // (V, C), (P, C)
  std::vector<BlockWeights> blocks;
  Tensor ln_final_w, ln_final_b;  // (C)
  Tensor W_U;              // (V, C): the unembedding, tied to W_E unless lm_head differs

  const Arena& arena() const { return arena_; }

 private:
  static std::vector<TensorSpec> table(const ModelConfig& cfg);
  void bind(const ModelConfig& cfg);
  Arena arena_;
};

}  // namespace causeway
