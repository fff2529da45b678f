// The family golden fixture (family_goldens.h) on the committed data: each safetensors file
// agrees with the JSON written beside it (token ids, hook lists and shapes, pairs), values come
// through unchanged (spot values read with Python's safetensors), and the dtype conversions
// and errors on a file written here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "family_goldens.h"
#include "model/safetensors.h"

namespace causeway {
namespace {

using fixtures::FamilyGoldens;
using fixtures::GoldenTensors;
using fixtures::kFamilies;

constexpr int64_t kVocab = 384;  // every family (FAMILIES.md)

std::vector<int64_t> json_ints(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

TEST(FamilyGoldensFixture, ForwardTokensLogitsAndHooksMatchTheJson) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  for (std::string_view name : kFamilies) {
    const std::string family(name);
    SCOPED_TRACE(family);
    const FamilyGoldens g(family);
    EXPECT_EQ(g.family(), family);
    EXPECT_EQ(g.json().at("family").get<std::string>(), family);
    const auto& prompts = g.json().at("prompts");
    ASSERT_EQ(prompts.size(), 3u);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::string p = "single." + std::to_string(i) + ".";
      const auto ids = json_ints(prompts[i].at("ids"));
      const int64_t T = prompts[i].at("length").get<int64_t>();
      ASSERT_EQ(static_cast<int64_t>(ids.size()), T);
      EXPECT_EQ(g.ints(p + "tokens"), ids);
      EXPECT_EQ(g.shape(p + "tokens"), std::vector<int64_t>{T});
      // I32 read as floats gives the same ids (all < 2^24).
      const auto as_floats = g.floats(p + "tokens");
      ASSERT_EQ(as_floats.size(), ids.size());
      for (size_t t = 0; t < ids.size(); ++t) EXPECT_EQ(as_floats[t], static_cast<float>(ids[t]));
      EXPECT_EQ(g.shape(p + "logits"), (std::vector<int64_t>{T, kVocab}));
      EXPECT_EQ(g.floats(p + "logits").size(), static_cast<size_t>(T * kVocab));
    }
    EXPECT_FALSE(g.has("single.3.tokens"));

    // single.0.* is exactly the tokens, the logits and one tensor per hook, of the JSON's shape.
    const auto& hooks = g.json().at("hooks");
    const auto& shapes = g.json().at("hook_shapes_single0");
    ASSERT_EQ(hooks.size(), shapes.size());
    for (const auto& hook : hooks) {
      const std::string key = "single.0." + hook.get<std::string>();
      ASSERT_TRUE(g.has(key)) << key;
      EXPECT_EQ(g.shape(key), json_ints(shapes.at(hook.get<std::string>()))) << key;
    }
    EXPECT_EQ(g.keys_with_prefix("single.0.").size(), hooks.size() + 2);
  }
}

// Hook counts and the structural differences FAMILIES.md lists, seen through the fixture.
TEST(FamilyGoldensFixture, HookSetsDifferAsFamiliesMdSays) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  const std::vector<std::pair<std::string, size_t>> counts = {
      {"llama3", 47}, {"llama2", 47}, {"mistral", 47}, {"qwen2", 47},
      {"qwen3", 55},  {"gpt_neox", 43}, {"gemma2", 55}};
  for (const auto& [family, n] : counts) {
    const FamilyGoldens g(family);
    EXPECT_EQ(g.json().at("hooks").size(), n) << family;
    EXPECT_EQ(g.has("single.0.blocks.0.hook_resid_mid"), family != "gpt_neox") << family;
    EXPECT_EQ(g.has("single.0.blocks.0.mlp.hook_pre_linear"), family != "gpt_neox") << family;
    EXPECT_EQ(g.has("single.0.blocks.0.ln1_post.hook_scale"), family == "gemma2") << family;
    EXPECT_EQ(g.has("single.0.blocks.0.attn.q_norm.hook_scale"), family == "qwen3") << family;
    EXPECT_FALSE(g.has("single.0.hook_pos_embed")) << family;
  }
  // qwen3's q norm hooks have no position axis: [T * H, d_head] with T 13, H 4, d_head 16.
  const FamilyGoldens qwen3("qwen3");
  EXPECT_EQ(qwen3.shape("single.0.blocks.1.attn.q_norm.hook_normalized"),
            (std::vector<int64_t>{13 * 4, 16}));
  EXPECT_EQ(qwen3.shape("single.0.blocks.1.attn.hook_k"), (std::vector<int64_t>{13, 2, 16}));
}

