// The forward pass against goldens from Hugging Face transformers (logits) and
// TransformerLens (every hook), made by tests/reference/make_goldens.py on the tiny random
// checkpoint in tests/data/tiny-gpt2.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/transformer_model.h"
#include "model/safetensors.h"

namespace causeway {
namespace {

const std::filesystem::path kDataDir = std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "tests/data";
constexpr double kTolerance = 1e-4;

class Goldens {
 public:
  Goldens() : file_(SafetensorsFile::open(kDataDir / "tiny-gpt2-goldens.safetensors")) {}
  bool has(const std::string& name) const { return file_.find(name) != nullptr; }
  std::vector<float> floats(const std::string& name, Shape* shape = nullptr) const {
    const TensorInfo* info = file_.find(name);
    if (!info) throw std::runtime_error("golden '" + name + "' missing");
    std::vector<float> out((info->end - info->begin) / sizeof(float));
    std::memcpy(out.data(), file_.data(*info), info->end - info->begin);
    if (shape) {
      *shape = Shape{};
      for (int64_t d : info->shape) shape->dims[shape->rank++] = d;
    }
    return out;
  }
  std::vector<int32_t> ints(const std::string& name) const {
    const TensorInfo* info = file_.find(name);
    if (!info) throw std::runtime_error("golden '" + name + "' missing");
    std::vector<int32_t> out((info->end - info->begin) / sizeof(int32_t));
    std::memcpy(out.data(), file_.data(*info), info->end - info->begin);
    return out;
  }

 private:
  SafetensorsFile file_;
};

// Largest |a - b| over entries where both are finite; non-finite entries must agree exactly
// (masked attention scores are -inf in both).
double max_diff(const float* a, const std::vector<float>& b, const std::string& what) {
  double m = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(b[i]) || !std::isfinite(a[i])) {
      EXPECT_EQ(a[i], b[i]) << what << " at flat index " << i;
      continue;
    }
    m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  }
  return m;
}

class TinyGpt2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new TransformerModel(TransformerModel::load(kDataDir / "tiny-gpt2"));
    goldens_ = new Goldens();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete goldens_;
  }
  static int n_prompts() {
    int n = 0;
    while (goldens_->has("single." + std::to_string(n) + ".tokens")) ++n;
    return n;
  }
  static TransformerModel* model_;
  static Goldens* goldens_;
};
TransformerModel* TinyGpt2::model_ = nullptr;
Goldens* TinyGpt2::goldens_ = nullptr;

TEST_F(TinyGpt2, LogitsMatchTransformers) {
  ASSERT_GE(n_prompts(), 3);
  for (int i = 0; i < n_prompts(); ++i) {
    const std::string p = "single." + std::to_string(i);
    const Tensor logits = model_->forward(TokenBatch::single(goldens_->ints(p + ".tokens")));
    const auto ref = goldens_->floats(p + ".logits");
    ASSERT_EQ(static_cast<size_t>(logits.numel()), ref.size());
    const double err = max_diff(logits.data, ref, p);
    std::printf("[ %s ] max |logit error| = %.3g\n", p.c_str(), err);
    EXPECT_LE(err, kTolerance) << p;
  }
}

TEST_F(TinyGpt2, EveryHookMatchesTransformerLens) {
  const int n_layer = model_->config().n_layer;
  int checked = 0;
  for (int i = 0; i < n_prompts(); ++i) {
    const std::string p = "single." + std::to_string(i);
    HookPlan plan(n_layer);
    for (HookPoint h : all_hook_points(model_->config())) plan.cache(h);
    model_->forward(TokenBatch::single(goldens_->ints(p + ".tokens")), plan);
    for (HookPoint h : all_hook_points(model_->config())) {
      const std::string key = p + "." + h.name();
      if (!goldens_->has(key)) continue;
      Shape ref_shape;
      const auto ref = goldens_->floats(key, &ref_shape);
      const Tensor& got = plan.activations().at(h);
      // Goldens drop the batch axis; the cache keeps it (batch of one).
      ASSERT_EQ(got.shape[0], 1) << key;
      ASSERT_EQ(got.shape.rank - 1, ref_shape.rank) << key;
      for (int d = 0; d < ref_shape.rank; ++d) ASSERT_EQ(got.shape[d + 1], ref_shape[d]) << key;
      EXPECT_LE(max_diff(got.data, ref, key), kTolerance) << key;
      ++checked;
    }
  }
  // Every hook of every prompt should have a golden, except where the script dropped some.
  EXPECT_GE(checked, n_prompts() * (2 + 16 * n_layer));
}

