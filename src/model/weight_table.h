// A family's weights as data: one row per tensor with its TransformerLens name, its Hugging
// Face name in the checkpoint, the shape stored there (from the config) and how a
// tensor-parallel rank takes its part. Names of per-layer tensors hold "{L}" for the layer
// index until expand_layers() fills it in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace causeway {

struct ModelConfig;

enum class TpSplit {
  Column,      // output features split (q/k/v, W_in, W_gate and their biases)
  Row,         // input features split, partial outputs reduced (W_O, W_out)
  Vocabulary,  // vocabulary rows split (embedding, unembedding)
  Replicated,  // every rank holds all of it (norm weights, row-parallel biases)
};
const char* tp_split_name(TpSplit s);

struct WeightRow {
  std::string tl_name;          // e.g. "blocks.{L}.attn.W_Q"; fused tensors list each: "W_Q,W_K,W_V"
  std::string hf_name;          // e.g. "model.layers.{L}.self_attn.q_proj.weight"
  std::vector<int64_t> shape;   // as stored in the checkpoint (HF layout, not TL's)
  TpSplit split = TpSplit::Replicated;
  int axis = -1;                // the stored axis that is split; -1 when replicated
};

// The family's rows with "{L}" replaced by 0 .. n_layer-1 (per-layer rows in layer order).
std::vector<WeightRow> expand_layers(const std::vector<WeightRow>& rows, int n_layer);

// Every tensor the family's checkpoint holds, layers expanded. Throws InputError for a
// model_type without a family.
std::vector<WeightRow> weight_table(const ModelConfig& cfg);

}  // namespace causeway
