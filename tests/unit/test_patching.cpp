// Sweeps against TransformerLens' `patching` module (goldens from
// tests/reference/make_patching_goldens.py on the tiny checkpoint), against the plain full
// forward, and against invariants that hold for any model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "data/prompt_pairs.h"
#include "model/transformer_model.h"
#include "model/safetensors.h"
#include "patching/sweep.h"
#include "tl_patching_functions.h"
#include "tiny_model.h"

namespace causeway {
namespace {

const std::filesystem::path& kData = fixtures::kDataDir;
using fixtures::golden_pairs;
using fixtures::tiny_model;

// Pairs of random tokens; corrupted differs from clean at two positions.
PairDataset random_pairs(int n, int T, uint32_t seed, bool identical = false) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, tiny_model().config().vocab_size - 2);
  PairDataset d;
  d.source = "random pairs";
  for (int i = 0; i < n; ++i) {
    PromptPair p;
    for (int t = 0; t < T; ++t) p.clean.push_back(tok(rng));
    p.corrupted = p.clean;
    if (!identical) {
      p.corrupted[1] = tok(rng);
      p.corrupted[T / 2] = tok(rng);
    }
    p.answers = {tok(rng)};
    p.wrongs = {tok(rng)};
    p.line = i + 1;
    d.pairs.push_back(p);
  }
  return d;
}

std::vector<float> floats(const SafetensorsFile& f, const std::string& name, std::vector<int64_t>* shape = nullptr) {
  const TensorInfo* info = f.find(name);
  if (!info) return {};
  std::vector<float> out((info->end - info->begin) / 4);
  std::memcpy(out.data(), f.data(*info), info->end - info->begin);
  if (shape) *shape = info->shape;
  return out;
}

using fixtures::kTlSweeps;
using fixtures::TlSweep;
using fixtures::max_diff;

TEST(PatchingTransformerLens, EverySweepBothDirectionsMatchesGoldens) {
  const SafetensorsFile golden = SafetensorsFile::open(kData / "tiny-gpt2-patching-goldens.safetensors");
  int compared = 0;
  for (const TlSweep& s : kTlSweeps)
    for (const char* dir : {"denoising", "noising"}) {
      const std::string key = std::string(s.function) + "." + dir;
      std::vector<int64_t> shape;
      const auto mean_ref = floats(golden, key + ".mean", &shape);
      if (mean_ref.empty()) continue;
      SweepRequest req;
      req.spec.kind = s.kind;
      req.spec.by_pos = s.by_pos;
      req.direction = std::string(dir) == "denoising" ? Direction::Denoising : Direction::Noising;
      // The goldens' .mean is TransformerLens' normalized batch metric: causeway's "normalized".
      req.metric = MetricKind::Normalized;
      SweepRunner runner(tiny_model(), golden_pairs(), req);
      const SweepResult r = runner.run();
      std::vector<int64_t> ours(r.grid.axes.size());
      for (size_t i = 0; i < ours.size(); ++i) ours[i] = r.grid.axes[i].size;
      EXPECT_EQ(ours, shape) << key << ": grid axes differ from TransformerLens";
      EXPECT_LE(max_diff(r.mean, mean_ref), 1e-4) << key << ".mean";
      const auto per_pair = floats(golden, key + ".per_pair");
      if (!per_pair.empty()) {
        // .per_pair holds raw logit differences; undo each pair's own normalization.
        std::vector<float> raw(r.effect.size());
        const size_t cells = r.grid.cells.size();
        for (size_t i = 0; i < raw.size(); ++i) {
          const double c = r.baselines.clean_ld[i / cells], x = r.baselines.corrupted_ld[i / cells];
          raw[i] = static_cast<float>(x + r.effect[i] * (c - x));
        }
        EXPECT_LE(max_diff(raw, per_pair), 1e-4) << key << ".per_pair";
      }
      ++compared;
    }
  EXPECT_GE(compared, 24) << "too few TransformerLens goldens found";
}

TEST(PatchingTransformerLens, BaselinesMatch) {
  const SafetensorsFile golden = SafetensorsFile::open(kData / "tiny-gpt2-patching-goldens.safetensors");
  SweepRequest req;
  req.spec.kind = SweepKind::ResidPre;
  req.spec.by_pos = false;
  SweepRunner runner(tiny_model(), golden_pairs(), req);
  const SweepResult r = runner.run();
  const auto clean = floats(golden, "baseline.clean_logit_diff");
  const auto corrupted = floats(golden, "baseline.corrupted_logit_diff");
  EXPECT_LE(max_diff(std::vector<float>(r.baselines.clean_ld.begin(), r.baselines.clean_ld.end()), clean), 1e-4);
  EXPECT_LE(max_diff(std::vector<float>(r.baselines.corrupted_ld.begin(), r.baselines.corrupted_ld.end()), corrupted), 1e-4);
}

