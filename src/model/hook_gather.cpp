#include "model/hook_gather.h"

#include <cstring>

namespace causeway {

void gather_hook(HookKind kind, const ModelConfig& cfg, const TensorShard& shard,
                 const Collectives* tp, const Tensor& local, int B, int T,
                 std::vector<float>& whole) {
  const ShardAxis axis = shard_axis(kind, cfg);
  if (axis == ShardAxis::None || !shard.sharded() || !tp) {
    whole.assign(local.data, local.data + local.numel());
    return;
  }
  // Each sequence (head-major hooks) or position (the rest) holds the sharded axis as one
  // contiguous run of `count` units; a rank's run goes to [begin, begin + count) of the whole.
  const HookGeometry g = hook_geometry(kind, cfg);
  const int64_t outer = g.head_major ? B : static_cast<int64_t>(B) * T;
  const int64_t unit = g.head_major ? static_cast<int64_t>(T) * T
                       : axis == ShardAxis::MlpUnits ? 1
                                                     : g.width;
  const int64_t n = shard_block(shard, axis, cfg).count;
  const int64_t N = axis == ShardAxis::MlpUnits ? g.width : g.heads;
  std::vector<float> all(static_cast<size_t>(tp->size() * outer * n * unit));
  tp->allgather(local.data, outer * n * unit, all.data());
  whole.assign(static_cast<size_t>(outer * N * unit), 0.0f);
  for (int r = 0; r < tp->size(); ++r) {
    const int64_t begin = shard_block(TensorShard::make(cfg, r, tp->size(), "tp"), axis, cfg).begin;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(whole.data() + (o * N + begin) * unit, all.data() + ((r * outer + o) * n) * unit,
                  sizeof(float) * n * unit);
  }
}

}  // namespace causeway