TEST_F(TinyGpt2, UnequalLengthBatchMatchesGoldensAtValidPositions) {
  const auto tokens = goldens_->ints("batch.tokens");
  const auto lengths = goldens_->ints("batch.lengths");
  const int B = static_cast<int>(lengths.size());
  const int T = static_cast<int>(tokens.size()) / B;
  TokenBatch batch;
  batch.B = B, batch.T = T, batch.ids = tokens;
  batch.lengths.assign(lengths.begin(), lengths.end());

  HookPlan plan(model_->config().n_layer);
  const std::vector<std::string> hooks = {"blocks.1.attn.hook_z", "blocks.0.hook_resid_post",
                                          "blocks.1.attn.hook_pattern"};
  for (const auto& h : hooks) plan.cache(h);
  const Tensor logits = model_->forward(batch, plan);
  const int V = model_->config().vocab_size;
  const auto ref = goldens_->floats("batch.logits");
  double err = 0.0;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < lengths[b]; ++t)
      for (int v = 0; v < V; ++v) {
        const size_t i = (static_cast<size_t>(b) * T + t) * V + v;
        err = std::max(err, static_cast<double>(std::abs(logits.data[i] - ref[i])));
      }
  EXPECT_LE(err, kTolerance);

  // Hooks: compare rows of valid positions only ([b, p, ...] or, for patterns, [b, h, q, k]
  // with q and k both valid).
  for (const auto& h : hooks) {
    Shape shape;
    const auto r = goldens_->floats("batch." + h, &shape);
    const Tensor& got = plan.activations().at(h);
    ASSERT_EQ(got.numel(), static_cast<int64_t>(r.size())) << h;
    const bool pattern = h.ends_with("hook_pattern");
    const int64_t inner = got.numel() / (static_cast<int64_t>(B) * T * (pattern ? got.shape[1] * T : 1));
    double e = 0.0;
    for (int b = 0; b < B; ++b) {
      const int64_t heads = pattern ? got.shape[1] : 1;
      for (int64_t hh = 0; hh < heads; ++hh)
        for (int t = 0; t < lengths[b]; ++t) {
          const int64_t row = ((b * heads + hh) * T + t) * (pattern ? T : inner);
          const int64_t width = pattern ? lengths[b] : inner;
          for (int64_t j = 0; j < width; ++j)
            e = std::max(e, static_cast<double>(std::abs(got.data[row + j] - r[row + j])));
        }
    }
    EXPECT_LE(e, kTolerance) << h;
  }
}

TEST_F(TinyGpt2, OverwritesMatchTransformerLensHooks) {
  const auto tokens = goldens_->ints("single.0.tokens");
  const int T = static_cast<int>(tokens.size());
  const int NH = model_->config().n_head, HS = model_->config().d_head(),
            C = model_->config().n_embd;
  {
    HookPlan plan(model_->config().n_layer);
    plan.add({HookKind::Z, 0}, [&](const HookContext&, Tensor& z) {
      for (int t = 0; t < T; ++t)
        std::memset(z.data + (static_cast<int64_t>(t) * NH + 1) * HS, 0, sizeof(float) * HS);
    });
    const Tensor logits = model_->forward(TokenBatch::single(tokens), plan);
    EXPECT_LE(max_diff(logits.data, goldens_->floats("overwrite.zero_z_L0H1.logits"), "zero z"),
              kTolerance);
  }
  {
    HookPlan plan(model_->config().n_layer);
    // Even-indexed elements only: adding to all of them is undone by LayerNorm's centring.
    plan.add({HookKind::ResidPre, 1}, [&](const HookContext&, Tensor& x) {
      for (int i = 0; i < C; i += 2) x.data[2 * C + i] += 1.0f;
    });
    const Tensor logits = model_->forward(TokenBatch::single(tokens), plan);
    EXPECT_LE(max_diff(logits.data, goldens_->floats("overwrite.add_resid_pre_L1P2.logits"),
                       "add resid"),
              kTolerance);
  }
}

