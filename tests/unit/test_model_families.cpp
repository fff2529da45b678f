// Model families as data (issue 11): each committed tiny checkpoint's config.json parses to the
// configuration TransformerLens 3.9 derived for it (stored in F-goldens.json), each family's
// weight table names every tensor of the checkpoint with its exact shape and nothing more, bad
// configs give one line naming the field, and the engine refuses non-GPT-2 families cleanly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "core/error.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "model/weight_table.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kFamilies = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/families";
const std::vector<std::string> kFamilyDirs = {"llama3", "llama2",   "mistral", "qwen2",
                                              "qwen3",  "gpt_neox", "gemma2"};

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

// The TransformerLens config as TL derived it for family F.
json tl_config(const std::string& family) {
  return read_json(kFamilies / (family + "-goldens.json"))["transformer_lens"]["config_as_derived"];
}

class FamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyTest, ConfigEqualsTransformerLensConfig) {
  const std::string F = GetParam();
  const ModelConfig c = ModelConfig::from_json_file(kFamilies / F / "config.json");
  const json tl = tl_config(F);
  EXPECT_EQ(c.n_layer, tl["n_layers"].get<int>());
  EXPECT_EQ(c.n_embd, tl["d_model"].get<int>());
  EXPECT_EQ(c.n_head, tl["n_heads"].get<int>());
  EXPECT_EQ(c.d_head(), tl["d_head"].get<int>());
  // TL writes None when every head has its own key/value head.
  EXPECT_EQ(c.kv_heads(), tl["n_key_value_heads"].is_null() ? tl["n_heads"].get<int>()
                                                            : tl["n_key_value_heads"].get<int>());
  EXPECT_EQ(c.n_inner, tl["d_mlp"].get<int>());
  EXPECT_EQ(c.vocab_size, tl["d_vocab"].get<int>());
  EXPECT_EQ(c.n_positions, 128);  // max_position_embeddings (TL caps some families' n_ctx itself)
  EXPECT_EQ(c.layer_norm_epsilon, tl["eps"].get<float>());
  const std::string act = tl["act_fn"];
  EXPECT_EQ(c.activation_function, act == "gelu_pytorch_tanh" ? "gelu_new" : act);
  EXPECT_EQ(c.gated_mlp, tl["gated_mlp"].get<bool>());
  const std::string norm = tl["normalization_type"];
  if (F == "gemma2")  // TL's converter adds Gemma's 1 into ln*.w; the file stores w - 1
    EXPECT_EQ(c.norm, NormKind::RMSNormOnePlusW);
  else
    EXPECT_EQ(c.norm, norm == "LN" ? NormKind::LayerNorm : NormKind::RMSNorm) << norm;
  EXPECT_EQ(c.rotary_dim, tl["rotary_dim"].get<int>());
  EXPECT_EQ(c.rope_theta, tl["rotary_base"].get<double>());
  EXPECT_NEAR(c.attn_scale(), tl["attn_scale"].get<double>(), 1e-12);
  EXPECT_EQ(c.parallel_residual, tl.value("parallel_attn_mlp", false));
  EXPECT_EQ(c.qk_norm, tl.value("use_qk_norm", false));
  EXPECT_EQ(c.post_norms, tl.value("use_normalization_before_and_after", false));
  const float no_cap = -1.0f;  // TL's "none"
  EXPECT_EQ(c.attn_softcap == 0 ? no_cap : c.attn_softcap, tl.value("attn_scores_soft_cap", no_cap));
  EXPECT_EQ(c.final_logit_softcap == 0 ? no_cap : c.final_logit_softcap,
            tl.value("output_logits_soft_cap", no_cap));
  const bool ntk = tl.value("use_NTK_by_parts_rope", false);
  EXPECT_EQ(c.rope_scaling.type, ntk ? "llama3" : "");
  if (ntk) {
    EXPECT_EQ(c.rope_scaling.factor, tl["NTK_by_parts_factor"].get<double>());
    EXPECT_EQ(c.rope_scaling.low_freq_factor, tl["NTK_by_parts_low_freq_factor"].get<double>());
    EXPECT_EQ(c.rope_scaling.high_freq_factor, tl["NTK_by_parts_high_freq_factor"].get<double>());
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, tl["NTK_original_ctx_len"].get<int>());
  }
  if (tl.value("use_local_attn", false)) {
    EXPECT_EQ(c.sliding_window, tl["window_size"].get<int>());
    std::vector<bool> local;
    for (const json& t : tl["attn_types"]) local.push_back(t == "local");
    EXPECT_EQ(c.sliding_layers, local);
  } else {
    EXPECT_EQ(c.sliding_window, 0);
    for (bool s : c.sliding_layers) EXPECT_FALSE(s);
  }
  if (tl.contains("tie_word_embeddings")) EXPECT_EQ(c.tied_unembedding, tl["tie_word_embeddings"].get<bool>());
  // Gemma 2 folds sqrt(d_model) into TL's W_E; every other family embeds unscaled.
  EXPECT_EQ(c.embedding_scale, F == "gemma2" ? std::sqrt(32.0f) : 1.0f);
}

