// The whole value of a hook whose axis tensor parallelism splits (shard_axis): each rank of a
// replica holds a block of heads or MLP units, and a cached activation written to a result
// file must be the model's, not one rank's.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "model/hooks.h"
#include "model/tensor_shard.h"
#include "parallel/collectives.h"

namespace causeway {

// `local` is this rank's value of hook `kind` for B sequences of T positions (the shapes of
// shard.local(cfg)); `whole` gets the hook's value with cfg's shapes. Collective over `tp` for
// a sharded axis; a copy otherwise. Key/value heads replicated over several ranks (tp a
// multiple of them) are taken from any of their holders: they hold the same values.
void gather_hook(HookKind kind, const ModelConfig& cfg, const TensorShard& shard,
                 const Collectives* tp, const Tensor& local, int B, int T,
                 std::vector<float>& whole);

}  // namespace causeway
