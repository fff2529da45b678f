// Direct logit attribution, the logit lens and self-repair's total, direct and LayerNorm-share
// effects of zero and mean ablation against TransformerLens 3.9 on the committed tiny models
// (tests/reference/make_self_repair_goldens.py -> tests/data/self-repair/), within 1e-4.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/safetensors.h"
#include "patching/direct_logit.h"
#include "patching/logit_lens.h"
#include "patching/self_repair.h"
#include "self_repair_pairs.h"
#include "tiny_model.h"

namespace causeway {
namespace {

const std::filesystem::path kGoldens = fixtures::kDataDir / "self-repair";
constexpr double kTol = 1e-4;

struct Golden {
  TransformerModel model;
  PairDataset pairs;
  nlohmann::json info;
  SafetensorsFile file;

  std::vector<float> get(const std::string& key) const {
    const TensorInfo* t = file.find(key);
    if (!t) return {};
    std::vector<float> v((t->end - t->begin) / 4);
    std::memcpy(v.data(), file.data(*t), t->end - t->begin);
    return v;
  }
};

Golden load(const std::string& name) {
  const auto dir = name == "gpt2" ? fixtures::kDataDir / "tiny-gpt2" : fixtures::kDataDir / "families" / name;
  nlohmann::json info = nlohmann::json::parse(std::ifstream(kGoldens / (name + "-self-repair-goldens.json")));
  const PairDataset d = fixtures::self_repair_golden_pairs(name);
  return {TransformerModel::load(dir), d, info,
          SafetensorsFile::open(kGoldens / (name + "-self-repair-goldens.safetensors"))};
}

std::vector<float> run(SweepEngine& e, int P) {
  std::vector<float> out(P * e.grid().cells.size());
  SweepBaselines b;
  e.run_block(0, P, 0, static_cast<int>(e.grid().cells.size()), out.data(), b);
  return out;
}

// The largest |a - b|, with `b` read every `stride` values from `offset`.
double max_diff(const std::vector<float>& golden, const std::vector<float>& ours, int stride = 1, int offset = 0) {
  EXPECT_EQ(golden.size() * stride, ours.size());
  double m = 0.0;
  for (size_t i = 0; i < golden.size() && i * stride + offset < ours.size(); ++i)
    m = std::max(m, std::abs(static_cast<double>(golden[i]) - ours[i * stride + offset]));
  return m;
}

class SelfRepairGoldens : public ::testing::TestWithParam<std::string> {};

TEST_P(SelfRepairGoldens, DirectLogitAttributionMatchesTransformerLens) {
  Golden g = load(GetParam());
  const int P = static_cast<int>(g.pairs.pairs.size());
  ASSERT_EQ(P, 4);
  auto dla = [&](SweepKind k, bool by_pos, bool components = false) {
    ReadoutRequest q;
    q.spec.kind = k;
    q.spec.by_pos = by_pos;
    q.components = components;
    auto e = make_direct_logit(g.model, g.pairs, q);
    return run(*e, P);
  };
  EXPECT_LT(max_diff(g.get("dla.heads"), dla(SweepKind::HeadOut, false)), kTol);
  EXPECT_LT(max_diff(g.get("dla.heads_by_pos"), dla(SweepKind::HeadOut, true)), kTol);
  EXPECT_LT(max_diff(g.get("dla.neurons"), dla(SweepKind::MlpNeuron, false)), kTol);
  EXPECT_LT(max_diff(g.get("dla.mlp"), dla(SweepKind::MlpOut, false)), kTol);
  ReadoutRequest q;
  q.components = true;
  q.spec.by_pos = false;
  EXPECT_EQ(direct_logit_grid(q, g.model.config(), g.pairs).axes[0].labels,
            g.info["components"].get<std::vector<std::string>>());
  EXPECT_LT(max_diff(g.get("dla.components"), dla(SweepKind::ResidPre, false, true)), kTol);
}

TEST_P(SelfRepairGoldens, LogitLensMatchesTransformerLens) {
  Golden g = load(GetParam());
  const int P = static_cast<int>(g.pairs.pairs.size());
  for (bool by_pos : {false, true}) {
    ReadoutRequest q;
    q.spec.by_pos = by_pos;
    auto e = make_logit_lens(g.model, g.pairs, q);
    EXPECT_EQ(e->grid().axes[0].labels, g.info["lens_labels"].get<std::vector<std::string>>());
    EXPECT_LT(max_diff(g.get(by_pos ? "lens_by_pos" : "lens"), run(*e, P)), kTol) << "by_pos " << by_pos;
  }
}

TEST_P(SelfRepairGoldens, LogitLensTopTokensMatchTransformerLens) {
  Golden g = load(GetParam());
  ReadoutRequest q;
  q.spec.by_pos = false;
  q.top_k = 5;
  const LensTopTokens top = logit_lens_top_tokens(g.model, g.pairs, q);
  EXPECT_EQ(top.shape, (std::vector<int64_t>{4, g.model.config().n_layer + 1, 5}));
  const std::vector<float> ids = g.get("lens.top_tokens");
  ASSERT_EQ(ids.size(), top.ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(static_cast<int32_t>(ids[i]), top.ids[i]) << i;
  EXPECT_LT(max_diff(g.get("lens.top_logits"), top.logits), kTol);
}

TEST_P(SelfRepairGoldens, TotalDirectAndLayerNormShareMatchTransformerLens) {
  Golden g = load(GetParam());
  const int P = static_cast<int>(g.pairs.pairs.size());
  for (PatchSource src : {PatchSource::Zero, PatchSource::Mean})
    for (SweepKind kind : {SweepKind::HeadOut, SweepKind::MlpOut}) {
      SweepRequest r;
      r.spec.kind = kind;
      r.spec.by_pos = false;
      r.source = src;
      SelfRepairRunner e(g.model, g.pairs, r);
      const std::vector<float> q = run(e, P);
      const std::string key = std::string("repair.") + (src == PatchSource::Zero ? "zero" : "mean") + "." +
                              (kind == SweepKind::HeadOut ? "heads" : "mlp") + ".";
      const char* names[] = {"total", "direct", "ln_share"};
      for (int i = 0; i < 3; ++i)
        EXPECT_LT(max_diff(g.get(key + names[i]), q, 5, i), kTol) << key << names[i];
    }
}

INSTANTIATE_TEST_SUITE_P(Models, SelfRepairGoldens,
                         ::testing::Values("gpt2", "llama3", "llama2", "mistral", "qwen2", "qwen3", "gpt_neox",
                                           "gemma2"));

}  // namespace
}  // namespace causeway
