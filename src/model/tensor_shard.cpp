#include "model/tensor_shard.h"

#include <algorithm>

#include "core/error.h"

namespace causeway {

TensorShard TensorShard::make(const ModelConfig& cfg, int rank, int size,
                              const std::string& source) {
  const int NH = cfg.n_head, KV = cfg.kv_heads(), M = cfg.n_inner, V = cfg.vocab_size;
  auto refuse = [&](const std::string& why) {
    throw InputError(source, "tp", std::to_string(size) + " " + why);
  };
  if (size < 1 || rank < 0 || rank >= size) refuse("is not a valid tensor-parallel size");
  if (NH % size != 0)
    refuse("does not divide the model's " + std::to_string(NH) + " attention heads");
  if (KV % size != 0 && size % KV != 0)
    refuse("neither divides nor is a multiple of the model's " + std::to_string(KV) +
           " key/value heads");
  if (M % size != 0) refuse("does not divide the MLP width " + std::to_string(M));
  TensorShard s;
  s.rank = rank, s.size = size;
  s.heads = NH / size, s.head_begin = rank * s.heads;
  if (KV % size == 0) {
    s.kv_heads = KV / size, s.kv_head_begin = rank * s.kv_heads;
  } else {  // more ranks than kv heads: each rank keeps the one its query heads read
    s.kv_heads = 1, s.kv_head_begin = s.head_begin / (NH / KV);
  }
  s.mlp_units = M / size, s.mlp_begin = rank * s.mlp_units;
  s.vocab_rows = (V + size - 1) / size, s.vocab_begin = rank * s.vocab_rows;
  return s;
}

ModelConfig TensorShard::local(const ModelConfig& cfg) const {
  ModelConfig c = cfg;
  c.head_dim = cfg.d_head();
  c.n_head = heads;
  c.n_kv_head = kv_heads;
  c.n_inner = mlp_units;
  c.vocab_size = vocab_rows;
  return c;
}

}  // namespace causeway

namespace causeway {

ShardAxis shard_axis(HookKind kind, const ModelConfig& cfg) {
  const std::vector<std::string> axes = hook_axes(kind, cfg);
  if (std::find(axes.begin(), axes.end(), "neuron") != axes.end()) return ShardAxis::MlpUnits;
  if (std::find(axes.begin(), axes.end(), "head") == axes.end()) return ShardAxis::None;
  // With as many key/value heads as query heads both split alike, so either answer holds.
  return hook_geometry(kind, cfg).heads == cfg.n_head ? ShardAxis::QueryHeads : ShardAxis::KvHeads;
}

ShardBlock shard_block(const TensorShard& s, ShardAxis axis, const ModelConfig& cfg) {
  const bool whole = !s.sharded();
  switch (axis) {
    case ShardAxis::QueryHeads: return whole ? ShardBlock{0, cfg.n_head} : ShardBlock{s.head_begin, s.heads};
    case ShardAxis::KvHeads: return whole ? ShardBlock{0, cfg.kv_heads()} : ShardBlock{s.kv_head_begin, s.kv_heads};
    case ShardAxis::MlpUnits: return whole ? ShardBlock{0, cfg.n_inner} : ShardBlock{s.mlp_begin, s.mlp_units};
    case ShardAxis::None: break;
  }
  return {};
}

}  // namespace causeway
