// The tokenizers of every model family (tests/data/families/F/tokenizer.json +
// tokenizer_config.json, trained by tests/reference/family_tokenizers.py) against the ids the
// `tokenizers` library gave on the hard strings and prompts of F-goldens.json, with and without
// BOS; decoding as HF's decoder; and the tokenizer.json / tokenizer_config.json inputs causeway
// refuses, each error naming the file and the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/run_config.h"
#include "cli_support.h"
#include "core/error.h"
#include "data/prompt_pairs.h"
#include "model/tokenizer.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;

const fs::path kFamilies = CAUSEWAY_SOURCE_DIR "/tests/data/families";
const std::vector<std::string> kFamilyNames = {"gemma2", "gpt_neox", "llama2", "llama3",
                                               "mistral", "qwen2",   "qwen3"};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json goldens_of(const std::string& family) {
  return json::parse(read_all(kFamilies / (family + "-goldens.json")));
}

json family_json(const std::string& family) {
  return json::parse(read_all(kFamilies / family / "tokenizer.json"));
}

// Every folder with a tokenizer is in kFamilyNames, so a new family cannot go untested.
TEST(FamilyTokenizers, EveryFamilyFolderIsTested) {
  std::set<std::string> found;
  for (const auto& e : fs::directory_iterator(kFamilies))
    if (e.is_directory() && fs::exists(e.path() / "tokenizer.json")) found.insert(e.path().filename());
  EXPECT_EQ(found, std::set<std::string>(kFamilyNames.begin(), kFamilyNames.end()));
}

class FamilyTokenizer : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    goldens_ = goldens_of(GetParam());
    tok_.emplace(Tokenizer::from_model_dir(kFamilies / GetParam()));
  }
  const Tokenizer& tok() const { return *tok_; }
  json goldens_;
  std::optional<Tokenizer> tok_;
};

TEST_P(FamilyTokenizer, BosAsTheTokenizerConfigSays) {
  const json& info = goldens_["tokenizer"];
  EXPECT_EQ(tok().prepends_bos(), info["adds_bos"].get<bool>());
  EXPECT_EQ(tok().vocab_size(), info["vocab_size"].get<int32_t>());
  const json& map = info["special_map"];
  if (map.contains("bos_token") && !map["bos_token"].is_null())
    EXPECT_EQ(tok().bos_id(), info["specials"][map["bos_token"].get<std::string>()].get<int32_t>());
  else
    EXPECT_EQ(tok().bos_id(), std::nullopt);
  if (map.contains("eos_token") && !map["eos_token"].is_null())
    EXPECT_EQ(tok().eos_id(), info["specials"][map["eos_token"].get<std::string>()].get<int32_t>());
}

TEST_P(FamilyTokenizer, HardStringsEqualTokenizersLibrary) {
  const bool adds_bos = goldens_["tokenizer"]["adds_bos"].get<bool>();
  ASSERT_GE(goldens_["hard_strings"].size(), 10u);
  for (const json& h : goldens_["hard_strings"]) {
    const std::string text = h["text"].get<std::string>();
    SCOPED_TRACE(h["text"].dump());
    const Ids ids = h["ids"].get<Ids>(), plain = h["ids_no_special"].get<Ids>();
    EXPECT_EQ(tok().encode(text), plain);
    EXPECT_EQ(tok().encode_for_model(text), ids);
    if (adds_bos) {
      EXPECT_EQ(tok().encode_for_model(text, false), plain);
      EXPECT_EQ(ids.front(), *tok().bos_id());
    } else {
      EXPECT_EQ(ids, plain);
    }
    if (tok().bos_id()) {
      Ids with_bos = plain;
      with_bos.insert(with_bos.begin(), *tok().bos_id());
      EXPECT_EQ(tok().encode_for_model(text, true), with_bos);
    }
    EXPECT_EQ(tok().decode(ids, true), h["decoded"].get<std::string>());
  }
}

