// Every sweep on every model family against TransformerLens 3.9's `patching` module (goldens
// from tests/reference/family_patching.py, keys in PATCHING.md and FAMILIES.md), the
// optimized engine against the plain full forward, and invariants that hold for any model.
// Grids over key/value heads follow the hook layout table: under grouped-query attention the
// k and v sweeps have KV heads, and attn_head_every's k/v rows past KV patch nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "cli_support.h"
#include "core/error.h"
#include "family_goldens.h"
#include "io/hdf5_file.h"
#include "model/transformer_model.h"
#include "patching/sweep.h"
#include "tl_patching_functions.h"
#include "patching/sweep_noise.h"

namespace causeway {
namespace {

constexpr double kTolerance = 1e-4;

using fixtures::kTlSweeps;
using fixtures::TlSweep;
using fixtures::max_diff;

std::string describe(SweepKind k, bool by_pos) {
  return SweepSpec{k, by_pos}.name() + (by_pos ? " by pos" : " all pos");
}

class FamilyPatching : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override {
    CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
    family_ = std::string(GetParam());
    goldens_ = std::make_unique<fixtures::FamilyGoldens>(family_, "patching");
    model_ = std::make_unique<TransformerModel>(
        TransformerModel::load(fixtures::family_model_dir(family_)));
    const auto clean = goldens_->ints("pairs.clean"), corrupted = goldens_->ints("pairs.corrupted");
    const auto answer = goldens_->ints("pairs.answer"), wrong = goldens_->ints("pairs.wrong");
    const auto shape = goldens_->shape("pairs.clean");
    ASSERT_EQ(shape.size(), 2u);
    const int P = static_cast<int>(shape[0]), T = static_cast<int>(shape[1]);
    pairs_.source = goldens_->path();
    for (int p = 0; p < P; ++p) {
      PromptPair pair;
      pair.clean.assign(clean.begin() + p * T, clean.begin() + (p + 1) * T);
      pair.corrupted.assign(corrupted.begin() + p * T, corrupted.begin() + (p + 1) * T);
      pair.answers = {static_cast<int32_t>(answer[p])};
      pair.wrongs = {static_cast<int32_t>(wrong[p])};
      pair.line = p + 1;
      pairs_.pairs.push_back(pair);
    }
  }

  // The golden pairs with the corrupted prompt replaced by the clean one.
  PairDataset identical_pairs() const {
    PairDataset d = pairs_;
    for (PromptPair& p : d.pairs) p.corrupted = p.clean;
    return d;
  }

  // Whether the model has every hook the sweep patches (resid_mid: not GPT-NeoX).
  bool model_has(SweepKind k) const {
    for (HookKind h : patched_kinds(SweepSpec{k}))
      if (!model_has_hook(h, model_->config())) return false;
    return true;
  }

