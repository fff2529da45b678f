// Prompt-pair JSONL: parsing ids and texts, one test per kind of bad line (each message must
// name the file, the line and the key), write -> parse round trips, alignment checks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "data/prompt_pairs.h"
#include "cli_support.h"
#include "model/tokenizer.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path& kGpt2Tokenizer = fixtures::kGpt2TokenizerDir;

// The real GPT-2 tokenizer, or null when the shared folder does not have it.
const Tokenizer* gpt2() { return fixtures::gpt2_tokenizer(); }

#define REQUIRE_GPT2()                                                                  \
  if (!gpt2()) GTEST_SKIP() << "GPT-2 tokenizer not found: looked for vocab.json and "  \
                               "merges.txt in " << kGpt2Tokenizer

PairDataset parse(const std::string& text, const Tokenizer* tok = nullptr) {
  return parse_pairs_jsonl(text, "pairs.jsonl", tok);
}

// Parsing `text` must throw an InputError whose message contains every one of `parts`.
void expect_error(const std::string& text, const Tokenizer* tok,
                  const std::vector<std::string>& parts) {
  try {
    parse(text, tok);
    ADD_FAILURE() << "no error for: " << text;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

using fixtures::TempDir;

const std::string kOk = R"({"clean": [1, 2, 3], "corrupted": [1, 4, 3], "answer": 5, "wrong": 6})";

TEST(PromptPairs, ParsesTokenIdsWithoutATokenizer) {
  const PairDataset d = parse(
      kOk + "\n"
      "\n"
      R"({"clean": [7, 8], "corrupted": [7, 9], "answer": [5, 10], "wrong": 6, "answer_pos": -2, "note": "ignored"})"
      "\r\n");
  EXPECT_EQ(d.source, "pairs.jsonl");
  ASSERT_EQ(d.pairs.size(), 2u);
  const PromptPair& a = d.pairs[0];
  EXPECT_EQ(a.clean, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(a.corrupted, (std::vector<int32_t>{1, 4, 3}));
  EXPECT_EQ(a.answers, (std::vector<int32_t>{5}));
  EXPECT_EQ(a.wrongs, (std::vector<int32_t>{6}));
  EXPECT_EQ(a.answer_pos, -1);
  EXPECT_EQ(a.line, 1);
  EXPECT_TRUE(a.clean_text.empty());
  const PromptPair& b = d.pairs[1];
  EXPECT_EQ(b.answers, (std::vector<int32_t>{5, 10}));
  EXPECT_EQ(b.answer_pos, -2);
  EXPECT_EQ(b.line, 3);
  EXPECT_EQ(d.max_length(), 3);
  EXPECT_NO_THROW(d.require_aligned());
}

TEST(PromptPairs, TokenizesTextsAndSingleTokenAnswers) {
  REQUIRE_GPT2();
  const std::string clean = "When Mary and John went to the store, John gave a drink to";
  const std::string corrupted = "When Mary and John went to the store, Mary gave a drink to";
  const PairDataset d = parse(R"({"clean": ")" + clean + R"(", "corrupted": ")" + corrupted +
                                  R"(", "answer": " Mary", "wrong": [" John", 1757]})",
                              gpt2());
  ASSERT_EQ(d.pairs.size(), 1u);
  const PromptPair& p = d.pairs[0];
  EXPECT_EQ(p.clean_text, clean);
  EXPECT_EQ(p.corrupted_text, corrupted);
  EXPECT_EQ(p.clean, gpt2()->encode(clean));
  EXPECT_EQ(p.corrupted, gpt2()->encode(corrupted));
  EXPECT_EQ(p.answers, (std::vector<int32_t>{5335}));
  EXPECT_EQ(p.wrongs, (std::vector<int32_t>{1757, 1757}));
}

