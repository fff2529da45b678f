// Which part of a model one tensor-parallel rank holds (Megatron-style): a contiguous block of
// query heads with the key/value heads they read (split when tp divides the kv heads,
// replicated when tp is a multiple of them), a block of MLP units, and a block of vocabulary
// rows (the vocabulary padded up to a multiple of tp). Norms, position embeddings and the
// biases of row-parallel layers are replicated.
#pragma once

#include <string>

#include "model/hooks.h"
#include "model/model_config.h"

namespace causeway {

struct TensorShard {
  int rank = 0, size = 1;
  int head_begin = 0, heads = 0;        // query heads [head_begin, head_begin + heads)
  int kv_head_begin = 0, kv_heads = 0;  // key/value heads
  int mlp_begin = 0, mlp_units = 0;     // MLP hidden units
  int vocab_begin = 0, vocab_rows = 0;  // rows of W_E / W_U (the last block may pass V)

  // The shard of rank `rank` of `size`; InputError(source, "tp", ...) when tp does not divide
  // the heads, the MLP width, or (under grouped-query attention) neither divides nor is a
  // multiple of the key/value heads.
  static TensorShard make(const ModelConfig& cfg, int rank, int size, const std::string& source);
  // The sizes this rank computes with: heads, kv heads, MLP width and vocabulary rows local,
  // head_dim kept.
  ModelConfig local(const ModelConfig& cfg) const;
  bool sharded() const { return size > 1; }
};

// The axis of a hook's value that a tensor-parallel rank holds only a block of: query heads
// (q, z, result, scores, pattern, rot_q, q_norm), key/value heads (k, v, rot_k, k_norm) or MLP
// units (pre, post, pre_linear); None for the residual-stream hooks, which every rank holds
// whole. Read from the hook layout table (a "head" or "neuron" axis), so a new hook is covered.
enum class ShardAxis { None, QueryHeads, KvHeads, MlpUnits };
ShardAxis shard_axis(HookKind kind, const ModelConfig& cfg);

// The block of `axis` rank `shard` holds: [begin, begin + count) in the model's numbering (the
// whole axis when not sharded; empty for ShardAxis::None, which has no such numbering).
struct ShardBlock {
  int begin = 0, count = 0;
  bool holds(int i) const { return i >= begin && i < begin + count; }
};
ShardBlock shard_block(const TensorShard& shard, ShardAxis axis, const ModelConfig& cfg);

}  // namespace causeway