// Every tensor of the checkpoint is a row of the table with the stored shape, and every row is
// in the checkpoint; names on both sides are unique and each split axis exists.
void expect_table_matches(const Checkpoint& ckpt, const std::vector<WeightRow>& table,
                          const std::string& prefix = "") {
  std::map<std::string, const WeightRow*> by_hf;
  std::set<std::string> tl_names;
  for (const WeightRow& r : table) {
    EXPECT_TRUE(by_hf.emplace(prefix + r.hf_name, &r).second) << "duplicate row " << r.hf_name;
    EXPECT_TRUE(tl_names.insert(r.tl_name).second) << "duplicate TL name " << r.tl_name;
    EXPECT_EQ(r.hf_name.find("{L}"), std::string::npos) << r.hf_name;
    if (r.split == TpSplit::Replicated) {
      EXPECT_EQ(r.axis, -1) << r.hf_name;
    } else {
      EXPECT_GE(r.axis, 0) << r.hf_name;
      EXPECT_LT(r.axis, static_cast<int>(r.shape.size())) << r.hf_name;
    }
  }
  for (const std::string& name : ckpt.names()) {
    auto it = by_hf.find(name);
    if (it == by_hf.end()) {
      ADD_FAILURE() << "checkpoint tensor " << name << " has no row in the weight table";
      continue;
    }
    EXPECT_EQ(it->second->shape, ckpt.info(name).shape) << name;
  }
  for (const auto& [name, row] : by_hf)
    EXPECT_TRUE(ckpt.has(name)) << "table row " << name << " not in the checkpoint";
  EXPECT_EQ(by_hf.size(), ckpt.names().size());
}

TEST_P(FamilyTest, WeightTableCoversTheCheckpointExactly) {
  const std::string F = GetParam();
  const ModelConfig c = ModelConfig::from_json_file(kFamilies / F / "config.json");
  const Checkpoint ckpt = Checkpoint::open(kFamilies / F);
  expect_table_matches(ckpt, weight_table(c));
}