TEST(PatchingTransformerLens, ZeroAndMeanAblationMatchPlainHooks) {
  const SafetensorsFile golden = SafetensorsFile::open(kData / "tiny-gpt2-patching-goldens.safetensors");
  struct Case {
    const char* key;
    PatchSource source;
    SweepKind kind;
    bool by_pos;
  };
  for (const Case& c : {Case{"ablation.zero.head_all_pos.per_pair", PatchSource::Zero, SweepKind::HeadOut, false},
                        Case{"ablation.mean.head_all_pos.per_pair", PatchSource::Mean, SweepKind::HeadOut, false},
                        Case{"ablation.zero.mlp_out_by_pos.per_pair", PatchSource::Zero, SweepKind::MlpOut, true}}) {
    const auto ref = floats(golden, c.key);
    ASSERT_FALSE(ref.empty()) << c.key;
    SweepRequest req;
    req.spec.kind = c.kind;
    req.spec.by_pos = c.by_pos;
    req.source = c.source;
    SweepRunner runner(tiny_model(), golden_pairs(), req);
    EXPECT_LE(max_diff(runner.run().effect, ref), 1e-4) << c.key;
  }
}

// Every sweep kind and source: the optimized engine (prefix reuse, cone restriction, batched
// variants, answer-only unembedding) equals a full forward from the tokens per variant.
TEST(PatchingEngine, OptimizedPathsEqualTheFullForward) {
  const PairDataset data = random_pairs(3, 7, 5);
  struct Case {
    SweepKind kind;
    bool by_pos;
    PatchSource source;
    Direction dir;
    MetricKind metric;
    int window = 1;
  };
  std::vector<Case> cases;
  for (SweepKind k : {SweepKind::ResidPre, SweepKind::ResidMid, SweepKind::ResidPost, SweepKind::AttnOut,
                      SweepKind::MlpOut, SweepKind::HeadOut, SweepKind::HeadQ, SweepKind::HeadK,
                      SweepKind::HeadV, SweepKind::HeadPattern, SweepKind::HeadPatternDestSrc,
                      SweepKind::MlpNeuron, SweepKind::BlockEvery, SweepKind::HeadEvery})
    for (bool by_pos : {true, false})
      for (Direction d : {Direction::Denoising, Direction::Noising})
        cases.push_back({k, by_pos, PatchSource::Activation, d, MetricKind::LogitDiff});
  for (PatchSource s : {PatchSource::Zero, PatchSource::Mean, PatchSource::Resample})
    cases.push_back({SweepKind::HeadOut, true, s, Direction::Noising, MetricKind::LogitDiff});
  for (int window : {1, 2})
    for (SweepKind k : {SweepKind::ResidPre, SweepKind::MlpOut, SweepKind::HeadOut})
      cases.push_back({k, true, PatchSource::Noise, Direction::Denoising, MetricKind::LogitDiff, window});
  for (MetricKind m : {MetricKind::Normalized, MetricKind::AnswerProb, MetricKind::AnswerLogProb,
                       MetricKind::KlFromClean, MetricKind::Accuracy, MetricKind::Rank})
    cases.push_back({SweepKind::ResidPre, true, PatchSource::Activation, Direction::Denoising, m});
  for (const Case& c : cases) {
    if (c.kind == SweepKind::HeadPatternDestSrc && !c.by_pos) continue;
    SweepRequest req;
    req.spec.kind = c.kind;
    req.spec.by_pos = c.by_pos;
    req.source = c.source;
    req.direction = c.dir;
    req.metric = c.metric;
    req.resample_samples = 2;
    req.window = c.window;
    req.noise.samples = 2;
    req.noise.positions = {0, 2};
    req.max_rows = 5;  // several batches per group
    const SweepResult fast = SweepRunner(tiny_model(), data, req).run();
    req.optimized = false;
    const SweepResult plain = SweepRunner(tiny_model(), data, req).run();
    const std::string what = SweepSpec{c.kind, c.by_pos}.name() + (c.by_pos ? " by pos" : " all pos") +
                             " metric " + metric_name(c.metric) + " source " + std::to_string(static_cast<int>(c.source)) +
                             " dir " + std::to_string(static_cast<int>(c.dir)) + " window " + std::to_string(c.window);
    EXPECT_LE(max_diff(fast.effect, plain.effect), 2e-4) << what;
  }
}