TEST_F(TinyGpt2, OverwritingAHookWithItsOwnValueChangesNothing) {
  const TokenBatch batch = TokenBatch::single(goldens_->ints("single.1.tokens"));
  const Tensor plain = model_->forward(batch);
  const std::vector<float> expected(plain.data, plain.data + plain.numel());
  for (HookPoint h : all_hook_points(model_->config())) {
    HookPlan capture(model_->config().n_layer);
    capture.cache(h);
    model_->forward(batch, capture);
    HookPlan replay(model_->config().n_layer);
    replay.overwrite(h, capture.activations().at(h));
    const Tensor patched = model_->forward(batch, replay);
    // hook_scale is stored as 1/rstd and read back as its inverse: equal to float rounding.
    double err = 0.0;
    for (size_t i = 0; i < expected.size(); ++i)
      err = std::max(err, static_cast<double>(std::abs(patched.data[i] - expected[i])));
    EXPECT_LE(err, 1e-5) << h.name();
  }
}

TEST_F(TinyGpt2, LastRowLogitsEqualFullLogits) {
  const auto a = goldens_->ints("single.0.tokens"), b = goldens_->ints("single.2.tokens");
  const TokenBatch batch = TokenBatch::padded({a, b});
  const Tensor full = model_->forward(batch, LogitRows::All);
  const std::vector<float> all(full.data, full.data + full.numel());
  const Tensor last = model_->forward(batch, LogitRows::Last);
  const int V = model_->config().vocab_size;
  ASSERT_EQ(last.numel(), 2 * V);
  for (int s = 0; s < 2; ++s) {
    const int64_t row = static_cast<int64_t>(s) * batch.T + batch.lengths[s] - 1;
    for (int v = 0; v < V; ++v) EXPECT_NEAR(last.data[s * V + v], all[row * V + v], 1e-5);  // BLAS may pick another kernel for fewer rows
  }
}

TEST_F(TinyGpt2, RejectsOutOfRangeTokensAndLongSequences) {
  const int V = model_->config().vocab_size, P = model_->config().n_positions;
  try {
    model_->forward(TokenBatch::single({1, V, 2}));
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(V)), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("token 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model_->forward(TokenBatch::single({-1})), InputError);
  try {
    model_->forward(TokenBatch::single(std::vector<int32_t>(P + 1, 0)));
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("n_positions"), std::string::npos) << e.what();
  }
}

TEST(HookPoints, NamesRoundTripAndBadNamesAreRejected) {
  ModelConfig gpt2;
  gpt2.model_type = "gpt2";
  gpt2.n_layer = 3;
  for (HookPoint h : all_hook_points(gpt2)) EXPECT_EQ(HookPoint::parse(h.name(), 3), h);
  EXPECT_EQ(HookPoint::parse("blocks.2.attn.hook_z", 3), (HookPoint{HookKind::Z, 2}));
  EXPECT_THROW(HookPoint::parse("blocks.3.attn.hook_z", 3), InputError);
  EXPECT_THROW(HookPoint::parse("blocks.x.attn.hook_z", 3), InputError);
  EXPECT_THROW(HookPoint::parse("blocks.0.attn.hook_zz", 3), InputError);
  EXPECT_THROW(HookPoint::parse("hook_embedding", 3), InputError);
  // hook_embed, hook_pos_embed; 18 per block; ln_final's scale and normalized.
  EXPECT_EQ(all_hook_points(gpt2).size(), 2u + 18u * 3u + 2u);
  // Hooks of other families are refused by name for a GPT-2 model.
  EXPECT_THROW(HookPoint::parse("blocks.0.attn.hook_rot_q", gpt2), InputError);
  EXPECT_THROW(HookPoint::parse("blocks.0.mlp.hook_pre_linear", gpt2), InputError);
  EXPECT_EQ(HookPoint::parse("blocks.1.ln2.hook_normalized", gpt2),
            (HookPoint{HookKind::Ln2Normalized, 1}));
}

}  // namespace
}  // namespace causeway
