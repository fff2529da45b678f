// IOI generator with the real GPT-2 tokenizer: determinism, ABBA/BABA balance, alignment,
// answer tokens, the corrupted prompts of both corruption kinds; and `causeway data ioi`.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "core/error.h"
#include "data/ioi.h"
#include "data/prompt_pairs.h"
#include "model/tokenizer.h"
#include "cli_support.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path& kGpt2Tokenizer = fixtures::kGpt2TokenizerDir;
const fs::path kTinyModel = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2";

const Tokenizer* gpt2() { return fixtures::gpt2_tokenizer(); }

#define REQUIRE_GPT2()                                                                  \
  if (!gpt2()) GTEST_SKIP() << "GPT-2 tokenizer not found: looked for vocab.json and "  \
                               "merges.txt in " << kGpt2Tokenizer

int32_t id_of(const std::string& text) {
  const std::optional<int32_t> id = gpt2()->token_id(text);
  EXPECT_TRUE(id.has_value()) << "'" << text << "' is not one token";
  return id.value_or(-1);
}

int count(const std::vector<int32_t>& ids, int32_t id) {
  return static_cast<int>(std::count(ids.begin(), ids.end(), id));
}

IoiOptions options(uint64_t seed, IoiOptions::Corruption c = IoiOptions::Corruption::SubjectSwap) {
  IoiOptions o;
  o.n = 50;
  o.seed = seed;
  o.corruption = c;
  return o;
}

TEST(IoiTemplates, HaveTheAbbaShape) {
  ASSERT_GE(ioi_templates().size(), 8u);
  for (std::string_view t : ioi_templates()) {
    const size_t a = t.find("[A]"), b1 = t.find("[B]");
    const size_t b2 = t.find("[B]", b1 + 1);
    ASSERT_NE(a, std::string_view::npos) << t;
    ASSERT_NE(b2, std::string_view::npos) << t;
    EXPECT_LT(a, b1) << t;
    EXPECT_EQ(t.find("[A]", a + 1), std::string_view::npos) << t;
    EXPECT_EQ(t.find("[B]", b2 + 1), std::string_view::npos) << t;
    EXPECT_NE(t.find("[A] and [B]"), std::string_view::npos) << t;
    // Placeholders follow a space so that they encode as " Word" tokens.
    for (size_t k = t.find('['); k != std::string_view::npos; k = t.find('[', k + 1))
      EXPECT_EQ(t[k - 1], ' ') << t;
  }
}

TEST(IoiTemplates, NamesAreDistinct) {
  const std::set<std::string_view> names(ioi_names().begin(), ioi_names().end());
  EXPECT_EQ(names.size(), ioi_names().size());
  EXPECT_GE(names.size(), 90u);
  EXPECT_TRUE(names.count("Mary") && names.count("John"));
}

TEST(Ioi, DeterministicForASeed) {
  REQUIRE_GPT2();
  const auto a = generate_ioi(*gpt2(), options(1));
  const auto b = generate_ioi(*gpt2(), options(1));
  const auto c = generate_ioi(*gpt2(), options(2));
  ASSERT_EQ(a.size(), 50u);
  ASSERT_EQ(c.size(), 50u);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].clean_text, b[i].clean_text);
    EXPECT_EQ(a[i].corrupted, b[i].corrupted);
    EXPECT_EQ(a[i].answers, b[i].answers);
    differs = differs || a[i].clean_text != c[i].clean_text;
  }
  EXPECT_TRUE(differs) << "seeds 1 and 2 gave the same prompts";
}

TEST(Ioi, BothOrdersHalfEach) {
  REQUIRE_GPT2();
  const auto pairs = generate_ioi_detailed(*gpt2(), options(1));
  int abba = 0;
  for (const IoiPair& p : pairs) {
    abba += p.abba;
    // ABBA: the IO is named first; BABA: the subject is.
    const int32_t first_name = p.pair.clean[std::min(p.io_pos, p.s1_pos)];
    EXPECT_EQ(first_name, p.abba ? id_of(p.io) : id_of(p.s)) << p.pair.clean_text;
    EXPECT_EQ(p.io_pos < p.s1_pos, p.abba) << p.pair.clean_text;
  }
  EXPECT_EQ(abba, 25);
}