TEST_P(FamilyTokenizer, PromptsEqualTokenizersLibraryAndRoundTrip) {
  for (const json& p : goldens_["prompts"]) {
    const std::string text = p["text"].get<std::string>();
    SCOPED_TRACE(text);
    const Ids ids = p["ids"].get<Ids>();
    EXPECT_EQ(tok().encode_for_model(text), ids);
    EXPECT_EQ(ids.size(), p["length"].get<size_t>());
    EXPECT_EQ(tok().decode(ids, true), text);
    // One token's text is its decoded form: byte-level "Ġto" and SentencePiece "▁to" are " to".
    const std::vector<std::string> tokens = p["tokens"].get<std::vector<std::string>>();
    for (size_t i = 0; i < ids.size(); ++i) {
      std::string expect = tokens[i];
      for (const std::string marker : {"\xC4\xA0", "\xE2\x96\x81"})
        for (size_t at = expect.find(marker); at != std::string::npos; at = expect.find(marker))
          expect.replace(at, marker.size(), " ");
      EXPECT_EQ(tok().token_text(ids[i]), expect) << "token " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyTokenizer, ::testing::ValuesIn(kFamilyNames),
                         [](const auto& info) { return info.param; });

// SentencePiece byte fallback on a character the vocabulary lacks, and the pieces Llama 2's
// Metaspace makes (one piece, "▁" only before the text's start, not after an added token).
TEST(FamilyTokenizers, ByteFallbackAndMetaspacePieces) {
  const Tokenizer tok = Tokenizer::from_model_dir(kFamilies / "llama2");
  EXPECT_EQ(tok.encode("\xE6\x97\xA5"), (Ids{326, 233, 154, 168}));  // "▁" <0xE6> <0x97> <0xA5>
  EXPECT_EQ(tok.token_text(233), "\xE6");
  // Text lookup (answer tokens) finds the vocabulary's "a" and "▁a", not the fallback <0x61>.
  EXPECT_EQ(tok.token_text(3 + 0x61), "a");
  EXPECT_EQ(tok.token_id("a"), 294);
  EXPECT_EQ(tok.token_id(" a"), 329);
  EXPECT_EQ(tok.token_id("\xE6"), 233);
  EXPECT_EQ(tok.pretokenize("a b"), std::vector<std::string>{"\xE2\x96\x81" "a\xE2\x96\x81" "b"});
  EXPECT_EQ(tok.pretokenize("<s>a b"),
            (std::vector<std::string>{"<s>", "a\xE2\x96\x81" "b"}));
  const Tokenizer llama3 = Tokenizer::from_model_dir(kFamilies / "llama3");
  // Llama 3's regex: digits in runs of at most 3, a space before letters kept with them.
  EXPECT_EQ(llama3.pretokenize("ab 12345"), (std::vector<std::string>{"ab", " ", "123", "45"}));
  const Tokenizer qwen = Tokenizer::from_model_dir(kFamilies / "qwen2");
  EXPECT_EQ(qwen.pretokenize("ab 123"), (std::vector<std::string>{"ab", " ", "1", "2", "3"}));
}

// Older Llama 2 files spell the same tokenizer as normalizer Sequence[Prepend("▁"),
// Replace(" ", "▁")], no pre-tokenizer, a Metaspace decoder: the same ids and text wherever the
// two agree (text that does not start with a space and has no added token inside).
TEST(FamilyTokenizers, LegacyLlama2NormalizerFormGivesTheSameIds) {
  json t = family_json("llama2");
  const std::string sp = "\xE2\x96\x81";
  t["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      {{{"type", "Prepend"}, {"prepend", sp}},
                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}}}};
  t["pre_tokenizer"] = nullptr;
  t["decoder"] = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "Metaspace"}, {"replacement", sp}, {"prepend_scheme", "always"}, {"split", false}},
                    {{"type", "ByteFallback"}},
                    {{"type", "Fuse"}}}}};
  const Tokenizer legacy = Tokenizer::from_tokenizer_json_string(t.dump());
  int compared = 0;
  const json goldens = goldens_of("llama2");
  for (const json& h : goldens["hard_strings"]) {
    const std::string text = h["text"].get<std::string>();
    if (text.empty() || text[0] == ' ' || text.find('<') != std::string::npos) continue;
    SCOPED_TRACE(text);
    const Ids plain = h["ids_no_special"].get<Ids>();
    EXPECT_EQ(legacy.encode(text), plain);
    EXPECT_EQ(legacy.decode(plain), h["decoded"].get<std::string>());
    ++compared;
  }
  EXPECT_GE(compared, 8);
}

// Split behaviours as HF's split_off_matches gives them (Gemma's released file splits on " "
// with MergedWithPrevious), on "a  b c" with the pattern " ".
TEST(FamilyTokenizers, SplitBehaviours) {
  using Pieces = std::vector<std::string>;
  auto pieces = [](const std::string& behavior, bool invert = false) {
    json t = family_json("llama3");
    t["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", behavior}, {"invert", invert}};
    return Tokenizer::from_tokenizer_json_string(t.dump()).pretokenize("a  b c");
  };
  EXPECT_EQ(pieces("Isolated"), (Pieces{"a", " ", " ", "b", " ", "c"}));
  EXPECT_EQ(pieces("Removed"), (Pieces{"a", "b", "c"}));
  EXPECT_EQ(pieces("MergedWithPrevious"), (Pieces{"a ", " ", "b ", "c"}));
  EXPECT_EQ(pieces("MergedWithNext"), (Pieces{"a", " ", " b", " c"}));
  EXPECT_EQ(pieces("Contiguous"), (Pieces{"a", "  ", "b", " ", "c"}));
  EXPECT_EQ(pieces("Removed", true), (Pieces{" ", " ", " "}));
}

