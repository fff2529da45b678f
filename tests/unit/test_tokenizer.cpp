// The GPT-2 tokenizer against Hugging Face: golden ids from tests/reference/
// make_tokenizer_goldens.py (GPT2Tokenizer on the real GPT-2 files in shared/), the regex's
// character classes for every code point run, tokenizer.json loading, and one test per kind of
// bad file, each checking that the error names the file and the line or field at fault.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/tokenizer.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kGpt2Dir = CAUSEWAY_SHARED_DIR "/data/gpt2-tokenizer";
const fs::path kGoldens = CAUSEWAY_SOURCE_DIR "/tests/data/tokenizer_cases.json";
const fs::path kTinyDir = CAUSEWAY_SOURCE_DIR "/tests/data/tiny-gpt2";

#define SKIP_WITHOUT_GPT2()                                                              \
  if (!fs::exists(kGpt2Dir / "vocab.json") || !fs::exists(kGpt2Dir / "merges.txt"))      \
  GTEST_SKIP() << "shared/ not found at " << kGpt2Dir                                    \
               << " (needs shared/data/gpt2-tokenizer/{vocab.json,merges.txt})"

// A fresh folder under the system temp dir, removed with everything in it at scope end.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("causeway-tokenizer-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return path_ / name;
  }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Tokenizer& gpt2() {
  static const Tokenizer tok = Tokenizer::from_files(kGpt2Dir / "vocab.json", kGpt2Dir / "merges.txt");
  return tok;
}

