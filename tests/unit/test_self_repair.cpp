// Self-repair (issue 24) against invariants: the total effect is the ablation sweep's change,
// the direct effect of zero ablation is minus the direct logit attribution, only the final
// norm lies downstream of the last MLP (total = direct + ln_share, repair_rest = 0), and a
// model whose later layers are zeroed gives nothing back beyond the final norm.
#include <gtest/gtest.h>

#include <cmath>

#include "patching/circuit_graph.h"
#include "patching/direct_logit.h"
#include "patching/edge_sweep.h"
#include "patching/self_repair.h"
#include "self_repair_pairs.h"
#include "tiny_model.h"

namespace causeway {
namespace {

using fixtures::golden_pairs;
using fixtures::kDataDir;
using fixtures::tiny_model;

constexpr int Q = 5;  // total, direct, ln_share, self_repair, repair_rest

std::vector<float> run_engine(SweepEngine& e, int P, SweepBaselines& base) {
  const int64_t n = static_cast<int64_t>(e.grid().cells.size());
  std::vector<float> out(P * n);
  e.run_block(0, P, 0, static_cast<int>(n), out.data(), base);
  return out;
}

SweepRequest repair_request(SweepKind kind, PatchSource source, bool by_pos = false) {
  SweepRequest r;
  r.spec.kind = kind;
  r.spec.by_pos = by_pos;
  r.source = source;
  r.resample_samples = 2;
  return r;
}

TEST(SelfRepair, TotalIsTheAblationSweepsChange) {
  TransformerModel& m = tiny_model();
  const PairDataset& data = golden_pairs();
  const int P = static_cast<int>(data.pairs.size());
  for (PatchSource src : {PatchSource::Zero, PatchSource::Mean, PatchSource::Resample}) {
    const SweepRequest r = repair_request(SweepKind::HeadOut, src);
    SelfRepairRunner repair(m, data, r);
    SweepRunner sweep(m, data, r);
    SweepBaselines b1, b2;
    const std::vector<float> q = run_engine(repair, P, b1), a = run_engine(sweep, P, b2);
    const int64_t n = static_cast<int64_t>(a.size()) / P;
    for (int p = 0; p < P; ++p)
      for (int64_t c = 0; c < n; ++c) {
        const float* x = &q[(p * n + c) * Q];
        EXPECT_NEAR(x[0], a[p * n + c] - b2.clean_ld[p], 1e-5);
        EXPECT_NEAR(x[3], x[0] - x[1], 1e-5);
        EXPECT_NEAR(x[4], x[3] - x[2], 1e-5);
      }
  }
}

TEST(SelfRepair, DirectEffectOfZeroAblationIsMinusTheAttribution) {
  TransformerModel& m = tiny_model();
  const PairDataset& data = golden_pairs();
  const int P = static_cast<int>(data.pairs.size());
  for (SweepKind kind : {SweepKind::HeadOut, SweepKind::MlpOut, SweepKind::MlpNeuron}) {
    SelfRepairRunner repair(m, data, repair_request(kind, PatchSource::Zero));
    ReadoutRequest dq;
    dq.spec.kind = kind;
    dq.spec.by_pos = false;
    auto dla = make_direct_logit(m, data, dq);
    SweepBaselines b1, b2;
    const std::vector<float> q = run_engine(repair, P, b1), d = run_engine(*dla, P, b2);
    const int64_t n = static_cast<int64_t>(d.size()) / P;
    for (int p = 0; p < P; ++p)
      for (int64_t c = 0; c < n; ++c) EXPECT_NEAR(q[(p * n + c) * Q + 1], -d[p * n + c], 1e-5);
  }
}

TEST(SelfRepair, OnlyTheFinalNormFollowsTheLastMlp) {
  TransformerModel& m = tiny_model();
  const PairDataset& data = golden_pairs();
  const int P = static_cast<int>(data.pairs.size());
  const int last = m.config().n_layer - 1;
  for (PatchSource src : {PatchSource::Zero, PatchSource::Mean, PatchSource::Resample}) {
    for (bool by_pos : {false, true}) {
      SelfRepairRunner repair(m, data, repair_request(SweepKind::MlpOut, src, by_pos));
      SweepBaselines b;
      const std::vector<float> q = run_engine(repair, P, b);
      const int T = by_pos ? static_cast<int>(data.pairs[0].clean.size()) : 1;
      for (int p = 0; p < P; ++p)
        for (int t = 0; t < T; ++t) {
          const float* x = &q[(static_cast<int64_t>(p) * m.config().n_layer * T + last * T + t) * Q];
          EXPECT_NEAR(x[0], x[1] + x[2], 2e-5) << "pair " << p << " pos " << t;
          EXPECT_NEAR(x[4], 0.0, 2e-5);
          if (!by_pos) EXPECT_NE(x[2], 0.0f);  // the final scale does move
        }
    }
  }
}

TEST(SelfRepair, DirectPlusLayerNormShareIsPathPatchingIntoTheLogits) {
  // Path patching of each head into Resid End with everything else frozen (the final norm
  // recomputed) moves the logit difference by exactly direct + ln_share.
  for (const char* model : {"gpt2", "llama3", "gpt_neox"}) {
    const std::string dir = std::string(model) == "gpt2" ? "tiny-gpt2" : std::string("families/") + model;
    TransformerModel m = TransformerModel::load(kDataDir / dir);
    const PairDataset data = fixtures::self_repair_golden_pairs(model);
    const int P = static_cast<int>(data.pairs.size());
    SweepRequest r = repair_request(SweepKind::HeadOut, PatchSource::Activation);
    r.direction = Direction::Noising;
    SelfRepairRunner repair(m, data, r);
    EdgeSweepRequest q;
    q.heads_grid = true;
    q.method = EdgeSweepMethod::PathPatching;
    q.freeze = PathFreeze::All;
    q.direction = Direction::Noising;
    q.receivers = {CircuitGraph(m.config()).find_receiver("Resid End")};
    EdgeSweep paths(m, data, q);
    SweepBaselines b1, b2;
    const std::vector<float> x = run_engine(repair, P, b1), path = run_engine(paths, P, b2);
    const int64_t n = static_cast<int64_t>(path.size()) / P;
    ASSERT_EQ(static_cast<int64_t>(x.size()), P * n * Q);
    for (int p = 0; p < P; ++p)
      for (int64_t c = 0; c < n; ++c)
        EXPECT_NEAR(x[(p * n + c) * Q + 1] + x[(p * n + c) * Q + 2], path[p * n + c] - b2.clean_ld[p], 2e-5)
            << dir << " pair " << p << " head " << c;
  }
}

TEST(SelfRepair, NothingIsRepairedWhenLaterLayersAreZeroed) {
  TransformerModel m = TransformerModel::load(kDataDir / "tiny-gpt2");
  // Everything after layer 0's attention writes nothing: MLP 0 and all of layer 1.
  auto zero = [](Tensor& t) { std::fill(t.data, t.data + t.numel(), 0.0f); };
  BlockWeights& b0 = m.weights().blocks[0];
  BlockWeights& b1 = m.weights().blocks[1];
  for (Tensor* t : {static_cast<Tensor*>(&b0.W_out), &b0.b_out, static_cast<Tensor*>(&b1.W_O), &b1.b_O,
                    static_cast<Tensor*>(&b1.W_out), &b1.b_out})
    zero(*t);
  const PairDataset& data = golden_pairs();
  const int P = static_cast<int>(data.pairs.size());
  for (PatchSource src : {PatchSource::Zero, PatchSource::Mean}) {
    SelfRepairRunner repair(m, data, repair_request(SweepKind::HeadOut, src));
    SweepBaselines b;
    const std::vector<float> q = run_engine(repair, P, b);
    const int H = m.config().n_head;
    for (int p = 0; p < P; ++p)
      for (int h = 0; h < H; ++h) {
        const float* x = &q[(static_cast<int64_t>(p) * 2 * H + h) * Q];  // layer 0
        EXPECT_NEAR(x[4], 0.0, 2e-5) << "pair " << p << " head " << h;
        EXPECT_NEAR(x[3], x[2], 2e-5);
        const float* y = &q[(static_cast<int64_t>(p) * 2 * H + H + h) * Q];  // layer 1: zero output
        for (int i = 0; i < Q; ++i) EXPECT_NEAR(y[i], 0.0, 1e-6);
      }
  }
}

}  // namespace
}  // namespace causeway