// Qwen2's released tokenizer.json has an NFC normalizer: decomposed text encodes as composed.
TEST(FamilyTokenizers, NfcNormalizerComposes) {
  json t = family_json("qwen2");
  t["normalizer"] = {{"type", "NFC"}};
  const Tokenizer with_nfc = Tokenizer::from_tokenizer_json_string(t.dump());
  const Tokenizer plain = Tokenizer::from_model_dir(kFamilies / "qwen2");
  const std::string composed = "caf\xC3\xA9 na\xC3\xAFve", decomposed = "cafe\xCC\x81 nai\xCC\x88ve";
  EXPECT_NE(plain.encode(decomposed), plain.encode(composed));
  EXPECT_EQ(with_nfc.encode(decomposed), plain.encode(composed));
  EXPECT_EQ(with_nfc.encode(composed), plain.encode(composed));
}

// ---------------------------------------------------------------------------------------------
// Bad inputs

std::string error_of(const json& tokenizer_json, const std::string& config = "") {
  try {
    Tokenizer::from_tokenizer_json_string(tokenizer_json.dump(), "tokenizer.json", config,
                                          "tokenizer_config.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(FamilyTokenizersBadInput, UnigramModelIsRejected) {
  json t = family_json("llama2");
  t["model"]["type"] = "Unigram";
  EXPECT_EQ(error_of(t), "tokenizer.json: model.type: \"Unigram\" is not supported (BPE only)");
}

TEST(FamilyTokenizersBadInput, UnsupportedPreTokenizerNamesTheStep) {
  json t = family_json("llama3");
  t["pre_tokenizer"]["pretokenizers"][1]["type"] = "Whitespace";
  EXPECT_EQ(error_of(t),
            "tokenizer.json: pre_tokenizer.pretokenizers[1].type: \"Whitespace\" is not supported "
            "(ByteLevel, Split, Metaspace, Sequence)");
  t = family_json("llama3");
  t["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  EXPECT_EQ(error_of(t), "tokenizer.json: pre_tokenizer.pretokenizers[0].behavior: \"Sideways\" is "
                         "not supported (Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous)");
  t = family_json("llama3");
  t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  EXPECT_NE(error_of(t).find("tokenizer.json: pre_tokenizer.pretokenizers[0].pattern: the regex does "
                             "not compile"),
            std::string::npos)
      << error_of(t);
}

TEST(FamilyTokenizersBadInput, UnsupportedNormalizerDecoderAndPostProcessor) {
  json t = family_json("gemma2");
  t["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKC"}}}}};
  EXPECT_EQ(error_of(t), "tokenizer.json: normalizer.normalizers[0].type: \"NFKC\" is not supported "
                         "(NFC, Prepend, Replace, Sequence)");
  t = family_json("gemma2");
  t["decoder"] = {{"type", "WordPiece"}};
  EXPECT_NE(error_of(t).find("tokenizer.json: decoder.type: \"WordPiece\" is not supported"),
            std::string::npos);
  t = family_json("gemma2");
  t["post_processor"] = {{"type", "BertProcessing"}};
  EXPECT_NE(error_of(t).find("tokenizer.json: post_processor.type: \"BertProcessing\""), std::string::npos);
}

// The CLI prints the refusal as one line naming the file and the field, and exits 2.
TEST(FamilyTokenizersBadInput, CliExitsTwoNamingFileAndField) {
  fixtures::TempDir dir("tok");
  const fs::path tiny = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2";
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(tiny / f, dir.path() / f);
  json t = family_json("llama3");
  t["model"]["type"] = "Unigram";
  fixtures::write_text(dir.path() / "tokenizer.json", t.dump());
  const fixtures::CliResult r = fixtures::run_causeway("logits --model " + dir.path().string() + " --text hi");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output, "causeway: error: " + (dir.path() / "tokenizer.json").string() +
                          ": model.type: \"Unigram\" is not supported (BPE only)\n");
}

TEST(FamilyTokenizersBadInput, BosWantedButNone) {
  const std::string qwen_config = read_all(kFamilies / "qwen2" / "tokenizer_config.json");
  json config = json::parse(qwen_config);
  config["add_bos_token"] = true;
  EXPECT_EQ(error_of(family_json("qwen2"), config.dump()),
            "tokenizer_config.json: add_bos_token: is true but the tokenizer has no BOS token (bos_token)");
  config = json::parse(qwen_config);
  config["bos_token"] = "<nope>";
  EXPECT_EQ(error_of(family_json("qwen2"), config.dump()),
            "tokenizer_config.json: bos_token: \"<nope>\" is not a token of the tokenizer");
  config = json::parse(qwen_config);
  config["add_bos_token"] = "yes";
  EXPECT_EQ(error_of(family_json("qwen2"), config.dump()),
            "tokenizer_config.json: add_bos_token: must be true or false, got \"yes\"");
  const Tokenizer qwen = Tokenizer::from_model_dir(kFamilies / "qwen2");
  EXPECT_FALSE(qwen.prepends_bos());
  EXPECT_THROW(qwen.encode_for_model("hi", true), InputError);
  EXPECT_EQ(qwen.encode_for_model("hi", false), qwen.encode("hi"));
}

