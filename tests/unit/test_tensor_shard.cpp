// Which heads, key/value heads, MLP units and vocabulary rows each tensor-parallel rank holds,
// and the tp sizes that are refused.
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/tensor_shard.h"

namespace causeway {
namespace {

ModelConfig llama_1b_shape() {
  ModelConfig c;
  c.model_type = "llama";
  c.n_layer = 16, c.n_embd = 2048, c.n_head = 32, c.n_kv_head = 8, c.head_dim = 64;
  c.n_inner = 8192, c.vocab_size = 128256, c.n_positions = 8192;
  return c;
}

TEST(TensorShard, SplitsKeyValueHeadsWhenTpDividesThem) {
  const ModelConfig c = llama_1b_shape();
  for (int r = 0; r < 4; ++r) {
    const TensorShard s = TensorShard::make(c, r, 4, "config.json");
    EXPECT_EQ(s.heads, 8);
    EXPECT_EQ(s.head_begin, 8 * r);
    EXPECT_EQ(s.kv_heads, 2);
    EXPECT_EQ(s.kv_head_begin, 2 * r);
    EXPECT_EQ(s.mlp_units, 2048);
    EXPECT_EQ(s.mlp_begin, 2048 * r);
    EXPECT_EQ(s.vocab_rows, 32064);
    EXPECT_EQ(s.vocab_begin, 32064 * r);
    const ModelConfig l = s.local(c);
    EXPECT_EQ(l.n_head, 8);
    EXPECT_EQ(l.kv_heads(), 2);
    EXPECT_EQ(l.d_head(), 64);  // kept, not d_model / local heads
    EXPECT_EQ(l.n_inner, 2048);
  }
}

TEST(TensorShard, ReplicatesTheKeyValueHeadItsQueriesReadWhenTpExceedsThem) {
  const ModelConfig c = llama_1b_shape();  // 32 heads in 8 groups of 4
  for (int r = 0; r < 16; ++r) {
    const TensorShard s = TensorShard::make(c, r, 16, "config.json");
    EXPECT_EQ(s.heads, 2);
    EXPECT_EQ(s.kv_heads, 1);
    // Query heads 2r and 2r + 1 read kv head (2r) / 4.
    EXPECT_EQ(s.kv_head_begin, (2 * r) / 4) << r;
  }
}

TEST(TensorShard, PadsTheVocabularyToAMultipleOfTp) {
  ModelConfig c = llama_1b_shape();
  c.vocab_size = 1001;
  const TensorShard last = TensorShard::make(c, 3, 4, "config.json");
  EXPECT_EQ(last.vocab_rows, 251);
  EXPECT_EQ(last.vocab_begin, 753);  // rows 753..1003, of which 1001..1003 are padding
}

TEST(TensorShard, RefusesSizesThatDoNotFit) {
  ModelConfig c = llama_1b_shape();
  auto message = [&](int tp) {
    try {
      TensorShard::make(c, 0, tp, "config.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(message(3), "config.json: tp: 3 does not divide the model's 32 attention heads");
  c.n_kv_head = 6, c.n_head = 24;  // 24 heads, 6 kv heads: tp 4 neither divides nor multiplies 6
  EXPECT_EQ(message(4),
            "config.json: tp: 4 neither divides nor is a multiple of the model's 6 key/value heads");
  c = llama_1b_shape();
  c.n_inner = 8190;
  EXPECT_EQ(message(4), "config.json: tp: 4 does not divide the MLP width 8190");
}

// The split axis comes from the hook layout table: a "head" axis of query or key/value heads,
// a "neuron" axis of MLP units; everything else is whole on every rank.
TEST(TensorShard, ShardAxisOfEachHookKind) {
  const ModelConfig c = llama_1b_shape();
  for (HookKind k : {HookKind::Q, HookKind::Z, HookKind::Result, HookKind::AttnScores,
                     HookKind::Pattern, HookKind::RotQ, HookKind::QNormScale, HookKind::QNormNormalized})
    EXPECT_EQ(shard_axis(k, c), ShardAxis::QueryHeads) << HookPoint{k, 0}.name();
  for (HookKind k : {HookKind::K, HookKind::V, HookKind::RotK, HookKind::KNormScale,
                     HookKind::KNormNormalized})
    EXPECT_EQ(shard_axis(k, c), ShardAxis::KvHeads) << HookPoint{k, 0}.name();
  for (HookKind k : {HookKind::MlpPre, HookKind::MlpPost, HookKind::MlpPreLinear})
    EXPECT_EQ(shard_axis(k, c), ShardAxis::MlpUnits) << HookPoint{k, 0}.name();
  for (HookKind k : {HookKind::Embed, HookKind::ResidPre, HookKind::Ln1Scale, HookKind::Ln1Normalized,
                     HookKind::AttnOut, HookKind::ResidMid, HookKind::MlpOut, HookKind::ResidPost,
                     HookKind::LnFinalScale})
    EXPECT_EQ(shard_axis(k, c), ShardAxis::None) << HookPoint{k, 0}.name();
}

TEST(TensorShard, BlockOfEachAxis) {
  const ModelConfig c = llama_1b_shape();
  const TensorShard s = TensorShard::make(c, 2, 4, "config.json");
  EXPECT_EQ(shard_block(s, ShardAxis::QueryHeads, c).begin, 16);
  EXPECT_EQ(shard_block(s, ShardAxis::QueryHeads, c).count, 8);
  EXPECT_EQ(shard_block(s, ShardAxis::KvHeads, c).begin, 4);
  EXPECT_EQ(shard_block(s, ShardAxis::KvHeads, c).count, 2);
  EXPECT_EQ(shard_block(s, ShardAxis::MlpUnits, c).begin, 4096);
  EXPECT_TRUE(shard_block(s, ShardAxis::MlpUnits, c).holds(6143));
  EXPECT_FALSE(shard_block(s, ShardAxis::MlpUnits, c).holds(6144));
  // Not sharded: the whole axis.
  const ShardBlock whole = shard_block(TensorShard{}, ShardAxis::KvHeads, c);
  EXPECT_EQ(whole.begin, 0);
  EXPECT_EQ(whole.count, 8);
}

}  // namespace
}  // namespace causeway