// `causeway logits` runs every family: its most likely next token after the first golden prompt
// is Hugging Face's.
TEST_P(FamilyTest, LogitsCommandRunsTheFamily) {
  const std::string F = GetParam();
  const fs::path dir = kFamilies / F;
  const json prompt = read_json(kFamilies / (F + "-goldens.json"))["prompts"][0];
  std::string ids;
  for (const auto& id : prompt["ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
  const SafetensorsFile g = SafetensorsFile::open(kFamilies / (F + "-goldens.safetensors"));
  const TensorInfo* info = g.find("single.0.logits");
  ASSERT_NE(info, nullptr);
  const int64_t V = info->shape[1], T = info->shape[0];
  const float* last = reinterpret_cast<const float*>(g.data(*info)) + (T - 1) * V;
  const int64_t top = std::max_element(last, last + V) - last;
  const auto r = fixtures::run_causeway("logits --model " + dir.string() + " --tokens " + ids + " --top 1");
  ASSERT_EQ(r.code, 0) << r.output;
  const size_t at = r.output.find("     1 ");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_EQ(std::stoll(r.output.substr(at + 7)), top) << r.output;
}

// Sizes in a family's config.json that disagree with its weights stop `logits` with one line
// naming config.json and the field, before anything is allocated.
TEST(ModelFamilies, ConfigSizesDisagreeingWithTheWeightsNameTheField) {
  fixtures::TempDir tmp("family-sizes");
  struct SizeCase {
    const char* family;
    const char* field;
    int value;
  };
  for (const SizeCase& c : {SizeCase{"llama3", "intermediate_size", 128},
                            SizeCase{"qwen3", "num_key_value_heads", 4},
                            SizeCase{"gemma2", "vocab_size", 500},
                            SizeCase{"gpt_neox", "num_hidden_layers", 1},
                            SizeCase{"mistral", "num_hidden_layers", 3}}) {
    const fs::path m = tmp.path() / (std::string(c.family) + "-" + c.field);
    fs::create_directories(m);
    for (const auto& e : fs::directory_iterator(kFamilies / c.family))
      fs::copy(e.path(), m / e.path().filename());
    json cfg = read_json(kFamilies / c.family / "config.json");
    cfg[c.field] = c.value;
    std::ofstream(m / "config.json") << cfg.dump();
    const auto r = fixtures::run_causeway("logits --model " + m.string() + " --tokens 1,2");
    EXPECT_EQ(r.code, 2) << c.family << " " << c.field << ": " << r.output;
    EXPECT_NE(r.output.find("causeway: error: " + (m / "config.json").string() + ": " + c.field +
                            ": " + std::to_string(c.value) + " disagrees with the weights"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyTest, ::testing::ValuesIn(kFamilyDirs),
                         [](const auto& info) { return info.param; });

TEST(ModelFamilies, Gpt2TableCoversTinyGpt2) {
  const fs::path dir = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2";
  const ModelConfig c = ModelConfig::from_json_file(dir / "config.json");
  EXPECT_EQ(c.norm, NormKind::LayerNorm);
  EXPECT_EQ(c.rotary_dim, 0);
  EXPECT_EQ(c.kv_heads(), 4);
  EXPECT_EQ(c.d_head(), 16);
  EXPECT_TRUE(c.tied_unembedding);
  EXPECT_FALSE(c.gated_mlp);
  EXPECT_EQ(c.attn_scale(), 4.0);
  expect_table_matches(Checkpoint::open(dir), weight_table(c), "transformer.");
}

// Spot checks of the split and TL-name conventions the coverage test cannot see.
TEST(ModelFamilies, SplitsAndTransformerLensNames) {
  auto row = [](const std::string& family, const std::string& hf) {
    const ModelConfig c = ModelConfig::from_json_file(kFamilies / family / "config.json");
    for (const WeightRow& r : weight_table(c))
      if (r.hf_name == hf) return r;
    ADD_FAILURE() << hf << " not in " << family;
    return WeightRow{};
  };
  const WeightRow k = row("llama3", "model.layers.1.self_attn.k_proj.weight");
  EXPECT_EQ(k.tl_name, "blocks.1.attn._W_K");  // grouped: TL's _W_K
  EXPECT_EQ(k.split, TpSplit::Column);
  EXPECT_EQ(k.axis, 0);
  EXPECT_EQ(row("llama2", "model.layers.0.self_attn.k_proj.weight").tl_name, "blocks.0.attn.W_K");
  const WeightRow o = row("mistral", "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(o.split, TpSplit::Row);
  EXPECT_EQ(o.axis, 1);
  EXPECT_EQ(o.shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(row("qwen2", "lm_head.weight").split, TpSplit::Vocabulary);
  EXPECT_EQ(row("qwen3", "model.layers.0.self_attn.q_norm.weight").split, TpSplit::Replicated);
  EXPECT_EQ(row("gemma2", "model.embed_tokens.weight").tl_name, "embed.W_E,unembed.W_U");
  EXPECT_EQ(row("gemma2", "model.layers.0.pre_feedforward_layernorm.weight").tl_name, "blocks.0.ln2.w");
  const WeightRow qkv = row("gpt_neox", "gpt_neox.layers.0.attention.query_key_value.weight");
  EXPECT_EQ(qkv.split, TpSplit::Column);
  EXPECT_EQ(qkv.axis, 0);
  EXPECT_STREQ(tp_split_name(qkv.split), "column");
}

// config.json text of family F with `edit` applied.
std::string edited(const std::string& family, const std::function<void(json&)>& edit) {
  json j = read_json(kFamilies / family / "config.json");
  edit(j);
  return j.dump();
}

void expect_error(const std::string& text, const std::string& field, const std::string& line) {
  try {
    ModelConfig::from_json_text(text, "m/config.json");
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), field) << e.what();
    EXPECT_EQ(std::string(e.what()), line);
    return;
  }
  ADD_FAILURE() << "expected an InputError naming " << field;
}

TEST(ModelFamilyErrors, UnknownModelTypeListsTheFamilies) {
  expect_error(edited("llama3", [](json& j) { j["model_type"] = "mamba"; }), "model_type",
               "m/config.json: model_type: unsupported model type \"mamba\" (supported: \"gpt2\", "
               "\"llama\", \"mistral\", \"qwen2\", \"qwen3\", \"gpt_neox\", \"gemma2\")");
}

TEST(ModelFamilyErrors, MissingFieldTheFamilyNeeds) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"llama3", "rms_norm_eps"},       {"llama2", "intermediate_size"},
      {"mistral", "hidden_act"},        {"qwen2", "rope_theta"},
      {"qwen3", "num_attention_heads"}, {"gpt_neox", "rotary_pct"},
      {"gpt_neox", "layer_norm_eps"},   {"gemma2", "query_pre_attn_scalar"},
      {"gemma2", "head_dim"},           {"gemma2", "sliding_window"},
      {"gemma2", "attn_logit_softcapping"}};
  for (const auto& [family, field] : cases) {
    SCOPED_TRACE(family + " " + field);
    const json j = read_json(kFamilies / family / "config.json");
    const std::string mt = j["model_type"];
    const std::string field_name = field;
    expect_error(edited(family, [&](json& x) { x.erase(field_name); }), field,
                 "m/config.json: " + field + ": missing (model_type \"" + mt + "\" requires it)");
  }
}

TEST(ModelFamilyErrors, UnsupportedRopeScalingType) {
  expect_error(edited("llama3", [](json& j) { j["rope_scaling"]["rope_type"] = "yarn"; }), "rope_scaling",
               "m/config.json: rope_scaling: unsupported rope_type \"yarn\" (supported: \"default\", "
               "\"llama3\")");
  expect_error(edited("llama3", [](json& j) { j["rope_scaling"].erase("low_freq_factor"); }),
               "rope_scaling.low_freq_factor",
               "m/config.json: rope_scaling.low_freq_factor: missing (rope_type \"llama3\" requires it)");
}

TEST(ModelFamilyErrors, UnsupportedValuesThatChangeTheMaths) {
  expect_error(edited("qwen3", [](json& j) { j["hidden_act"] = "relu"; }), "hidden_act",
               "m/config.json: hidden_act: unsupported activation \"relu\" (supported: \"silu\", "
               "\"gelu\", \"gelu_new\", \"gelu_pytorch_tanh\")");
  expect_error(edited("gemma2", [](json& j) { j["layer_types"][1] = "chunked_attention"; }),
               "layer_types",
               "m/config.json: layer_types: unsupported layer type \"chunked_attention\" (supported: "
               "\"full_attention\", \"sliding_attention\")");
  expect_error(edited("gemma2", [](json& j) { j["use_bidirectional_attention"] = true; }),
               "use_bidirectional_attention",
               "m/config.json: use_bidirectional_attention: unsupported value true (only causal "
               "attention is implemented)");
  expect_error(edited("llama3", [](json& j) { j["num_key_value_heads"] = 3; }), "num_key_value_heads",
               "m/config.json: num_key_value_heads: 3 does not divide num_attention_heads = 4");
}

// The forms the same settings take elsewhere: transformers 5's rope_parameters, Gemma 2 files
// without layer_types (even layers slide), a Mistral with a sliding window, Llama biases.
TEST(ModelFamilies, EquivalentAndOptionalForms) {
  const ModelConfig v5 = ModelConfig::from_json_text(edited("llama3", [](json& j) {
    j["rope_parameters"] = j["rope_scaling"];
    j["rope_parameters"]["rope_theta"] = j["rope_theta"];
    j.erase("rope_scaling");
    j.erase("rope_theta");
  }), "m/config.json");
  EXPECT_EQ(v5.rope_theta, 500000.0);
  EXPECT_EQ(v5.rope_scaling.type, "llama3");
  EXPECT_EQ(v5.rope_scaling.factor, 8.0);
  EXPECT_EQ(v5.rope_scaling.original_max_position_embeddings, 32);

  const ModelConfig g = ModelConfig::from_json_text(edited("gemma2", [](json& j) {
    j.erase("layer_types");
    j["num_hidden_layers"] = 4;
  }), "m/config.json");
  EXPECT_EQ(g.sliding_layers, (std::vector<bool>{true, false, true, false}));

  const ModelConfig m = ModelConfig::from_json_text(
      edited("mistral", [](json& j) { j["sliding_window"] = 4096; }), "m/config.json");
  EXPECT_EQ(m.sliding_window, 4096);
  EXPECT_EQ(m.sliding_layers, (std::vector<bool>{true, true}));

  const ModelConfig b = ModelConfig::from_json_text(
      edited("llama2", [](json& j) { j["attention_bias"] = true; }), "m/config.json");
  EXPECT_TRUE(b.qkv_bias && b.out_bias);
  EXPECT_FALSE(b.mlp_bias);
  // q, k, v and o biases in each of the 2 layers.
  const ModelConfig plain = ModelConfig::from_json_file(kFamilies / "llama2/config.json");
  EXPECT_EQ(weight_table(b).size(), weight_table(plain).size() + 2 * 4);
}

TEST(ModelFamilies, ToJsonIsGpt2Only) {
  const ModelConfig c = ModelConfig::from_json_file(kFamilies / "qwen2/config.json");
  EXPECT_THROW(c.to_json(), Error);
}

}  // namespace
}  // namespace causeway