// add_bos_token in tokenizer_config.json overrides the post_processor template, both ways.
TEST(FamilyTokenizers, ConfigOverridesTemplateBos) {
  const std::string text = read_all(kFamilies / "llama2" / "tokenizer.json");
  json config = json::parse(read_all(kFamilies / "llama2" / "tokenizer_config.json"));
  config["add_bos_token"] = false;
  const Tokenizer off = Tokenizer::from_tokenizer_json_string(text, "tokenizer.json", config.dump());
  EXPECT_FALSE(off.prepends_bos());
  EXPECT_EQ(off.bos_id(), 1);
  EXPECT_EQ(off.encode_for_model("a"), off.encode("a"));
  const Tokenizer no_config = Tokenizer::from_tokenizer_json_string(text);
  EXPECT_TRUE(no_config.prepends_bos());
  EXPECT_EQ(no_config.encode_for_model("a").front(), 1);
}

// ---------------------------------------------------------------------------------------------
// prepend_bos: in run configs, on the command line, and in the pairs a run reads

std::string run_config(const std::string& model_extra) {
  return "[model]\npath = \"m\"\n" + model_extra +
         "[data]\nfile = \"pairs.jsonl\"\n[output]\npath = \"out.h5\"\n"
         "[[experiment]]\nname = \"e\"\nsweep = \"resid_pre\"\n";
}

TEST(PrependBos, RunConfigKey) {
  EXPECT_EQ(RunConfig::parse(run_config(""), "c.toml").prepend_bos, std::nullopt);
  EXPECT_EQ(RunConfig::parse(run_config("prepend_bos = true\n"), "c.toml").prepend_bos, true);
  EXPECT_EQ(RunConfig::parse(run_config("prepend_bos = false\n"), "c.toml").prepend_bos, false);
  try {
    RunConfig::parse(run_config("prepend_bos = \"yes\"\n"), "c.toml");
    ADD_FAILURE() << "accepted a string";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.prepend_bos"), std::string::npos) << e.what();
  }
}

// Text prompts in a pairs file get BOS exactly when the tokenizer (or its override) says so.
TEST(PrependBos, PairsFileTextFollowsTheTokenizer) {
  const Tokenizer llama = Tokenizer::from_model_dir(kFamilies / "llama2");
  const std::string line = R"({"clean": "the store", "corrupted": "the stare", "answer": 3, "wrong": 4})";
  const PairDataset with = parse_pairs_jsonl(line, "p.jsonl", &llama);
  EXPECT_EQ(with.pairs[0].clean, llama.encode_for_model("the store", true));
  EXPECT_EQ(with.pairs[0].clean.front(), 1);
  const Tokenizer off = llama.with_prepend_bos(false);
  const PairDataset without = parse_pairs_jsonl(line, "p.jsonl", &off);
  EXPECT_EQ(without.pairs[0].clean, llama.encode("the store"));
  const Tokenizer qwen = Tokenizer::from_model_dir(kFamilies / "qwen2");
  EXPECT_EQ(parse_pairs_jsonl(line, "p.jsonl", &qwen).pairs[0].clean, qwen.encode("the store"));
}

// GPT-2 keeps today's default (no BOS); --prepend-bos puts <|endoftext|> first.
TEST(PrependBos, LogitsCommandFlags) {
  const std::string base = "logits --model " + (fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2").string() +
                           " --text 'Hello world' --top 1";
  const fixtures::CliResult plain = fixtures::run_causeway(base);
  ASSERT_EQ(plain.code, 0) << plain.output;
  EXPECT_NE(plain.output.find("input: 4 tokens: 39:'H'"), std::string::npos) << plain.output;
  const fixtures::CliResult bos = fixtures::run_causeway(base + " --prepend-bos");
  ASSERT_EQ(bos.code, 0) << bos.output;
  EXPECT_NE(bos.output.find("input: 5 tokens: 999:'<|endoftext|>' 39:'H'"), std::string::npos) << bos.output;
  const fixtures::CliResult no = fixtures::run_causeway(base + " --no-prepend-bos");
  EXPECT_NE(no.output.find("input: 4 tokens: 39:'H'"), std::string::npos) << no.output;
}

}  // namespace
}  // namespace causeway