TEST(PatchingInvariants, PatchingARunWithItselfChangesNothing) {
  const PairDataset data = random_pairs(2, 6, 7, /*identical=*/true);
  for (SweepKind k : {SweepKind::ResidPre, SweepKind::HeadOut, SweepKind::HeadPattern, SweepKind::MlpNeuron,
                      SweepKind::BlockEvery, SweepKind::HeadEvery}) {
    SweepRequest req;
    req.spec.kind = k;
    const SweepResult r = SweepRunner(tiny_model(), data, req).run();
    const int cells = static_cast<int>(r.grid.cells.size());
    for (int p = 0; p < r.n_pairs; ++p)
      for (int c = 0; c < cells; ++c)
        EXPECT_NEAR(r.effect[p * cells + c], r.baselines.clean_ld[p], 1e-4) << SweepSpec{k}.name();
  }
}

TEST(PatchingInvariants, DenoisingAllOfResidPreAtLayerZeroGivesTheCleanMetric) {
  const PairDataset data = random_pairs(4, 6, 9);
  SweepRequest req;
  req.spec.kind = SweepKind::ResidPre;
  req.spec.by_pos = false;
  req.metric = MetricKind::Normalized;
  const SweepResult r = SweepRunner(tiny_model(), data, req).run();
  for (int p = 0; p < r.n_pairs; ++p) EXPECT_NEAR(r.effect[p * r.grid.cells.size()], 1.0, 1e-4);
  EXPECT_NEAR(r.mean[0], 1.0, 1e-5);
  // Noising everything at layer 0 gives the corrupted run: normalized 0.
  req.direction = Direction::Noising;
  const SweepResult n = SweepRunner(tiny_model(), data, req).run();
  EXPECT_NEAR(n.mean[0], 0.0, 1e-5);
}

TEST(PatchingInvariants, ResultsDoNotDependOnBlockOrBatchSizes) {
  const PairDataset data = random_pairs(5, 6, 11);
  SweepRequest req;
  req.spec.kind = SweepKind::HeadOut;
  req.source = PatchSource::Resample;
  req.resample_samples = 3;
  req.seed = 4;
  const SweepResult a = SweepRunner(tiny_model(), data, req).run();
  req.max_rows = 3;
  req.pairs_per_block = 5;
  const SweepResult b = SweepRunner(tiny_model(), data, req).run();
  EXPECT_LE(max_diff(a.effect, b.effect), 1e-5);
}

TEST(PatchingNoise, RestoringEverythingAtLayerZeroRecoversTheCleanRun) {
  const PairDataset data = random_pairs(2, 6, 13, /*identical=*/true);
  SweepRequest req;
  req.spec.kind = SweepKind::ResidPre;
  req.spec.by_pos = false;
  req.source = PatchSource::Noise;
  req.noise.samples = 3;
  req.noise.positions = {0, 1};
  const SweepResult r = SweepRunner(tiny_model(), data, req).run();
  const int cells = static_cast<int>(r.grid.cells.size());
  for (int p = 0; p < r.n_pairs; ++p) {
    EXPECT_NEAR(r.effect[p * cells], r.baselines.clean_ld[p], 1e-4);
    // The noised run differs from the clean one.
    EXPECT_GT(std::abs(r.baselines.corrupted_ld[p] - r.baselines.clean_ld[p]), 1e-3);
  }
}

// Logit difference of one prompt with `plan` applied, by a plain full forward.
double plain_logit_diff(const PromptPair& pair, HookPlan& plan) {
  const int V = tiny_model().config().vocab_size;
  const Tensor logits = tiny_model().forward(TokenBatch::single(pair.clean), plan, LogitRows::All);
  const float* row = logits.data + static_cast<int64_t>(read_position(pair)) * V;
  return row[pair.answers[0]] - row[pair.wrongs[0]];
}

