// Which rank of a tensor-parallel replica patches a cell, and under which local number: the
// holder of the head or MLP unit renumbers it within its block; residual-stream cells and
// cells over all heads are the same everywhere.
#include <gtest/gtest.h>

#include "patching/patch.h"

namespace causeway {
namespace {

ModelConfig llama_1b_shape() {
  ModelConfig c;
  c.model_type = "llama";
  c.n_layer = 16, c.n_embd = 2048, c.n_head = 32, c.n_kv_head = 8, c.head_dim = 64;
  c.n_inner = 8192, c.vocab_size = 128256, c.n_positions = 8192;
  return c;
}

// The ranks of a tp group that patch `cell`, with the local index each uses.
std::vector<std::pair<int, int>> holders(const PatchCell& cell, const ModelConfig& c, int tp, bool neuron) {
  std::vector<std::pair<int, int>> out;
  for (int r = 0; r < tp; ++r)
    if (const auto mine = local_cell(cell, TensorShard::make(c, r, tp, "config.json"), c))
      out.push_back({r, neuron ? mine->neuron : mine->head});
  return out;
}

using Holders = std::vector<std::pair<int, int>>;

TEST(ShardedPatchCell, HeadCellsArePatchedByTheirHolderInLocalNumbers) {
  const ModelConfig c = llama_1b_shape();
  EXPECT_EQ(holders({HookKind::Z, 3, 5, 13}, c, 4, false), (Holders{{1, 5}}));
  EXPECT_EQ(holders({HookKind::Pattern, 0, 2, 31, -1, 1}, c, 4, false), (Holders{{3, 7}}));
  EXPECT_EQ(holders({HookKind::V, 0, -1, 5}, c, 4, false), (Holders{{2, 1}}));
  // tp 16 over 8 key/value heads: ranks 10 and 11 both hold kv head 5 and both patch it.
  EXPECT_EQ(holders({HookKind::K, 0, -1, 5}, c, 16, false), (Holders{{10, 0}, {11, 0}}));
}

TEST(ShardedPatchCell, NeuronCellsArePatchedByTheirHolder) {
  const ModelConfig c = llama_1b_shape();
  PatchCell cell{HookKind::MlpPost, 1, 4};
  cell.neuron = 5000;
  EXPECT_EQ(holders(cell, c, 4, true), (Holders{{2, 904}}));
}

TEST(ShardedPatchCell, ResidualCellsAndWholeHooksAreTheSameOnEveryRank) {
  const ModelConfig c = llama_1b_shape();
  EXPECT_EQ(holders({HookKind::ResidPre, 2, 7}, c, 4, false), (Holders{{0, -1}, {1, -1}, {2, -1}, {3, -1}}));
  EXPECT_EQ(holders({HookKind::Z, 2, 7, -1}, c, 2, false), (Holders{{0, -1}, {1, -1}}));
  // Unsharded: the cell as it is.
  const auto same = local_cell({HookKind::Z, 0, 1, 30}, TensorShard{}, c);
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(same->head, 30);
}

}  // namespace
}  // namespace causeway