  std::string family_;
  std::unique_ptr<fixtures::FamilyGoldens> goldens_;
  std::unique_ptr<TransformerModel> model_;
  PairDataset pairs_;
};

TEST_P(FamilyPatching, EverySweepBothDirectionsMatchesTransformerLens) {
  const ModelConfig& cfg = model_->config();
  int compared = 0;
  for (const TlSweep& s : kTlSweeps)
    for (const char* dir : {"denoising", "noising"}) {
      const std::string key = std::string(s.function) + "." + dir;
      if (!goldens_->has(key + ".mean")) {
        // Only what TL itself cannot run is missing: resid_mid on parallel blocks.
        EXPECT_TRUE(goldens_->json()["functions_not_applicable"].contains(s.function)) << family_ << " " << key;
        EXPECT_FALSE(model_has(s.kind)) << family_ << " " << key;
        continue;
      }
      SweepRequest req;
      req.spec.kind = s.kind;
      req.spec.by_pos = s.by_pos;
      req.direction = std::string(dir) == "denoising" ? Direction::Denoising : Direction::Noising;
      req.metric = MetricKind::Normalized;  // the goldens' .mean: TL's normalized batch metric
      const SweepResult r = SweepRunner(*model_, pairs_, req).run();
      std::vector<int64_t> ours;
      for (const GridAxis& a : r.grid.axes) ours.push_back(a.size);
      ASSERT_EQ(ours, goldens_->shape(key + ".mean")) << family_ << " " << key << ": grid axes differ from TL";

      // attn_head_every's k/v rows past KV: TL zero-pads them (a literal 0 in .mean and
      // .per_pair); causeway patches nothing there, so they hold the unpatched run's value.
      const size_t cells = r.grid.cells.size();
      std::vector<bool> applicable(cells);
      int not_applicable = 0;
      for (size_t c = 0; c < cells; ++c) {
        applicable[c] = cell_applicable(r.grid.cells[c], cfg);
        not_applicable += !applicable[c];
      }
      const bool padded = s.kind == SweepKind::HeadEvery && cfg.kv_heads() < cfg.n_head;
      EXPECT_EQ(not_applicable > 0, padded) << family_ << " " << key;
      EXPECT_EQ(!r.grid.not_applicable.empty(), padded) << family_ << " " << key;
      const std::vector<float> mean_ref = goldens_->floats(key + ".mean");
      EXPECT_LE(max_diff(r.mean, mean_ref, applicable), kTolerance) << family_ << " " << key << ".mean";
      const double no_effect = req.direction == Direction::Denoising ? 0.0 : 1.0;
      for (size_t c = 0; c < cells; ++c)
        if (!applicable[c]) {
          EXPECT_EQ(mean_ref[c], 0.0f) << family_ << " " << key << ": TL's padding";
          EXPECT_NEAR(r.mean[c], no_effect, 1e-6) << family_ << " " << key << " cell " << c;
        }

      // .per_pair holds raw logit differences; undo each pair's own normalization.
      std::vector<float> raw(r.effect.size());
      std::vector<bool> applicable_pp(raw.size());
      for (size_t i = 0; i < raw.size(); ++i) {
        const double c = r.baselines.clean_ld[i / cells], x = r.baselines.corrupted_ld[i / cells];
        raw[i] = static_cast<float>(x + r.effect[i] * (c - x));
        applicable_pp[i] = applicable[i % cells];
      }
      EXPECT_LE(max_diff(raw, goldens_->floats(key + ".per_pair"), applicable_pp), kTolerance)
          << family_ << " " << key << ".per_pair";
      ++compared;
    }
  EXPECT_GE(compared, model_has(SweepKind::ResidMid) ? 36 : 34) << family_ << ": too few goldens";
}

TEST_P(FamilyPatching, BaselinesAndTheLayerZeroInvariantMatch) {
  SweepRequest req;
  req.spec.kind = SweepKind::ResidPre;
  req.spec.by_pos = false;
  req.metric = MetricKind::Normalized;
  const SweepResult r = SweepRunner(*model_, pairs_, req).run();
  const std::vector<double>& c = r.baselines.clean_ld;
  const std::vector<double>& x = r.baselines.corrupted_ld;
  EXPECT_LE(max_diff({c.begin(), c.end()}, goldens_->floats("baseline.clean_logit_diff")), kTolerance);
  EXPECT_LE(max_diff({x.begin(), x.end()}, goldens_->floats("baseline.corrupted_logit_diff")), kTolerance);
  // All of clean resid_pre at layer 0 written into the corrupted run: the clean run, 1.
  EXPECT_NEAR(r.mean[0], goldens_->floats("invariant.denoise_resid_pre_layer0_all_pos")[0], 1e-5);
  EXPECT_NEAR(r.mean[0], 1.0, 1e-5);
}

TEST_P(FamilyPatching, ZeroAndMeanAblationMatchPlainHooks) {
  struct Case {
    const char* key;
    PatchSource source;
    SweepKind kind;
    bool by_pos;
  };
  for (const Case& c : {Case{"ablation.zero.head_all_pos.per_pair", PatchSource::Zero, SweepKind::HeadOut, false},
                        Case{"ablation.mean.head_all_pos.per_pair", PatchSource::Mean, SweepKind::HeadOut, false},
                        Case{"ablation.zero.mlp_out_by_pos.per_pair", PatchSource::Zero, SweepKind::MlpOut, true}}) {
    SweepRequest req;
    req.spec.kind = c.kind;
    req.spec.by_pos = c.by_pos;
    req.source = c.source;
    const SweepResult r = SweepRunner(*model_, pairs_, req).run();
    EXPECT_LE(max_diff(r.effect, goldens_->floats(c.key)), kTolerance) << family_ << " " << c.key;
  }
}

// Every sweep kind, direction and source: the optimized engine (prefix reuse, cone restriction,
// batched variants, answer-only unembedding) equals a full forward from the tokens per variant.
TEST_P(FamilyPatching, OptimizedEngineEqualsTheFullForward) {
  PairDataset data = pairs_;
  data.pairs.resize(3);
  struct Case {
    SweepKind kind;
    bool by_pos;
    PatchSource source;
    Direction dir;
    int window = 1;
  };
  std::vector<Case> cases;
  for (SweepKind k : {SweepKind::ResidPre, SweepKind::ResidMid, SweepKind::ResidPost, SweepKind::AttnOut,
                      SweepKind::MlpOut, SweepKind::HeadOut, SweepKind::HeadQ, SweepKind::HeadK,
                      SweepKind::HeadV, SweepKind::HeadPattern, SweepKind::HeadPatternDestSrc,
                      SweepKind::MlpNeuron, SweepKind::BlockEvery, SweepKind::HeadEvery})
    for (bool by_pos : {true, false})
      for (Direction d : {Direction::Denoising, Direction::Noising})
        if (model_has(k) && !(k == SweepKind::HeadPatternDestSrc && !by_pos))
          cases.push_back({k, by_pos, PatchSource::Activation, d});
  for (PatchSource s : {PatchSource::Zero, PatchSource::Mean, PatchSource::Resample})
    for (SweepKind k : {SweepKind::HeadOut, SweepKind::HeadK})
      cases.push_back({k, true, s, Direction::Noising});
  for (int window : {1, 2})
    for (SweepKind k : {SweepKind::ResidPre, SweepKind::MlpOut, SweepKind::HeadV})
      cases.push_back({k, true, PatchSource::Noise, Direction::Denoising, window});
  for (const Case& c : cases) {
    SweepRequest req;
    req.spec.kind = c.kind;
    req.spec.by_pos = c.by_pos;
    req.source = c.source;
    req.direction = c.dir;
    req.resample_samples = 2;
    req.window = c.window;
    req.noise.samples = 2;
    req.noise.positions = {1, 3};
    req.max_rows = 5;  // several batches per group
    const SweepResult fast = SweepRunner(*model_, data, req).run();
    req.optimized = false;
    const SweepResult plain = SweepRunner(*model_, data, req).run();
    EXPECT_LE(max_diff(fast.effect, plain.effect), 2e-4)
        << family_ << " " << describe(c.kind, c.by_pos) << " source " << static_cast<int>(c.source)
        << " dir " << static_cast<int>(c.dir) << " window " << c.window;
  }
}

TEST_P(FamilyPatching, PatchingARunWithItselfChangesNothing) {
  const PairDataset data = identical_pairs();
  for (SweepKind k : {SweepKind::ResidPre, SweepKind::ResidMid, SweepKind::HeadOut, SweepKind::HeadK,
                      SweepKind::HeadV, SweepKind::HeadPattern, SweepKind::MlpNeuron, SweepKind::BlockEvery,
                      SweepKind::HeadEvery}) {
    if (!model_has(k)) continue;
    for (bool by_pos : {true, false}) {
      SweepRequest req;
      req.spec.kind = k;
      req.spec.by_pos = by_pos;
      const SweepResult r = SweepRunner(*model_, data, req).run();
      const int cells = static_cast<int>(r.grid.cells.size());
      double worst = 0.0;
      for (int p = 0; p < r.n_pairs; ++p)
        for (int c = 0; c < cells; ++c)
          worst = std::max(worst, std::abs(r.effect[p * cells + c] - r.baselines.clean_ld[p]));
      EXPECT_LE(worst, kTolerance) << family_ << " " << describe(k, by_pos);
    }
  }
}

// Grids come from the hook layout table: k/v sweeps have one cell per key/value head, q/z and
// pattern sweeps one per query head, and attn_head_every keeps H heads on every row.
TEST_P(FamilyPatching, HeadGridsFollowTheHookLayout) {
  const ModelConfig& cfg = model_->config();
  const int L = cfg.n_layer, H = cfg.n_head, KV = cfg.kv_heads(), T = 8;
  struct Case {
    SweepKind kind;
    bool by_pos;
    std::vector<int> shape;
  };
  for (const Case& c : {Case{SweepKind::HeadK, false, {L, KV}}, Case{SweepKind::HeadV, true, {L, T, KV}},
                        Case{SweepKind::HeadQ, true, {L, T, H}}, Case{SweepKind::HeadOut, false, {L, H}},
                        Case{SweepKind::HeadPattern, true, {L, H, T}},
                        Case{SweepKind::HeadEvery, false, {5, L, H}},
                        Case{SweepKind::HeadEvery, true, {5, L, T, H}}}) {
    const SweepGrid g = make_grid(SweepSpec{c.kind, c.by_pos}, cfg, T);
    EXPECT_EQ(g.shape(), c.shape) << family_ << " " << describe(c.kind, c.by_pos);
  }
  // attn_head_every all pos: rows q(1), z(0), pattern(4) full; k(2), v(3) past KV patch nothing.
  const SweepGrid every = make_grid(SweepSpec{SweepKind::HeadEvery, false}, cfg, T);
  for (size_t i = 0; i < every.cells.size(); ++i) {
    const int component = static_cast<int>(i) / (L * H), head = static_cast<int>(i) % H;
    const bool expected = !(component == 2 || component == 3) || head < KV;
    EXPECT_EQ(cell_applicable(every.cells[i], cfg), expected) << family_ << " cell " << i;
  }
}

TEST_P(FamilyPatching, SweepsOfHooksTheModelLacksAreRefused) {
  SweepRequest req;
  req.spec.kind = SweepKind::ResidMid;
  if (model_has(SweepKind::ResidMid)) {
    EXPECT_NO_THROW(SweepRunner(*model_, pairs_, req)) << family_;
    return;
  }
  try {
    SweepRunner runner(*model_, pairs_, req);
    FAIL() << family_ << ": a resid_mid sweep ran";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("resid_mid"), std::string::npos) << what;
    EXPECT_NE(what.find(model_->config().model_type), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

// The noise std is the std of what hook_embed holds (ROME: of the embedding outputs): the token
// embedding matrix's std times the family's embedding scale (Gemma: sqrt(d_model)). The
// reference reads the checkpoint's table and takes the scale from TL's hook_embed golden.
TEST_P(FamilyPatching, NoiseStdIsTheStdOfTheEmbeddings) {
  const fixtures::GoldenTensors weights = fixtures::family_weights(family_);
  std::string table;
  for (const std::string& k : weights.keys_with_prefix(""))
    if (k.ends_with("embed_tokens.weight") || k.ends_with("embed_in.weight")) table = k;
  ASSERT_FALSE(table.empty()) << family_;
  const std::vector<float> W_E = weights.floats(table);
  const int C = model_->config().n_embd;
  const fixtures::FamilyGoldens forward(family_);
  const std::vector<float> embed = forward.floats("single.0.hook_embed");
  const int64_t tok = forward.ints("single.0.tokens")[0];
  int j = 0;
  for (int i = 0; i < C; ++i)
    if (std::abs(W_E[tok * C + i]) > std::abs(W_E[tok * C + j])) j = i;
  const double scale = embed[j] / W_E[tok * C + j];
  double sum = 0.0, sq = 0.0;
  for (float v : W_E) sum += v, sq += static_cast<double>(v) * v;
  const double n = static_cast<double>(W_E.size()), mu = sum / n;
  const double ref = std::abs(scale) * std::sqrt(sq / n - mu * mu);
  EXPECT_NEAR(embedding_noise_std(*model_), ref, 1e-5 * ref) << family_;
  // 16-bit weights (data null) give the std of the rounded table: within bf16's 2^-8.
  const TransformerModel bf16 = TransformerModel::load(fixtures::family_model_dir(family_), DType::BF16);
  EXPECT_NEAR(embedding_noise_std(bf16), ref, 8e-3 * ref) << family_;
}

// Causal tracing by hand: noise hook_embed with the documented seeding (seed, pair, sample) and
// the std above, restore one clean resid_pre position, average over samples.
TEST_P(FamilyPatching, NoiseRestorationMatchesAPlainReference) {
  const ModelConfig& cfg = model_->config();
  PairDataset data = identical_pairs();
  data.pairs.resize(2);
  SweepRequest req;
  req.spec.kind = SweepKind::ResidPre;
  req.source = PatchSource::Noise;
  req.noise.samples = 2;
  req.noise.scale = 2.0;
  req.noise.positions = {1, 2};
  req.seed = 5;
  const SweepResult r = SweepRunner(*model_, data, req).run();
  const float sigma = static_cast<float>(req.noise.scale * embedding_noise_std(*model_));
  const int C = cfg.n_embd, V = cfg.vocab_size, cells = static_cast<int>(r.grid.cells.size());
  auto ld = [&](const PromptPair& pair, HookPlan& plan) {
    const Tensor logits = model_->forward(TokenBatch::single(pair.clean), plan, LogitRows::All);
    const float* row = logits.data + static_cast<int64_t>(pair.clean.size() - 1) * V;
    return static_cast<double>(row[pair.answers[0]]) - row[pair.wrongs[0]];
  };
  for (int i = 0; i < r.n_pairs; ++i) {
    HookPlan clean(cfg.n_layer);
    for (int L = 0; L < cfg.n_layer; ++L) clean.cache({HookKind::ResidPre, L});
    model_->forward(TokenBatch::single(data.pairs[i].clean), clean, LogitRows::None);
    for (int c = 0; c < cells; ++c) {
      const PatchCell& cell = r.grid.cells[c];
      const Tensor& src = clean.activations().at({HookKind::ResidPre, cell.layer});
      const std::vector<float> restore(src.data + cell.pos * C, src.data + (cell.pos + 1) * C);
      double total = 0.0;
      for (int s = 0; s < req.noise.samples; ++s) {
        HookPlan plan(cfg.n_layer);
        plan.add({HookKind::Embed, -1}, [&](const HookContext&, Tensor& x) {
          std::mt19937_64 rng(req.seed * 1000003ULL + static_cast<uint64_t>(i) * 7919ULL + s);
          std::normal_distribution<float> noise(0.0f, sigma);
          for (int t : req.noise.positions)
            for (int k = 0; k < C; ++k) x.data[static_cast<int64_t>(t) * C + k] += noise(rng);
        });
        plan.add({HookKind::ResidPre, cell.layer}, [&](const HookContext&, Tensor& x) {
          std::copy(restore.begin(), restore.end(), x.data + cell.pos * C);
        });
        total += ld(data.pairs[i], plan);
      }
      EXPECT_NEAR(r.effect[i * cells + c], total / req.noise.samples, kTolerance)
          << family_ << " pair " << i << " cell " << c;
    }
  }
}

// `causeway run` refuses a sweep of a hook the model lacks at config time, in one line, and
// labels attn_head_every's not-applicable cells in the result file.
TEST_P(FamilyPatching, RunRefusesMissingHooksAndLabelsNotApplicableCells) {
  const ModelConfig& cfg = model_->config();
  fixtures::TempDir tmp("family-patching");
  std::string pairs;
  for (const PromptPair& p : pairs_.pairs) {
    auto ids = [](const std::vector<int32_t>& v) {
      std::string s;
      for (int32_t t : v) s += (s.empty() ? "" : ",") + std::to_string(t);
      return "[" + s + "]";
    };
    pairs += "{\"clean\": " + ids(p.clean) + ", \"corrupted\": " + ids(p.corrupted) +
             ", \"answer\": " + ids(p.answers) + ", \"wrong\": " + ids(p.wrongs) + "}\n";
  }
  fixtures::write_text(tmp.path() / "pairs.jsonl", pairs);
  const auto out = tmp.path() / "out.h5";
  auto config = [&](const std::string& sweep) {
    const auto path = tmp.path() / (sweep + ".toml");
    fixtures::write_text(path, "[model]\npath = \"" + fixtures::family_model_dir(family_).string() +
                                   "\"\nthreads = 1\n[data]\nfile = \"" + (tmp.path() / "pairs.jsonl").string() +
                                   "\"\n[output]\npath = \"" + out.string() +
                                   "\"\n[[experiment]]\nname = \"e\"\nsweep = \"" + sweep +
                                   "\"\npositions = \"all\"\nmetric = \"normalized\"\n");
    return path.string();
  };
  const fixtures::CliResult mid = fixtures::run_causeway("run " + config("resid_mid") + " --quiet --overwrite");
  if (model_has(SweepKind::ResidMid)) {
    EXPECT_EQ(mid.code, 0) << mid.output;
  } else {
    EXPECT_EQ(mid.code, 2) << mid.output;
    EXPECT_NE(mid.output.find("experiment[0].sweep: sweep 'resid_mid'"), std::string::npos) << mid.output;
    EXPECT_NE(mid.output.find(cfg.model_type), std::string::npos) << mid.output;
    EXPECT_EQ(mid.output.find('\n'), mid.output.size() - 1) << mid.output;  // one line
    EXPECT_FALSE(std::filesystem::exists(out)) << "refused before the file is laid out";
  }
  const fixtures::CliResult every = fixtures::run_causeway("run " + config("attn_head_every") + " --quiet --overwrite");
  ASSERT_EQ(every.code, 0) << every.output;
  H5File f(out, H5Mode::ReadOnly);
  std::vector<int64_t> shape;
  const std::vector<float> mean = f.read_floats("experiments/e/mean", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{5, cfg.n_layer, cfg.n_head}));
  if (cfg.kv_heads() == cfg.n_head) {
    EXPECT_ANY_THROW(f.read_string_attribute("experiments/e", "not_applicable")) << family_;
    return;
  }
  EXPECT_NE(f.read_string_attribute("experiments/e", "not_applicable").find("heads " + std::to_string(cfg.kv_heads())),
            std::string::npos);
  // Denoising: a cell that patches nothing keeps the corrupted run, normalized 0.
  for (int row : {2, 3})
    for (int l = 0; l < cfg.n_layer; ++l)
      for (int h = cfg.kv_heads(); h < cfg.n_head; ++h)
        EXPECT_NEAR(mean[(row * cfg.n_layer + l) * cfg.n_head + h], 0.0, 1e-6) << family_;
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyPatching, ::testing::ValuesIn(fixtures::kFamilies),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace causeway
