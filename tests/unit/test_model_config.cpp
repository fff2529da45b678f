// ModelConfig from Hugging Face config.json text: the real GPT-2 small config, defaults and
// aliases, and one test per kind of bad config, each checking the error names the source and
// the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/model_config.h"

namespace causeway {
namespace {

// openai-community/gpt2's config.json, as published.
constexpr const char* kGpt2Small = R"({
  "activation_function": "gelu_new",
  "architectures": ["GPT2LMHeadModel"],
  "attn_pdrop": 0.1,
  "bos_token_id": 50256,
  "embd_pdrop": 0.1,
  "eos_token_id": 50256,
  "initializer_range": 0.02,
  "layer_norm_epsilon": 1e-05,
  "model_type": "gpt2",
  "n_ctx": 1024,
  "n_embd": 768,
  "n_head": 12,
  "n_inner": null,
  "n_layer": 12,
  "n_positions": 1024,
  "resid_pdrop": 0.1,
  "summary_activation": null,
  "summary_first_dropout": 0.1,
  "summary_proj_to_labels": true,
  "summary_type": "cls_index",
  "summary_use_proj": true,
  "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
  "vocab_size": 50257
})";

// A config object from comma-separated fields.
std::string config_with(const std::string& fields) {
  return "{" + fields + "}";
}
const std::string kBase =
    R"("model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 128, "vocab_size": 1000)";

void expect_input_error(const std::string& text, const std::vector<std::string>& pieces,
                        const std::string& field) {
  try {
    ModelConfig::from_json_text(text, "my/config.json");
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.file(), "my/config.json") << what;
    EXPECT_EQ(e.field(), field) << what;
    for (const std::string& p : pieces)
      EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
    return;
  }
  ADD_FAILURE() << "expected an InputError for: " << text;
}

TEST(ModelConfig, Gpt2Small) {
  const ModelConfig c = ModelConfig::from_json_text(kGpt2Small, "gpt2/config.json");
  EXPECT_EQ(c.model_type, "gpt2");
  EXPECT_EQ(c.n_layer, 12);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.n_head, 12);
  EXPECT_EQ(c.n_positions, 1024);
  EXPECT_EQ(c.vocab_size, 50257);
  EXPECT_EQ(c.n_inner, 3072);  // null -> 4 * n_embd
  EXPECT_EQ(c.d_head(), 64);
  EXPECT_EQ(c.layer_norm_epsilon, 1e-5f);
  EXPECT_EQ(c.activation_function, "gelu_new");
}

TEST(ModelConfig, DefaultsAndExplicitInner) {
  const ModelConfig c = ModelConfig::from_json_text(config_with(kBase), "x");
  EXPECT_EQ(c.n_inner, 256);
  EXPECT_EQ(c.layer_norm_epsilon, 1e-5f);
  EXPECT_EQ(c.activation_function, "gelu_new");
  const ModelConfig d = ModelConfig::from_json_text(
      config_with(kBase + R"(, "n_inner": 100, "layer_norm_epsilon": 1e-6)"), "x");
  EXPECT_EQ(d.n_inner, 100);
  EXPECT_EQ(d.layer_norm_epsilon, 1e-6f);
}

TEST(ModelConfig, ActivationNames) {
  auto act = [](const std::string& a) {
    return ModelConfig::from_json_text(config_with(kBase + R"(, "activation_function": ")" + a + "\""),
                                       "x")
        .activation_function;
  };
  EXPECT_EQ(act("gelu_new"), "gelu_new");
  EXPECT_EQ(act("gelu_pytorch_tanh"), "gelu_new");
  EXPECT_EQ(act("gelu"), "gelu");
  expect_input_error(config_with(kBase + R"(, "activation_function": "relu")"),
                     {"unsupported activation \"relu\"", "gelu_new"}, "activation_function");
}

TEST(ModelConfig, HuggingFaceAliases) {
  const ModelConfig c = ModelConfig::from_json_text(
      R"({"model_type": "gpt2", "num_hidden_layers": 3, "hidden_size": 32,
          "num_attention_heads": 2, "max_position_embeddings": 16, "vocab_size": 10,
          "n_ctx": 99})",
      "x");
  EXPECT_EQ(c.n_layer, 3);
  EXPECT_EQ(c.n_embd, 32);
  EXPECT_EQ(c.n_head, 2);
  EXPECT_EQ(c.n_positions, 16);  // n_ctx is ignored
  expect_input_error(config_with(kBase + R"(, "hidden_size": 32)"), {"disagrees", "hidden_size"},
                     "n_embd");
  expect_input_error(
      R"({"model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 4, "n_ctx": 128,
          "vocab_size": 1000})",
      {"missing"}, "n_positions");
}