const json& goldens() {
  static const json j = json::parse(slurp(kGoldens));
  return j;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// The golden case's input bytes: its text, or raw (possibly invalid UTF-8) bytes.
std::string case_input(const json& c) {
  return c.contains("text") ? c["text"].get<std::string>() : from_hex(c["bytes_hex"].get<std::string>());
}

std::string utf8(char32_t cp) {
  std::string s;
  auto put = [&](uint32_t v) { s += static_cast<char>(v); };
  if (cp < 0x80) {
    put(cp);
  } else if (cp < 0x800) {
    put(0xC0 | (cp >> 6)), put(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    put(0xE0 | (cp >> 12)), put(0x80 | ((cp >> 6) & 0x3F)), put(0x80 | (cp & 0x3F));
  } else {
    put(0xF0 | (cp >> 18)), put(0x80 | ((cp >> 12) & 0x3F)), put(0x80 | ((cp >> 6) & 0x3F)),
        put(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string printable(const std::string& s) { return json(s).dump(-1, ' ', true, json::error_handler_t::replace); }

// The shared GPT-2 files as a tokenizer.json, the way `tokenizers` writes GPT-2's.
json gpt2_tokenizer_json(bool merges_as_pairs) {
  json merges = json::array();
  std::istringstream lines(slurp(kGpt2Dir / "merges.txt"));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.starts_with("#version")) continue;
    const size_t sp = line.find(' ');
    if (merges_as_pairs)
      merges.push_back({line.substr(0, sp), line.substr(sp + 1)});
    else
      merges.push_back(line);
  }
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {{{"id", 50256}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
         {"rstrip", false}, {"normalized", false}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", json::parse(slurp(kGpt2Dir / "vocab.json"))}, {"merges", merges}}}};
}

TEST(TokenizerGpt2, KnownIds) {
  SKIP_WITHOUT_GPT2();
  const Tokenizer& tok = gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.encode(" the"), std::vector<int32_t>{262});
  EXPECT_EQ(tok.encode(" Mary"), std::vector<int32_t>{5335});
  EXPECT_EQ(tok.encode(" John"), std::vector<int32_t>{1757});
  EXPECT_EQ(tok.token_id(" Mary"), 5335);
  EXPECT_EQ(tok.token_id(" the"), 262);
  EXPECT_EQ(tok.token_text(1757), " John");
  EXPECT_EQ(tok.token_id(" Marys"), std::nullopt);
  EXPECT_EQ(tok.encode(""), std::vector<int32_t>{});
}

TEST(TokenizerGpt2, HardStrings) {
  SKIP_WITHOUT_GPT2();
  const json& cases = goldens()["cases"];
  ASSERT_GE(cases.size(), 40u);
  int failures = 0;
  for (const json& c : cases) {
    const std::string input = case_input(c);
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = gpt2().encode(input);
    if (got != want && ++failures <= 10)
      ADD_FAILURE() << "encode(" << printable(input) << ")\n  got  " << json(got) << "\n  want " << json(want);
  }
  EXPECT_EQ(failures, 0) << "of " << cases.size() << " golden cases";
}

TEST(TokenizerGpt2, DecodeRoundTrips) {
  SKIP_WITHOUT_GPT2();
  for (const json& c : goldens()["cases"]) {
    if (!c.contains("text")) continue;  // invalid UTF-8 comes back with U+FFFD, like HF
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(gpt2().decode(gpt2().encode(text)), text) << printable(text);
  }
}

TEST(TokenizerGpt2, InvalidUtf8BecomesReplacementCharacter) {
  SKIP_WITHOUT_GPT2();
  const Tokenizer& tok = gpt2();
  EXPECT_EQ(tok.encode("abc\xff"), tok.encode("abc\xEF\xBF\xBD"));
  EXPECT_EQ(tok.decode(tok.encode("a\xC3")), "a\xEF\xBF\xBD");
  EXPECT_NO_THROW(tok.encode(std::string("\0\xF0\x9F\x98\0\xED\xA0\x80", 8)));
}

TEST(TokenizerGpt2, TokenTextAndTokenIdRoundTrip) {
  SKIP_WITHOUT_GPT2();
  const Tokenizer& tok = gpt2();
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string text = tok.token_text(id);
    ASSERT_EQ(tok.token_id(text), id) << "id " << id << " text " << printable(text);
  }
  EXPECT_EQ(tok.token_text(50256), "<|endoftext|>");
}

TEST(TokenizerGpt2, EndOfTextIsOneToken) {
  SKIP_WITHOUT_GPT2();
  const Tokenizer& tok = gpt2();
  EXPECT_EQ(tok.eos_id(), 50256);
  EXPECT_EQ(tok.encode("<|endoftext|>"), std::vector<int32_t>{50256});
  EXPECT_EQ(tok.encode("a<|endoftext|>b"), (std::vector<int32_t>{64, 50256, 65}));
  EXPECT_EQ(tok.pretokenize("x <|endoftext|> y"),
            (std::vector<std::string>{"x", " ", "<|endoftext|>", " y"}));
}

TEST(TokenizerGpt2, InvalidIdsThrowInputError) {
  SKIP_WITHOUT_GPT2();
  const Tokenizer& tok = gpt2();
  const std::vector<int32_t> bad_high{15496, 50257}, bad_low{-1};
  EXPECT_THROW(tok.decode(bad_high), InputError);
  EXPECT_THROW(tok.decode(bad_low), InputError);
  EXPECT_THROW(tok.token_text(1 << 30), InputError);
}

// Each run of code points HF's regex puts in one class (letter, number, white space, other)
// is checked at both ends and the middle, through the piece a probe character joins. This is
// what catches a system PCRE2 with other Unicode tables than HF's.
TEST(TokenizerGpt2, CodepointClasses) {
  SKIP_WITHOUT_GPT2();
  const Tokenizer& tok = gpt2();
  auto class_of = [&](char32_t cp) {
    const std::string c = utf8(cp);
    for (const auto& [probe, cls] : {std::pair{"a", "L"}, {"1", "N"}, {"!", "O"}, {" ", "S"}})
      if (tok.pretokenize(probe + c).size() == 1) return std::string(cls);
    return std::string("?");
  };
  int checked = 0, failures = 0;
  for (const json& run : goldens()["codepoint_classes"]) {
    const auto first = run[0].get<char32_t>(), last = run[1].get<char32_t>();
    const std::string want = run[2].get<std::string>();
    for (char32_t cp : {first, char32_t(first + (last - first) / 2), last}) {
      ++checked;
      const std::string got = class_of(cp);
      if (got != want && ++failures <= 10)
        ADD_FAILURE() << "U+" << std::hex << std::uppercase << uint32_t(cp) << ": class " << got << ", HF " << want;
    }
  }
  EXPECT_EQ(failures, 0) << "of " << checked << " code points";
  EXPECT_GT(checked, 3000);
}

TEST(TokenizerGpt2, EncodesOneMegabyteQuickly) {
  SKIP_WITHOUT_GPT2();
  const json& cases = goldens()["cases"];
  std::string text;
  while (text.size() < (1 << 20))
    for (const json& c : cases)
      if (c.contains("text")) text += c["text"].get<std::string>() + " ";
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = gpt2().encode(text);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(gpt2().decode(ids), text);
  std::cout << "encoded " << text.size() << " bytes into " << ids.size() << " tokens in " << s << " s\n";
#ifdef NDEBUG
  EXPECT_LT(s, 1.0);
#endif
}

TEST(TokenizerGpt2, PathologicalInputsStayLinear) {
  SKIP_WITHOUT_GPT2();
  for (std::string unit : {"a", " ", "!", "1", "\n ", " a", "\xE4\xB8\xAD"}) {
    std::string text;
    while (text.size() < (256 << 10)) text += unit;
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = gpt2().encode(text);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(gpt2().decode(ids), text);
    std::cout << printable(unit) << " x " << text.size() / unit.size() << ": " << s << " s\n";
#ifdef NDEBUG
    EXPECT_LT(s, 1.0) << "unit " << printable(unit);
#endif
  }
}

TEST(TokenizerGpt2, EncodeIsThreadSafe) {
  SKIP_WITHOUT_GPT2();
  const json& cases = goldens()["cases"];
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int rep = 0; rep < 5; ++rep)
        for (const json& c : cases)
          if (gpt2().encode(case_input(c)) != c["ids"].get<std::vector<int32_t>>()) ++mismatches;
    });
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(TokenizerTiny, MatchesModelGoldens) {
  const json g = json::parse(slurp(CAUSEWAY_SOURCE_DIR "/tests/data/tiny-gpt2-goldens.json"));
  const Tokenizer tok = Tokenizer::from_model_dir(kTinyDir);
  EXPECT_EQ(tok.vocab_size(), 1000);
  EXPECT_EQ(tok.eos_id(), 999);
  for (const json& p : g["prompts"])
    EXPECT_EQ(tok.encode(p["text"].get<std::string>()), p["ids"].get<std::vector<int32_t>>()) << p["text"];
}

TEST(TokenizerJson, SameIdsAsVocabAndMerges) {
  SKIP_WITHOUT_GPT2();
  for (bool pairs : {true, false}) {
    TempDir dir;
    dir.write("tokenizer.json", gpt2_tokenizer_json(pairs).dump());
    const Tokenizer tok = Tokenizer::from_model_dir(dir.path());
    EXPECT_EQ(tok.vocab_size(), 50257);
    EXPECT_EQ(tok.eos_id(), 50256);
    for (const json& c : goldens()["cases"])
      ASSERT_EQ(tok.encode(case_input(c)), c["ids"].get<std::vector<int32_t>>())
          << (pairs ? "[a, b] merges: " : "\"a b\" merges: ") << printable(case_input(c));
  }
}

// add_prefix_space and added tokens with lstrip / rstrip / normalized, which GPT-2's own files
// do not use, against tokenizers.Tokenizer.from_file on the same tokenizer.json. Also how HF
// numbers added tokens (not by their "id" field) and how rstrip'ed whitespace can still match.
TEST(TokenizerJson, AddedTokenVariants) {
  SKIP_WITHOUT_GPT2();
  for (const json& variant : goldens()["tokenizer_json"]) {
    SCOPED_TRACE(variant["name"].get<std::string>());
    json spec = gpt2_tokenizer_json(true);
    spec["pre_tokenizer"]["add_prefix_space"] = variant["add_prefix_space"];
    for (const json& a : variant["added_tokens"]) spec["added_tokens"].push_back(a);
    const Tokenizer tok = Tokenizer::from_tokenizer_json_string(spec.dump());
    EXPECT_EQ(tok.vocab_size(), variant["vocab_size"].get<int32_t>());
    for (const json& c : variant["cases"])
      EXPECT_EQ(tok.encode(c["text"].get<std::string>()), c["ids"].get<std::vector<int32_t>>())
          << printable(c["text"].get<std::string>());
  }
}

TEST(TokenizerJson, UnsupportedPipelinesAreRejected) {
  const std::string base = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false})";
  EXPECT_NO_THROW(Tokenizer::from_tokenizer_json_string(base + "}"));
  auto error_of = [&](const std::string& extra) {
    try {
      Tokenizer::from_tokenizer_json_string(base + extra + "}", "t.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"(, "normalizer": {"type": "NFKC"})").find("t.json: normalizer"), std::string::npos);
  EXPECT_NE(error_of(R"(, "added_tokens": [{"id": 1, "content": "x", "single_word": true}])")
                .find("added_tokens[0].single_word"),
            std::string::npos);
  EXPECT_NE(error_of(R"(, "added_tokens": [{"id": -3, "content": "x"}])").find("added_tokens[0].id"),
            std::string::npos);
  EXPECT_THROW(Tokenizer::from_tokenizer_json_string(R"({"model": {"type": "WordPiece", "vocab": {}}})"),
               InputError);
  EXPECT_THROW(Tokenizer::from_tokenizer_json_string(
                   R"({"model": {"vocab": {"a": 0}, "merges": [["a"]]}, "pre_tokenizer": {"type": "ByteLevel"}})"),
               InputError);
}

TEST(TokenizerModelDir, PrefersVocabAndMergesThenTokenizerJson) {
  TempDir dir;
  dir.write("vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  dir.write("merges.txt", "#version: 0.2\na b\n");
  EXPECT_EQ(Tokenizer::from_model_dir(dir.path()).encode("ab"), std::vector<int32_t>{2});
  fs::remove(dir.path() / "merges.txt");
  dir.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 5, "b": 6}, "merges": []},
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}})");
  EXPECT_EQ(Tokenizer::from_model_dir(dir.path()).encode("ab"), (std::vector<int32_t>{5, 6}));
}