TEST(PromptPairs, TextIdsAreUsedWithoutATokenizerAndCheckedWithOne) {
  REQUIRE_GPT2();
  const std::vector<int32_t> ids = gpt2()->encode("Hello world");
  std::string list;
  for (int32_t id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  const std::string line = R"({"clean": "Hello world", "clean_ids": [)" + list +
                           R"(], "corrupted": [1, 2], "answer": 3, "wrong": 4})";
  EXPECT_EQ(parse(line).pairs[0].clean, ids);
  EXPECT_EQ(parse(line, gpt2()).pairs[0].clean, ids);
  expect_error(R"({"clean": "Hello world", "clean_ids": [1, 2], "corrupted": [1, 2], "answer": 3, "wrong": 4})",
               gpt2(), {"pairs.jsonl: line 1: clean_ids: ", "encodes to"});
}

TEST(PromptPairs, MalformedJson) {
  expect_error(kOk + "\n" + R"({"clean": [1, 2)", nullptr,
               {"pairs.jsonl: line 2: ", "malformed JSON"});
  expect_error(kOk + " x", nullptr, {"pairs.jsonl: line 1: ", "malformed JSON"});
}

TEST(PromptPairs, LineThatIsNotAnObject) {
  expect_error("[1, 2]", nullptr, {"pairs.jsonl: line 1: ", "expected a JSON object, got array"});
}

TEST(PromptPairs, MissingKey) {
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": 5})", nullptr,
               {"pairs.jsonl: line 1: wrong: missing"});
  expect_error("\n\n" R"({"corrupted": [1], "answer": 5, "wrong": 6})", nullptr,
               {"pairs.jsonl: line 3: clean: missing"});
}

TEST(PromptPairs, WrongType) {
  expect_error(R"({"clean": 5, "corrupted": [1], "answer": 5, "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: clean: expected a string or an array of token ids, got number 5"});
  expect_error(R"({"clean": [1, "x"], "corrupted": [1, 2], "answer": 5, "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: clean[1]: expected an integer token id, got string"});
  expect_error(R"({"clean": [1, 2.5], "corrupted": [1, 2], "answer": 5, "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: clean[1]: expected an integer token id"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": true, "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: answer: expected a single-token string or a token id, got boolean"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": 5, "wrong": [6, [7]]})", nullptr,
               {"pairs.jsonl: line 1: wrong[1]: expected a single-token string or a token id"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": 5, "wrong": 6, "answer_pos": "last"})",
               nullptr, {"pairs.jsonl: line 1: answer_pos: expected an integer"});
}

TEST(PromptPairs, EmptyPromptOrAnswer) {
  REQUIRE_GPT2();
  expect_error(R"({"clean": "", "corrupted": "a", "answer": 5, "wrong": 6})", gpt2(),
               {"pairs.jsonl: line 1: clean: empty prompt"});
  expect_error(R"({"clean": [1], "corrupted": [], "answer": 5, "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: corrupted: empty prompt"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": [], "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: answer: empty array"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": 5, "wrong": ""})", gpt2(),
               {"pairs.jsonl: line 1: wrong: empty string"});
}

TEST(PromptPairs, AnswerThatIsNotOneToken) {
  REQUIRE_GPT2();
  expect_error(kOk + "\n" + kOk + "\n" +
                   R"({"clean": [1], "corrupted": [1], "answer": " Mary Ann", "wrong": " John"})",
               gpt2(),
               {R"(pairs.jsonl: line 3: answer: " Mary Ann" is 2 tokens; answers must be single tokens)"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": " Mary", "wrong": [" John", " Mary Ann"]})",
               gpt2(), {"pairs.jsonl: line 1: wrong[1]: ", "is 2 tokens"});
}

TEST(PromptPairs, AnswerThatIsAlsoWrong) {
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": [5, 6], "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: wrong: token 6 is also an answer"});
}

TEST(PromptPairs, TokenIdOutOfRange) {
  REQUIRE_GPT2();
  expect_error(R"({"clean": [1, 50257], "corrupted": [1, 2], "answer": 5, "wrong": 6})", gpt2(),
               {"pairs.jsonl: line 1: clean[1]: token id 50257 is outside the tokenizer's "
                "vocabulary (0..50256)"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": 99999, "wrong": 6})", gpt2(),
               {"pairs.jsonl: line 1: answer: token id 99999 is outside"});
  expect_error(R"({"clean": [1], "corrupted": [-3], "answer": 5, "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: corrupted[0]: token id -3 is negative"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": 5, "wrong": 99999999999})", nullptr,
               {"pairs.jsonl: line 1: wrong: token id 99999999999 is too large"});
}

TEST(PromptPairs, AnswerPosOutsideThePrompt) {
  const std::string head = R"({"clean": [1, 2, 3], "corrupted": [1, 4, 3], "answer": 5, "wrong": 6, "answer_pos": )";
  EXPECT_EQ(parse(head + "2}").pairs[0].answer_pos, 2);
  EXPECT_EQ(parse(head + "-3}").pairs[0].answer_pos, -3);
  expect_error(head + "3}", nullptr,
               {"pairs.jsonl: line 1: answer_pos: 3 is outside the prompt", "valid: -3..2"});
  expect_error(head + "-4}", nullptr, {"pairs.jsonl: line 1: answer_pos: -4 is outside the prompt"});
}

TEST(PromptPairs, TextWithoutATokenizer) {
  expect_error(R"({"clean": "When Mary", "corrupted": [1], "answer": 5, "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: clean: is text but no tokenizer"});
  expect_error(R"({"clean": [1], "corrupted": [1], "answer": " Mary", "wrong": 6})", nullptr,
               {"pairs.jsonl: line 1: answer: ", "no tokenizer"});
}

TEST(PromptPairs, EmptyFileHasNoPairs) {
  expect_error("", nullptr, {"pairs.jsonl: no pairs"});
  expect_error("\n  \n\r\n", nullptr, {"pairs.jsonl: no pairs"});
}

TEST(PromptPairs, MissingFile) {
  try {
    load_pairs_jsonl("/nonexistent/pairs.jsonl", nullptr);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/pairs.jsonl: no such file");
  }
}

TEST(PromptPairs, RequireAlignedNamesTheLine) {
  const PairDataset d =
      parse(kOk + "\n" + R"({"clean": [1, 2, 3], "corrupted": [1, 2], "answer": 5, "wrong": 6})");
  EXPECT_EQ(d.max_length(), 3);
  try {
    d.require_aligned();
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("pairs.jsonl: line 2: clean has 3 tokens but corrupted has 2"),
              std::string::npos)
        << e.what();
  }
  PairDataset generated;
  generated.source = "ioi generator";
  generated.pairs.push_back(d.pairs[1]);
  generated.pairs[0].line = 0;
  try {
    generated.require_aligned();
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ioi generator: pair 1: "), std::string::npos) << e.what();
  }
}

void expect_same_pairs(const std::vector<PromptPair>& a, const std::vector<PromptPair>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].clean_text, b[i].clean_text) << i;
    EXPECT_EQ(a[i].corrupted_text, b[i].corrupted_text) << i;
    EXPECT_EQ(a[i].clean, b[i].clean) << i;
    EXPECT_EQ(a[i].corrupted, b[i].corrupted) << i;
    EXPECT_EQ(a[i].answers, b[i].answers) << i;
    EXPECT_EQ(a[i].wrongs, b[i].wrongs) << i;
    EXPECT_EQ(a[i].answer_pos, b[i].answer_pos) << i;
  }
}

