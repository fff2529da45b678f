// Direct logit attribution and the logit lens (issue 24) against invariants that hold for any
// model: the decomposition sums to the logit difference, a layer's heads plus its b_O term are
// its attn_out term, the lens's last row is the run's logit difference. Goldens from
// TransformerLens are in test_self_repair_goldens.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "patching/direct_logit.h"
#include "patching/logit_lens.h"
#include "tiny_model.h"

namespace causeway {
namespace {

using fixtures::golden_pairs;
using fixtures::tiny_model;

struct ReadoutRun {
  std::vector<float> effect;
  SweepBaselines base;
  SweepGrid grid;
};

ReadoutRun run_all(SweepEngine& e, int pairs) {
  ReadoutRun r;
  r.grid = e.grid();
  const int64_t n = static_cast<int64_t>(r.grid.cells.size());
  r.effect.resize(pairs * n);
  e.run_block(0, pairs, 0, static_cast<int>(n), r.effect.data(), r.base);
  return r;
}

RunReadout readout_of(TransformerModel& m, const PairDataset& data) {
  std::vector<std::vector<int32_t>> rows;
  std::vector<int> read;
  std::vector<const PromptPair*> pairs;
  for (const PromptPair& p : data.pairs) {
    rows.push_back(p.clean);
    read.push_back(read_position(p));
    pairs.push_back(&p);
  }
  RunReadout r;
  r.build(m, TokenBatch::padded(rows), read, pairs, {});
  return r;
}

ReadoutRequest request(const std::string& kind, SweepKind sweep, bool by_pos, bool components = false) {
  ReadoutRequest q;
  q.kind = kind;
  q.spec.kind = sweep;
  q.spec.by_pos = by_pos;
  q.components = components;
  return q;
}

TEST(DirectLogit, ComponentsSumToTheLogitDifference) {
  const PairDataset& data = golden_pairs();
  const int P = static_cast<int>(data.pairs.size());
  for (bool corrupted : {false, true}) {
    ReadoutRequest q = request("direct_logit", SweepKind::ResidPre, false, true);
    q.corrupted = corrupted;
    auto e = make_direct_logit(tiny_model(), data, q);
    const ReadoutRun r = run_all(*e, P);
    const int64_t n = static_cast<int64_t>(r.grid.cells.size());
    ASSERT_EQ(n, 2 + 2 * 2 + 1);  // embed, pos_embed, 2 x (attn, mlp), bias
    for (int p = 0; p < P; ++p) {
      double sum = 0.0;
      for (int64_t c = 0; c < n; ++c) sum += r.effect[p * n + c];
      const double ld = corrupted ? r.base.corrupted_ld[p] : r.base.clean_ld[p];
      EXPECT_NEAR(sum, ld, 2e-4) << "pair " << p;
      EXPECT_NE(r.effect[p * n + n - 1], 0.0f);  // GPT-2's ln_final has a bias
    }
  }
}

TEST(DirectLogit, HeadsPlusOutputBiasAreTheAttentionTerm) {
  TransformerModel& m = tiny_model();
  const PairDataset& data = golden_pairs();
  const int P = static_cast<int>(data.pairs.size());
  const ModelConfig& cfg = m.config();
  for (bool by_pos : {false, true}) {
    auto heads = make_direct_logit(m, data, request("direct_logit", SweepKind::HeadOut, by_pos));
    auto comps = make_direct_logit(m, data, request("direct_logit", SweepKind::ResidPre, by_pos, true));
    const ReadoutRun h = run_all(*heads, P), c = run_all(*comps, P);
    const int T = by_pos ? static_cast<int>(data.pairs[0].clean.size()) : 1;
    const int64_t nh = static_cast<int64_t>(h.grid.cells.size()), nc = static_cast<int64_t>(c.grid.cells.size());
    ASSERT_EQ(nh, int64_t{cfg.n_layer} * T * cfg.n_head);
    // attn_out - sum of heads = b_O's own term through the same frozen norm.
    RunReadout clean = readout_of(m, data);
    for (int p = 0; p < P; ++p)
      for (int L = 0; L < cfg.n_layer; ++L)
        for (int t = 0; t < T; ++t) {
          double heads_sum = 0.0;
          for (int hd = 0; hd < cfg.n_head; ++hd) heads_sum += h.effect[p * nh + (L * T + t) * cfg.n_head + hd];
          const double attn = c.effect[p * nc + (2 + 2 * L) * T + t];
          const int at = by_pos ? t : read_position(data.pairs[p]);
          const double b_O = clean.direct({HookKind::AttnOut, L}, p, at, m.weights().blocks[L].b_O.data);
          EXPECT_NEAR(attn - heads_sum, b_O, 2e-5) << "pair " << p << " layer " << L << " pos " << t;
        }
  }
}

TEST(DirectLogit, NeuronsSumToTheirMlpWithoutItsBias) {
  TransformerModel& m = tiny_model();
  const PairDataset& data = golden_pairs();
  const int P = static_cast<int>(data.pairs.size());
  const ModelConfig& cfg = m.config();
  auto neurons = make_direct_logit(m, data, request("direct_logit", SweepKind::MlpNeuron, false));
  auto mlps = make_direct_logit(m, data, request("direct_logit", SweepKind::MlpOut, false));
  const ReadoutRun nr = run_all(*neurons, P), mr = run_all(*mlps, P);
  const int M = cfg.n_inner;
  RunReadout clean = readout_of(m, data);
  for (int p = 0; p < P; ++p)
    for (int L = 0; L < cfg.n_layer; ++L) {
      double sum = 0.0;
      for (int n = 0; n < M; ++n) sum += nr.effect[p * cfg.n_layer * M + L * M + n];
      const double mlp = mr.effect[p * cfg.n_layer + L];
      const double b_out = clean.direct({HookKind::MlpOut, L}, p, read_position(data.pairs[p]),
                                        m.weights().blocks[L].b_out.data);
      EXPECT_NEAR(mlp - sum, b_out, 2e-5) << "pair " << p << " layer " << L;
    }
}

TEST(LogitLens, LastRowIsTheLogitDifference) {
  const PairDataset& data = golden_pairs();
  const int P = static_cast<int>(data.pairs.size());
  auto e = make_logit_lens(tiny_model(), data, request("logit_lens", SweepKind::ResidPre, false));
  const ReadoutRun r = run_all(*e, P);
  const int64_t n = static_cast<int64_t>(r.grid.cells.size());
  ASSERT_EQ(n, tiny_model().config().n_layer + 1);
  EXPECT_EQ(r.grid.axes[0].labels.back(), "final_post");
  for (int p = 0; p < P; ++p) EXPECT_NEAR(r.effect[p * n + n - 1], r.base.clean_ld[p], 1e-4);
}

}  // namespace
}  // namespace causeway