TEST(ModelConfig, ToJsonRoundTrips) {
  const ModelConfig c = ModelConfig::from_json_text(kGpt2Small, "x");
  const nlohmann::json j = c.to_json();
  EXPECT_EQ(j["layer_norm_epsilon"].dump(), "1e-05");
  EXPECT_EQ(j["architectures"][0], "GPT2LMHeadModel");
  const ModelConfig d = ModelConfig::from_json_text(j.dump(), "y");
  EXPECT_EQ(d.model_type, c.model_type);
  EXPECT_EQ(d.n_layer, c.n_layer);
  EXPECT_EQ(d.n_embd, c.n_embd);
  EXPECT_EQ(d.n_head, c.n_head);
  EXPECT_EQ(d.n_positions, c.n_positions);
  EXPECT_EQ(d.vocab_size, c.vocab_size);
  EXPECT_EQ(d.n_inner, c.n_inner);
  EXPECT_EQ(d.layer_norm_epsilon, c.layer_norm_epsilon);
  EXPECT_EQ(d.activation_function, c.activation_function);
}

TEST(ModelConfig, ReadsTheTinyTestCheckpoint) {
  const auto path = std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2/config.json";
  const ModelConfig c = ModelConfig::from_json_file(path);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_inner, 256);
}

TEST(ModelConfigErrors, UnsupportedModelType) {
  std::string text = kGpt2Small;
  text.replace(text.find("\"gpt2\""), 6, "\"mamba\"");
  expect_input_error(text,
                     {"my/config.json: model_type: ", "\"mamba\"",
                      "supported: \"gpt2\", \"llama\", \"mistral\", \"qwen2\", \"qwen3\", "
                      "\"gpt_neox\", \"gemma2\")"},
                     "model_type");
  expect_input_error(R"({"n_layer": 1})", {"missing"}, "model_type");
}

TEST(ModelConfigErrors, MissingNLayer) {
  std::string text = kGpt2Small;
  text.erase(text.find("\"n_layer\": 12,"), 14);
  expect_input_error(text, {"my/config.json: n_layer: missing"}, "n_layer");
}

TEST(ModelConfigErrors, EmbdNotDivisibleByHeads) {
  std::string text = kGpt2Small;
  text.replace(text.find("\"n_head\": 12"), 12, "\"n_head\": 7 ");
  expect_input_error(text, {"768 is not divisible by n_head = 7"}, "n_embd");
}

TEST(ModelConfigErrors, MalformedJson) {
  expect_input_error(R"({"model_type": "gpt2", "n_layer": )", {"my/config.json: malformed JSON"}, "");
  expect_input_error("[1, 2]", {"must be a JSON object"}, "");
}

TEST(ModelConfigErrors, NonPositiveOrIllTypedSizes) {
  const std::string no_heads =
      R"("model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_positions": 128, "vocab_size": 1000)";
  expect_input_error(config_with(no_heads + R"(, "n_head": 0)"), {"positive integer", "got 0"}, "n_head");
  expect_input_error(config_with(no_heads + R"(, "n_head": -4)"), {"got -4"}, "n_head");
  expect_input_error(config_with(no_heads + R"(, "n_head": "4")"), {"got \"4\""}, "n_head");
  expect_input_error(config_with(no_heads + R"(, "n_head": 4.5)"), {"got 4.5"}, "n_head");
  expect_input_error(config_with(no_heads + R"(, "n_head": 4294967300)"), {"positive integer"},
                     "n_head");
  expect_input_error(config_with(kBase + R"(, "n_inner": 0)"), {"got 0"}, "n_inner");
  expect_input_error(config_with(kBase + R"(, "layer_norm_epsilon": "small")"), {"got \"small\""},
                     "layer_norm_epsilon");
  expect_input_error(config_with(kBase + R"(, "scale_attn_by_inverse_layer_idx": true)"),
                     {"only false"}, "scale_attn_by_inverse_layer_idx");
}

TEST(ModelConfigErrors, MissingFile) {
  try {
    ModelConfig::from_json_file("/nonexistent/causeway/config.json");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "/nonexistent/causeway/config.json");
  }
}

}  // namespace
}  // namespace causeway