TEST(PromptPairs, WriteThenParseRoundTrips) {
  std::vector<PromptPair> pairs(2);
  pairs[0].clean = {1, 2, 3};
  pairs[0].corrupted = {1, 4, 3};
  pairs[0].answers = {5};
  pairs[0].wrongs = {6, 7};
  pairs[1].clean = {9, 8};
  pairs[1].corrupted = {9, 7};
  pairs[1].answers = {11, 12};
  pairs[1].wrongs = {13};
  pairs[1].answer_pos = -2;
  if (gpt2()) {
    PromptPair t;
    t.clean_text = "When Mary and John went to the store, John gave a drink to";
    t.corrupted_text = "When Mary and John went to the store, Mary gave a drink to";
    t.clean = gpt2()->encode(t.clean_text);
    t.corrupted = gpt2()->encode(t.corrupted_text);
    t.answers = {5335};
    t.wrongs = {1757};
    t.answer_pos = 3;
    pairs.push_back(t);
  }
  TempDir dir;
  const fs::path file = dir.path() / "pairs.jsonl";
  write_pairs_jsonl(file, pairs);
  EXPECT_FALSE(fs::exists(dir.path() / "pairs.jsonl.tmp"));
  // Text pairs carry their ids, so the file reads back with or without the tokenizer.
  const PairDataset plain = load_pairs_jsonl(file, nullptr);
  EXPECT_EQ(plain.source, file.string());
  expect_same_pairs(plain.pairs, pairs);
  for (size_t i = 0; i < plain.pairs.size(); ++i) EXPECT_EQ(plain.pairs[i].line, static_cast<int>(i + 1));
  if (gpt2()) expect_same_pairs(load_pairs_jsonl(file, gpt2()).pairs, pairs);
}

TEST(PromptPairs, WriteToAMissingFolderFails) {
  std::vector<PromptPair> pairs(1);
  pairs[0].clean = pairs[0].corrupted = {1};
  pairs[0].answers = {2};
  pairs[0].wrongs = {3};
  EXPECT_THROW(write_pairs_jsonl("/nonexistent/dir/pairs.jsonl", pairs), InputError);
}

}  // namespace
}  // namespace causeway
