// config.json as Hugging Face reads it (issue 19, B6, B7, B10): every family reads the layout
// transformers 5 writes (rope_parameters) to the same model as the older one, a field the
// family's config class does not define changes nothing, and sizes far past any model are
// refused before anything is sized from them.
#include <gtest/gtest.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/error.h"
#include "family_goldens.h"
#include "model/model_config.h"
#include "model/transformer_model.h"
#include "model/weight_table.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json family_config(const std::string& family) {
  std::ifstream in(fixtures::family_model_dir(family) / "config.json");
  return json::parse(in);
}

// The family's checkpoint folder with config.json replaced by `cfg`, under `tmp`.
fs::path with_config(const fixtures::TempDir& tmp, const std::string& family, const json& cfg) {
  const fs::path dir = tmp.path() / family;
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(fixtures::family_model_dir(family)))
    if (e.path().filename() != "config.json") fs::copy(e.path(), dir / e.path().filename());
  std::ofstream(dir / "config.json") << cfg.dump(2);
  return dir;
}

// The family's config.json as transformers 5.25 saves it (tests/data/families/transformers5,
// written by tests/reference/make_transformers5_configs.py): rope_theta, rope_scaling and
// GPT-NeoX's rotary_pct / rotary_emb_base moved into rope_parameters.
json transformers5_config(const std::string& family) {
  std::ifstream in(fixtures::families_dir() / "transformers5" / (family + ".json"));
  return json::parse(in);
}

const std::vector<int32_t> kPrompt = {3, 17, 101, 250, 7, 42};

std::vector<float> logits_of(const fs::path& dir) {
  TransformerModel m = TransformerModel::load(dir);
  const Tensor t = m.forward(TokenBatch::single(kPrompt));
  return {t.data, t.data + t.numel()};
}

class ConfigLayouts : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override { CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS(); }
};

// B7: the same model from both layouts: the same configuration and the very same logits.
TEST_P(ConfigLayouts, Transformers5LayoutGivesTheSameModel) {
  const std::string F(GetParam());
  fixtures::TempDir tmp("config-v5");
  const json v4 = family_config(F);
  const json v5 = transformers5_config(F);
  ASSERT_TRUE(v5.contains("rope_parameters"));
  for (const char* older : {"rope_theta", "rope_scaling", "rotary_pct", "rotary_emb_base"})
    ASSERT_FALSE(v5.contains(older)) << older;
  const ModelConfig a = ModelConfig::from_json_text(v4.dump(), "v4/config.json");
  const ModelConfig b = ModelConfig::from_json_text(v5.dump(), "v5/config.json");
  EXPECT_EQ(a.describe(), b.describe()) << F;
  EXPECT_EQ(logits_of(fixtures::family_model_dir(F)), logits_of(with_config(tmp, F, v5))) << F;
}

INSTANTIATE_TEST_SUITE_P(Families, ConfigLayouts, ::testing::ValuesIn(fixtures::kFamilies),
                         [](const auto& info) { return std::string(info.param); });

ModelConfig parsed(const std::string& family, const std::function<void(json&)>& edit) {
  json j = family_config(family);
  edit(j);
  return ModelConfig::from_json_text(j.dump(), "m/config.json");
}

