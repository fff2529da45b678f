// TransformerLens' `patching` functions and the causeway sweeps they correspond to, and the
// comparison the patching golden tests use: shared by the GPT-2 and the family golden tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "patching/sweep_grid.h"

namespace causeway::fixtures {

struct TlSweep {
  const char* function;
  SweepKind kind;
  bool by_pos;
};

inline const std::vector<TlSweep> kTlSweeps = {
    {"get_act_patch_resid_pre", SweepKind::ResidPre, true},
    {"get_act_patch_resid_mid", SweepKind::ResidMid, true},
    {"get_act_patch_attn_out", SweepKind::AttnOut, true},
    {"get_act_patch_mlp_out", SweepKind::MlpOut, true},
    {"get_act_patch_attn_head_out_all_pos", SweepKind::HeadOut, false},
    {"get_act_patch_attn_head_out_by_pos", SweepKind::HeadOut, true},
    {"get_act_patch_attn_head_q_all_pos", SweepKind::HeadQ, false},
    {"get_act_patch_attn_head_q_by_pos", SweepKind::HeadQ, true},
    {"get_act_patch_attn_head_k_all_pos", SweepKind::HeadK, false},
    {"get_act_patch_attn_head_k_by_pos", SweepKind::HeadK, true},
    {"get_act_patch_attn_head_v_all_pos", SweepKind::HeadV, false},
    {"get_act_patch_attn_head_v_by_pos", SweepKind::HeadV, true},
    {"get_act_patch_attn_head_pattern_all_pos", SweepKind::HeadPattern, false},
    {"get_act_patch_attn_head_pattern_by_pos", SweepKind::HeadPattern, true},
    {"get_act_patch_attn_head_pattern_dest_src_pos", SweepKind::HeadPatternDestSrc, true},
    {"get_act_patch_block_every", SweepKind::BlockEvery, true},
    {"get_act_patch_attn_head_all_pos_every", SweepKind::HeadEvery, false},
    {"get_act_patch_attn_head_by_pos_every", SweepKind::HeadEvery, true},
};

// Largest |a - b| over the cells where `use` is true (all when empty); NaN must meet NaN.
inline double max_diff(const std::vector<float>& a, const std::vector<float>& b,
                       const std::vector<bool>& use = {}) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (!use.empty() && !use[i]) continue;
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      EXPECT_TRUE(std::isnan(a[i]) && std::isnan(b[i])) << "NaN mismatch at " << i;
      continue;
    }
    m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  }
  return m;
}

}  // namespace causeway::fixtures