TEST(Ioi, SubjectSwapPairs) {
  REQUIRE_GPT2();
  EXPECT_EQ(id_of(" Mary"), 5335);
  EXPECT_EQ(id_of(" John"), 1757);
  IoiOptions mixed = options(1);
  mixed.same_length = false;  // every template, so that alignment is checked in each
  const auto pairs = generate_ioi_detailed(*gpt2(), mixed);
  PairDataset d;
  d.source = "ioi";
  for (const IoiPair& p : pairs) d.pairs.push_back(p.pair);
  EXPECT_NO_THROW(d.require_aligned());
  std::set<int> templates;
  for (const IoiPair& r : pairs) {
    const PromptPair& p = r.pair;
    const int32_t io = id_of(r.io), s = id_of(r.s);
    templates.insert(r.template_index);
    EXPECT_NE(io, s);
    EXPECT_TRUE(r.c.empty());
    EXPECT_EQ(p.answers, (std::vector<int32_t>{io}));
    EXPECT_EQ(p.wrongs, (std::vector<int32_t>{s}));
    EXPECT_EQ(p.answer_pos, -1);
    EXPECT_EQ(p.line, 0);
    EXPECT_EQ(p.clean, gpt2()->encode(p.clean_text));
    EXPECT_EQ(p.corrupted, gpt2()->encode(p.corrupted_text));
    EXPECT_EQ(p.clean_text.find('['), std::string::npos) << p.clean_text;
    EXPECT_EQ(count(p.clean, s), 2) << p.clean_text;
    EXPECT_EQ(count(p.clean, io), 1) << p.clean_text;
    // The S2 name becomes the IO: the IO is now repeated, so the answer flips.
    EXPECT_EQ(count(p.corrupted, s), 1) << p.corrupted_text;
    EXPECT_EQ(count(p.corrupted, io), 2) << p.corrupted_text;
    ASSERT_EQ(p.clean.size(), p.corrupted.size());
    for (size_t t = 0; t < p.clean.size(); ++t) {
      if (static_cast<int>(t) == r.s2_pos) {
        EXPECT_EQ(p.clean[t], s);
        EXPECT_EQ(p.corrupted[t], io);
      } else {
        EXPECT_EQ(p.clean[t], p.corrupted[t]) << p.corrupted_text;
      }
    }
    EXPECT_GT(r.s2_pos, std::max(r.io_pos, r.s1_pos));
  }
  EXPECT_GT(templates.size(), 5u);
}

TEST(Ioi, ThirdNamePairs) {
  REQUIRE_GPT2();
  const auto swap = generate_ioi_detailed(*gpt2(), options(1));
  const auto abc = generate_ioi_detailed(*gpt2(), options(1, IoiOptions::Corruption::ThirdName));
  ASSERT_EQ(abc.size(), 50u);
  for (size_t i = 0; i < abc.size(); ++i) {
    const IoiPair& r = abc[i];
    const PromptPair& p = r.pair;
    // Same seed, same clean prompts: only the corruption differs.
    EXPECT_EQ(p.clean_text, swap[i].pair.clean_text);
    ASSERT_FALSE(r.c.empty());
    EXPECT_NE(r.c, r.io);
    EXPECT_NE(r.c, r.s);
    const int32_t io = id_of(r.io), s = id_of(r.s), c = id_of(r.c);
    EXPECT_EQ(p.answers, (std::vector<int32_t>{io}));
    EXPECT_EQ(p.wrongs, (std::vector<int32_t>{s}));
    ASSERT_EQ(p.clean.size(), p.corrupted.size());
    EXPECT_EQ(count(p.corrupted, c), 1) << p.corrupted_text;
    EXPECT_EQ(count(p.corrupted, s), 1) << p.corrupted_text;
    EXPECT_EQ(count(p.corrupted, io), 1) << p.corrupted_text;
    EXPECT_EQ(p.corrupted[r.s2_pos], c);
  }
}