// Resample ablation of one head, by hand: cache each partner's z, write its head into the
// clean run, average the logit difference over the samples.
TEST(PatchingAblation, ResampleMatchesAPlainReference) {
  const PairDataset data = random_pairs(5, 6, 21);
  const ModelConfig& cfg = tiny_model().config();
  SweepRequest req;
  req.spec.kind = SweepKind::HeadOut;
  req.spec.by_pos = false;
  req.source = PatchSource::Resample;
  req.resample_samples = 3;
  req.seed = 9;
  req.pairs_per_block = 2;  // partners outside a pair's block must still be found
  SweepRunner runner(tiny_model(), data, req);
  const SweepResult r = runner.run();
  const int HS = cfg.n_embd / cfg.n_head, cells = static_cast<int>(r.grid.cells.size());
  for (int i = 0; i < r.n_pairs; ++i)
    for (int c = 0; c < cells; ++c) {
      const PatchCell& cell = r.grid.cells[c];
      double sum = 0.0;
      for (int q : runner.resample_partners(i)) {
        EXPECT_NE(q, i);
        HookPlan cache(cfg.n_layer);
        cache.cache({HookKind::Z, cell.layer});
        tiny_model().forward(TokenBatch::single(data.pairs[q].clean), cache, LogitRows::None);
        const Tensor& zq = cache.activations().at({HookKind::Z, cell.layer});
        const std::vector<float> partner(zq.data, zq.data + zq.numel());
        HookPlan patch(cfg.n_layer);
        patch.add({HookKind::Z, cell.layer}, [&](const HookContext& ctx, Tensor& z) {
          for (int t = 0; t < ctx.T; ++t)
            for (int j = 0; j < HS; ++j) {
              const int64_t at = (static_cast<int64_t>(t) * cfg.n_head + cell.head) * HS + j;
              z.data[at] = partner[at];
            }
        });
        sum += plain_logit_diff(data.pairs[i], patch);
      }
      EXPECT_NEAR(r.effect[i * cells + c], sum / req.resample_samples, 1e-4) << "pair " << i << " cell " << c;
    }
}

// Causal tracing by hand: noise the token embeddings with the documented seeding (seed,
// pair, sample), restore one clean resid_pre position, average over samples.
TEST(PatchingNoise, RestorationMatchesAPlainReference) {
  const PairDataset data = random_pairs(2, 6, 23, /*identical=*/true);
  const ModelConfig& cfg = tiny_model().config();
  SweepRequest req;
  req.spec.kind = SweepKind::ResidPre;
  req.source = PatchSource::Noise;
  req.noise.samples = 2;
  req.noise.scale = 2.0;
  req.noise.positions = {1, 2};
  req.seed = 5;
  const SweepResult r = SweepRunner(tiny_model(), data, req).run();
  const Tensor& W_E = tiny_model().weights().W_E;
  double sum = 0.0, sq = 0.0;
  for (int64_t i = 0; i < W_E.numel(); ++i) sum += W_E.data[i], sq += double(W_E.data[i]) * W_E.data[i];
  const double mu = sum / W_E.numel();
  const float sigma = static_cast<float>(req.noise.scale * std::sqrt(sq / W_E.numel() - mu * mu));
  const int C = cfg.n_embd, cells = static_cast<int>(r.grid.cells.size());
  for (int i = 0; i < r.n_pairs; ++i) {
    HookPlan clean(cfg.n_layer);
    for (int L = 0; L < cfg.n_layer; ++L) clean.cache({HookKind::ResidPre, L});
    tiny_model().forward(TokenBatch::single(data.pairs[i].clean), clean, LogitRows::None);
    for (int c = 0; c < cells; ++c) {
      const PatchCell& cell = r.grid.cells[c];
      const Tensor& src = clean.activations().at({HookKind::ResidPre, cell.layer});
      const std::vector<float> restore(src.data + cell.pos * C, src.data + (cell.pos + 1) * C);
      double total = 0.0;
      for (int s = 0; s < req.noise.samples; ++s) {
        HookPlan plan(cfg.n_layer);
        plan.add({HookKind::Embed, -1}, [&](const HookContext& ctx, Tensor& x) {
          std::mt19937_64 rng(req.seed * 1000003ULL + static_cast<uint64_t>(i) * 7919ULL + s);
          std::normal_distribution<float> noise(0.0f, sigma);
          for (int t : req.noise.positions)
            for (int j = 0; j < C; ++j) x.data[static_cast<int64_t>(t) * C + j] += noise(rng);
          (void)ctx;
        });
        plan.add({HookKind::ResidPre, cell.layer}, [&](const HookContext&, Tensor& x) {
          std::copy(restore.begin(), restore.end(), x.data + cell.pos * C);
        });
        total += plain_logit_diff(data.pairs[i], plan);
      }
      EXPECT_NEAR(r.effect[i * cells + c], total / req.noise.samples, 1e-4) << "pair " << i << " cell " << c;
    }
  }
}

TEST(PatchingErrors, ResampleNeedsPromptsOfOneLength) {
  PairDataset d = random_pairs(3, 6, 1, /*identical=*/true);
  d.pairs[2].clean.push_back(3);
  d.pairs[2].corrupted.push_back(3);
  SweepRequest req;
  req.source = PatchSource::Resample;
  try {
    SweepRunner r(tiny_model(), d, req);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
}

TEST(PatchingErrors, MisalignedPairsAreRejectedNamingTheLine) {
  PairDataset d = random_pairs(2, 6, 1);
  d.pairs[1].corrupted.push_back(3);
  SweepRequest req;
  try {
    SweepRunner r(tiny_model(), d, req);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace causeway