// B7: what each layout may also hold, read with transformers' priority.
TEST(ConfigLayouts, RopeParametersDetails) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  // rope_parameters wins over the older keys beside it (transformers 5's order).
  const ModelConfig neox = parsed("gpt_neox", [](json& j) {
    j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500.0}, {"partial_rotary_factor", 0.25}};
  });
  EXPECT_EQ(neox.rotary_dim, 2);  // head_dim 8 x 0.25, not rotary_pct 0.5
  EXPECT_EQ(neox.rope_theta, 500.0);
  // Nested per layer type with equal entries (Gemma 2 may be written so): one table.
  const ModelConfig g = parsed("gemma2", [](json& j) {
    const json p = {{"rope_type", "default"}, {"rope_theta", 1234.0}};
    j["rope_parameters"] = {{"full_attention", p}, {"sliding_attention", p}};
    j.erase("rope_theta");
    j.erase("rope_scaling");
  });
  EXPECT_EQ(g.rope_theta, 1234.0);
  EXPECT_THROW(parsed("gemma2", [](json& j) {
                 j["rope_parameters"] = {{"full_attention", {{"rope_theta", 1.0}}},
                                         {"sliding_attention", {{"rope_theta", 2.0}}}};
               }),
               InputError);
  // Families that rotate whole heads refuse a partial factor rather than compute another model.
  try {
    parsed("llama2", [](json& j) { j["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}}; });
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "rope_parameters.partial_rotary_factor");
    EXPECT_NE(std::string(e.what()).find("unsupported value 0.5"), std::string::npos) << e.what();
  }
}

// B6: num_key_value_heads and head_dim are not GPT-NeoX fields; transformers ignores them, so
// the model (and its logits) stays the same.
TEST(ConfigFields, FieldsAFamilyDoesNotDefineChangeNothing) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  fixtures::TempDir tmp("config-fields");
  json neox = family_config("gpt_neox");
  neox["num_key_value_heads"] = 2;
  neox["head_dim"] = 4;
  const ModelConfig n = ModelConfig::from_json_text(neox.dump(), "m/config.json");
  EXPECT_EQ(n.kv_heads(), 4);
  EXPECT_EQ(n.d_head(), 8);
  EXPECT_EQ(n.describe(), ModelConfig::from_json_text(family_config("gpt_neox").dump(), "m").describe());
  EXPECT_EQ(logits_of(fixtures::family_model_dir("gpt_neox")), logits_of(with_config(tmp, "gpt_neox", neox)));

  // Mistral defines no attention_bias or mlp_bias: no bias tensors are expected.
  const ModelConfig m = parsed("mistral", [](json& j) {
    j["attention_bias"] = true;
    j["mlp_bias"] = true;
  });
  EXPECT_FALSE(m.qkv_bias || m.out_bias || m.mlp_bias);
  // Qwen2's q/k/v biases are fixed by the architecture; attention_bias is Qwen3's.
  const ModelConfig q = parsed("qwen2", [](json& j) { j["attention_bias"] = false; });
  EXPECT_TRUE(q.qkv_bias);
  EXPECT_FALSE(q.out_bias);
  // Gemma 2 reads hidden_activation alone: a hidden_act beside it (or instead) is not its field.
  const ModelConfig g = parsed("gemma2", [](json& j) {
    j.erase("hidden_activation");
    j["hidden_act"] = "gelu";
  });
  EXPECT_EQ(g.activation_function, "gelu_new");
  // GPT-2 has no grouped-query attention whatever the file says.
  const json gpt2 = json::parse(fixtures::read_text(fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2/config.json"));
  json g2 = gpt2;
  g2["num_key_value_heads"] = 2;
  g2["head_dim"] = 8;
  EXPECT_EQ(ModelConfig::from_json_text(g2.dump(), "m").describe(),
            ModelConfig::from_json_text(gpt2.dump(), "m").describe());
}

// B6: defaults of fields a family defines are the family's own when the field is absent.
TEST(ConfigFields, AbsentFieldsTakeTheFamilysDefault) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  auto kv_when_absent = [](const std::string& family) {
    return parsed(family, [](json& j) {
             j.erase("num_key_value_heads");
             j["num_attention_heads"] = 32;
             j["hidden_size"] = 256;
           }).kv_heads();
  };
  EXPECT_EQ(kv_when_absent("llama2"), 32);
  EXPECT_EQ(kv_when_absent("mistral"), 8);
  EXPECT_EQ(kv_when_absent("qwen2"), 32);
  EXPECT_EQ(kv_when_absent("gemma2"), 4);
  EXPECT_EQ(parsed("mistral", [](json& j) { j["num_key_value_heads"] = nullptr; }).kv_heads(), 4);
  EXPECT_EQ(parsed("qwen3", [](json& j) { j.erase("head_dim"); }).d_head(), 128);
  EXPECT_EQ(parsed("qwen2", [](json& j) { j.erase("head_dim"); }).d_head(), 8);
  // Mistral's window: absent is its default 4096, null is none.
  EXPECT_EQ(parsed("mistral", [](json& j) { j.erase("sliding_window"); }).sliding_window, 4096);
  EXPECT_EQ(parsed("mistral", [](json& j) { j["sliding_window"] = nullptr; }).sliding_window, 0);
  // Qwen2 with use_sliding_window and no layer_types: layers from max_window_layers on slide.
  const ModelConfig q = parsed("qwen2", [](json& j) {
    j.erase("layer_types");
    j["use_sliding_window"] = true;
    j["sliding_window"] = 16;
    j["max_window_layers"] = 1;
  });
  EXPECT_EQ(q.sliding_window, 16);
  EXPECT_EQ(q.sliding_layers, (std::vector<bool>{false, true}));
}

// B10: every size field far past any model is refused at parse time, naming the field.
TEST(ConfigSizes, HugeSizesAreRefusedNamingTheField) {
  CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS();
  struct Case {
    std::string family, field;
    int64_t value;
  };
  const std::vector<Case> cases = {
      {"llama2", "num_hidden_layers", INT_MAX}, {"llama2", "num_hidden_layers", 1000000},
      {"llama2", "num_attention_heads", 1 << 20}, {"llama2", "hidden_size", INT_MAX},
      {"llama2", "intermediate_size", INT_MAX},  {"llama2", "vocab_size", INT_MAX},
      {"llama2", "head_dim", INT_MAX},           {"gpt_neox", "num_hidden_layers", INT_MAX},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.family + " " + c.field);
    try {
      parsed(c.family, [&](json& j) { j[c.field] = c.value; });
      ADD_FAILURE() << "expected an InputError";
    } catch (const InputError& e) {
      EXPECT_EQ(e.field(), c.field) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::to_string(c.value) + " is more"), std::string::npos) << e.what();
    }
  }
  // Sizes each within bounds whose product is not: refused as a parameter count.
  try {
    parsed("llama2", [](json& j) {
      j["num_hidden_layers"] = 4096;
      j["hidden_size"] = 65536;
      j["num_attention_heads"] = 512;
      j["num_key_value_heads"] = 512;
      j["head_dim"] = 128;
      j["intermediate_size"] = 262144;
    });
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("parameters, more than causeway allows"), std::string::npos) << e.what();
  }
  // GPT-2's learned positions are a tensor: its n_positions is bounded too.
  json g = json::parse(fixtures::read_text(fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2/config.json"));
  for (const char* field : {"n_layer", "n_positions", "vocab_size", "n_inner"}) {
    json e = g;
    e[field] = INT_MAX;
    try {
      ModelConfig::from_json_text(e.dump(), "m");
      ADD_FAILURE() << field;
    } catch (const InputError& err) {
      EXPECT_EQ(err.field(), field) << err.what();
    }
  }
}

}  // namespace
}  // namespace causeway