// Values read with Python (safetensors.numpy.load_file) from the committed files.
TEST(FamilyGoldensFixture, ValuesMatchPythonReads) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  const FamilyGoldens llama3("llama3");
  const auto logits = llama3.floats("single.0.logits");  // [14, 384]
  EXPECT_FLOAT_EQ(logits[0], 0.9132177233695984f);
  EXPECT_FLOAT_EQ(logits[1], -1.6419100761413574f);
  EXPECT_FLOAT_EQ(logits[13 * 384 + 383], 1.1810551f);
  // hook_pattern [H, T, T] of prompt 2 (T 17): head 3, query 16, key 0.
  const auto pattern = llama3.floats("single.2.blocks.1.attn.hook_pattern");
  EXPECT_FLOAT_EQ(pattern[(3 * 17 + 16) * 17 + 0], 0.08133036f);
  EXPECT_FLOAT_EQ(FamilyGoldens("gemma2").floats("single.0.logits")[2], 2.321303367614746f);
}

TEST(FamilyGoldensFixture, PatchingPairsAndShapesMatchTheJson) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  for (std::string_view name : kFamilies) {
    const std::string family(name);
    SCOPED_TRACE(family);
    const FamilyGoldens g(family, "patching");
    const auto& pairs = g.json().at("pairs");
    ASSERT_EQ(pairs.size(), 6u);
    const auto clean = g.ints("pairs.clean"), corrupted = g.ints("pairs.corrupted");
    const auto answer = g.ints("pairs.answer"), wrong = g.ints("pairs.wrong");
    ASSERT_EQ(g.shape("pairs.clean"), (std::vector<int64_t>{6, 8}));
    for (size_t i = 0; i < pairs.size(); ++i) {
      const auto c = json_ints(pairs[i].at("clean")), k = json_ints(pairs[i].at("corrupted"));
      EXPECT_EQ(std::vector<int64_t>(clean.begin() + 8 * i, clean.begin() + 8 * (i + 1)), c) << i;
      EXPECT_EQ(std::vector<int64_t>(corrupted.begin() + 8 * i, corrupted.begin() + 8 * (i + 1)),
                k)
          << i;
      EXPECT_EQ(answer[i], pairs[i].at("answer").get<int64_t>()) << i;
      EXPECT_EQ(wrong[i], pairs[i].at("wrong").get<int64_t>()) << i;
    }
    // Every tensor is listed in the JSON's shapes with its shape, and nothing else is.
    const auto& shapes = g.json().at("shapes");
    EXPECT_EQ(g.keys_with_prefix("").size(), shapes.size());
    for (const auto& [key, shape] : shapes.items()) EXPECT_EQ(g.shape(key), json_ints(shape)) << key;
    // The denoising invariant PATCHING.md states: all of clean resid_pre at layer 0 restores 1.
    EXPECT_NEAR(g.floats("invariant.denoise_resid_pre_layer0_all_pos").at(0), 1.0f, 1e-6f);
    EXPECT_EQ(g.has("get_act_patch_resid_mid.denoising.mean"), family != "gpt_neox");
  }
}