TEST(TokenizerModelDir, NoTokenizerNamesTheFolder) {
  TempDir dir;
  try {
    Tokenizer::from_model_dir(dir.path());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path().string()), std::string::npos) << e.what();
  }
}

// The message of the InputError that loading these files throws ("" if none).
std::string load_error(const std::string& vocab, const std::string& merges) {
  TempDir dir;
  try {
    Tokenizer::from_files(dir.write("vocab.json", vocab), dir.write("merges.txt", merges));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerErrors, MalformedVocabNamesTheFile) {
  const std::string msg = load_error(R"({"a": 0, "b": )", "#version: 0.2\n");
  EXPECT_NE(msg.find("vocab.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
  EXPECT_NE(load_error("[1, 2]", "").find("vocab.json"), std::string::npos);
}

TEST(TokenizerErrors, NonIntegerIdNamesTheToken) {
  const std::string msg = load_error(R"({"a": 0, "bee": "x"})", "");
  EXPECT_NE(msg.find("vocab.json: \"bee\""), std::string::npos) << msg;
  EXPECT_NE(load_error(R"({"a": -1})", "").find("outside"), std::string::npos);
  EXPECT_NE(load_error(R"({"a": 1.5})", "").find("integer"), std::string::npos);
}

TEST(TokenizerErrors, MalformedMergesLineNamesTheLine) {
  const std::string vocab = R"({"a": 0, "b": 1, "ab": 2})";
  const std::string msg = load_error(vocab, "#version: 0.2\na b\na b c\n");
  EXPECT_NE(msg.find("merges.txt: line 3"), std::string::npos) << msg;
  EXPECT_NE(load_error(vocab, "#version: 0.2\n\na b\n").find("line 2"), std::string::npos);
  EXPECT_NE(load_error(vocab, "a  b\n").find("line 1"), std::string::npos);
  EXPECT_EQ(load_error(vocab, "#version: 0.2\r\na b\r\n"), "");  // CRLF is fine, as in HF
}

// HF refuses a merge whose parts or result are not tokens ("Token `x` out of vocabulary").
TEST(TokenizerErrors, MergeOutsideVocabularyNamesTheLine) {
  const std::string vocab = R"({"a": 0, "b": 1, "ab": 2, "c": 3})";
  std::string msg = load_error(vocab, "#version: 0.2\na b\na x\n");
  EXPECT_NE(msg.find("merges.txt: line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"x\""), std::string::npos) << msg;
  msg = load_error(vocab, "a c\n");
  EXPECT_NE(msg.find("\"ac\" is not in the vocabulary"), std::string::npos) << msg;
}

TEST(TokenizerErrors, MissingFileNamesIt) {
  TempDir dir;
  try {
    Tokenizer::from_files(dir.path() / "nope.json", dir.path() / "merges.txt");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.json"), std::string::npos) << e.what();
  }
}

// A vocabulary that lacks some byte tokens: HF drops those bytes (no unk token), and pairs
// around the gap still merge.
TEST(TokenizerSmall, MissingBytesAreDropped) {
  const Tokenizer tok = Tokenizer::from_strings(R"({"a": 0, "b": 1, "ab": 2})", "a b\n");
  EXPECT_EQ(tok.encode("ab"), std::vector<int32_t>{2});
  EXPECT_EQ(tok.encode("acb"), std::vector<int32_t>{2});
  EXPECT_EQ(tok.encode("c"), std::vector<int32_t>{});
  EXPECT_EQ(tok.eos_id(), std::nullopt);
  EXPECT_EQ(tok.vocab_size(), 3);
}

// A pair listed twice in merges.txt keeps its last rank, as in HF (found by a differential run
// against HF on random small vocabularies: "b c" at rank 9 must beat "d c" re-listed at 10).
TEST(TokenizerSmall, DuplicateMergeKeepsLastRank) {
  const Tokenizer tok = Tokenizer::from_strings(
      R"({"a": 0, "b": 1, "c": 2, "d": 3, "ba": 4, "dc": 5, "aa": 6, "dcb": 7, "aaaa": 8,
          "badcb": 9, "aaa": 10, "aaaad": 11, "bc": 12, "cbc": 13, "baaaad": 14})",
      "#version: 0.2\nb a\nd c\na a\nb a\ndc b\naa aa\nba dcb\naa a\naaaa d\nb c\nd c\nc bc\n"
      "b aaaad\n");
  EXPECT_EQ(tok.encode("adedcebc"), (std::vector<int32_t>{0, 3, 5, 12}));
}

}  // namespace
}  // namespace causeway