TEST(Ioi, OneTemplateGivesOneLength) {
  REQUIRE_GPT2();
  IoiOptions o = options(5);
  o.template_index = 0;
  const auto pairs = generate_ioi(*gpt2(), o);
  for (const PromptPair& p : pairs) {
    EXPECT_EQ(p.clean.size(), pairs[0].clean.size()) << p.clean_text;
    EXPECT_EQ(p.clean_text.rfind("When ", 0), 0u) << p.clean_text;
  }
}

TEST(Ioi, BadOptions) {
  REQUIRE_GPT2();
  IoiOptions o;
  o.n = 0;
  EXPECT_THROW(generate_ioi(*gpt2(), o), InputError);
  o.n = 3;
  o.template_index = static_cast<int>(ioi_templates().size());
  EXPECT_THROW(generate_ioi(*gpt2(), o), InputError);
}

TEST(Ioi, TooFewSingleTokenNames) {
  // The tiny test model's 1000-token vocabulary has none of the names as one token.
  const Tokenizer tiny = Tokenizer::from_model_dir(kTinyModel);
  try {
    generate_ioi(tiny, IoiOptions{});
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tokenizer"), std::string::npos) << msg;
    EXPECT_NE(msg.find("single tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at least 3"), std::string::npos) << msg;
  }
}

using Result = fixtures::CliResult;
const auto run_cli = fixtures::run_causeway;

TEST(IoiCli, DataWithoutASubcommandShowsHelp) {
  const Result r = run_cli("data");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("ioi"), std::string::npos) << r.output;
  const Result h = run_cli("data ioi --help");
  EXPECT_EQ(h.code, 0) << h.output;
  for (const char* opt : {"--n", "--seed", "--corruption", "--tokenizer", "--out", "--overwrite"})
    EXPECT_NE(h.output.find(opt), std::string::npos) << opt;
}

TEST(IoiCli, WritesPairsAndRefusesToOverwrite) {
  REQUIRE_GPT2();
  const fs::path dir = fs::temp_directory_path() / ("causeway-ioi-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path out = dir / "ioi.jsonl";
  const std::string args = "data ioi --n 5 --seed 3 --corruption abc --tokenizer " +
                           kGpt2Tokenizer.string() + " --out " + out.string();
  const Result r = run_cli(args);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote 5 IOI pairs"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("clean:"), std::string::npos) << r.output;

  // Readable back with the tokenizer and, through the stored ids, without it.
  const PairDataset with = load_pairs_jsonl(out, gpt2());
  const PairDataset without = load_pairs_jsonl(out, nullptr);
  IoiOptions o;
  o.n = 5;
  o.seed = 3;
  o.corruption = IoiOptions::Corruption::ThirdName;
  const auto expected = generate_ioi(*gpt2(), o);
  ASSERT_EQ(with.pairs.size(), 5u);
  ASSERT_EQ(without.pairs.size(), 5u);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(with.pairs[i].clean_text, expected[i].clean_text);
    EXPECT_EQ(with.pairs[i].clean, expected[i].clean);
    EXPECT_EQ(without.pairs[i].corrupted, expected[i].corrupted);
    EXPECT_EQ(without.pairs[i].answers, expected[i].answers);
    EXPECT_EQ(without.pairs[i].wrongs, expected[i].wrongs);
  }

  const Result again = run_cli(args);
  EXPECT_EQ(again.code, 2) << again.output;
  EXPECT_NE(again.output.find("causeway: error: " + out.string() + ": output file exists"),
            std::string::npos)
      << again.output;
  EXPECT_EQ(run_cli(args + " --overwrite").code, 0);

  const Result bad = run_cli("data ioi --corruption xyz --tokenizer " + kGpt2Tokenizer.string() +
                             " --out " + (dir / "x.jsonl").string());
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_FALSE(fs::exists(dir / "x.jsonl"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace causeway