// train.grad.<name> covers every parameter of the checkpoint by its HF name; gpt_neox's
// untied unembedding is embed_out in model.safetensors but lm_head in the gradients
// (transformers 5 renames it on load), which a loader of both has to map.
TEST(FamilyGoldensFixture, GradientShapesAndWeightNamesMatch) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  for (std::string_view name : kFamilies) {
    const std::string family(name);
    SCOPED_TRACE(family);
    const FamilyGoldens g(family, "gradient");
    const auto& shapes = g.json().at("shapes");
    EXPECT_EQ(g.keys_with_prefix("").size(), shapes.size());
    for (const auto& [key, shape] : shapes.items()) EXPECT_EQ(g.shape(key), json_ints(shape)) << key;

    const GoldenTensors weights = fixtures::family_weights(family);
    std::vector<std::string> expected;
    for (const std::string& w : weights.keys_with_prefix(""))
      expected.push_back("train.grad." + (w == "embed_out.weight" ? "lm_head.weight" : w));
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(g.keys_with_prefix("train.grad."), expected);
    EXPECT_EQ(weights.has("embed_out.weight"), family == "gpt_neox");
    EXPECT_EQ(g.shape("train.tokens"), (std::vector<int64_t>{2, 12}));
  }
}

TEST(FamilyGoldensFixture, ModelDirHoldsTheCheckpoint) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  for (std::string_view name : kFamilies) {
    const std::string family(name);
    const auto dir = fixtures::family_model_dir(family);
    EXPECT_EQ(dir.filename().string(), family);
    EXPECT_TRUE(std::filesystem::is_regular_file(dir / "config.json")) << dir;
    EXPECT_TRUE(std::filesystem::is_regular_file(dir / "tokenizer.json")) << dir;
    EXPECT_EQ(FamilyGoldens(family).json().at("model").at("dir").get<std::string>(), family);
  }
}

TEST(FamilyGoldensFixture, ErrorsNameTheFileAndKey) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  const FamilyGoldens g("qwen2");
  try {
    g.floats("single.0.no_such_hook");
    FAIL() << "no error for a missing key";
  } catch (const InputError& e) {
    EXPECT_NE(e.file().find("qwen2-goldens.safetensors"), std::string::npos) << e.what();
    EXPECT_EQ(e.field(), "single.0.no_such_hook");
  }
  // Ids are never silently rounded from floats.
  try {
    g.ints("single.0.logits");
    FAIL() << "no error for ints() of an F32 tensor";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "single.0.logits");
    EXPECT_NE(e.detail().find("F32"), std::string::npos) << e.what();
  }
  EXPECT_THROW(FamilyGoldens("qwen2", "gradients"), InputError);
  EXPECT_THROW(FamilyGoldens("no_such_family"), InputError);
}

// Conversions on a file written here (the committed goldens hold only F32 and I32):
// BF16 and F16 bit patterns with exact float values.
TEST(FamilyGoldensFixture, ConvertsHalfPrecisionAndInts) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("family_goldens_fixture_" + std::to_string(::getpid()) + ".safetensors");
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC040, 0x3EAB, 0x0000};  // 1, -3, 0.333984375, 0
  const std::vector<uint16_t> f16 = {0x3C00, 0xC200, 0x3555};          // 1, -3, 0.333251953125
  const std::vector<int32_t> i32 = {-7, 0, 16777216};
  write_safetensors(path, {{"a.bf16", DType::BF16, {2, 2}, bf16.data()},
                           {"a.f16", DType::F16, {3}, f16.data()},
                           {"b.i32", DType::I32, {3}, i32.data()}});
  {
    const GoldenTensors t(path);
    EXPECT_EQ(t.floats("a.bf16"), (std::vector<float>{1.0f, -3.0f, 0.333984375f, 0.0f}));
    EXPECT_EQ(t.shape("a.bf16"), (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(t.floats("a.f16"), (std::vector<float>{1.0f, -3.0f, 0.333251953125f}));
    EXPECT_EQ(t.ints("b.i32"), (std::vector<int64_t>{-7, 0, 16777216}));
    EXPECT_EQ(t.floats("b.i32"), (std::vector<float>{-7.0f, 0.0f, 16777216.0f}));
    EXPECT_EQ(t.keys_with_prefix("a."), (std::vector<std::string>{"a.bf16", "a.f16"}));
    EXPECT_EQ(t.keys_with_prefix(""), (std::vector<std::string>{"a.bf16", "a.f16", "b.i32"}));
    EXPECT_THROW(t.ints("a.f16"), InputError);
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace causeway
