// Positions that line up (issue 10, C): the IOI generator's one-length default, named positions
// in pairs and JSONL, sweeps indexed by named position (checked against each pair run alone on
// token indices), the refusal of per-position sweeps over prompts of different lengths, and the
// position labels of the result file.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <string>

#include "cli_support.h"
#include "core/error.h"
#include "core/utf8.h"
#include "data/ioi.h"
#include "data/position_labels.h"
#include "data/prompt_pairs.h"
#include "model/tokenizer.h"
#include "patching/attribution.h"
#include "patching/sweep.h"
#include "tiny_model.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using fixtures::tiny_model;

const Tokenizer& toy_tokenizer() {
  static const Tokenizer tok = Tokenizer::from_model_dir(fs::path(CAUSEWAY_SOURCE_DIR) / "models/ioi-toy");
  return tok;
}

std::set<size_t> lengths_of(const std::vector<PromptPair>& pairs) {
  std::set<size_t> n;
  for (const PromptPair& p : pairs) n.insert(p.clean.size());
  return n;
}

// ---- the IOI generator ----

TEST(IoiPositions, DefaultKeepsOneTemplateLength) {
  std::vector<const Tokenizer*> toks{&toy_tokenizer()};
  if (fixtures::gpt2_tokenizer()) toks.push_back(fixtures::gpt2_tokenizer());
  for (const Tokenizer* tok : toks) {
    IoiOptions o;
    o.n = 64;
    o.seed = 3;
    const std::vector<IoiPair> pairs = generate_ioi_detailed(*tok, o);
    std::vector<PromptPair> plain;
    std::set<int> templates;
    for (const IoiPair& p : pairs) plain.push_back(p.pair), templates.insert(p.template_index);
    EXPECT_EQ(lengths_of(plain).size(), 1u) << "vocabulary of " << tok->vocab_size();
    EXPECT_GT(templates.size(), 1u) << "one length, but still several templates";
    // Mixing stays available and does mix lengths with these templates.
    o.same_length = false;
    EXPECT_GT(lengths_of(generate_ioi(*tok, o)).size(), 1u);
  }
}

TEST(IoiPositions, PairsNameTheirPositions) {
  IoiOptions o;
  o.n = 20;
  o.same_length = false;  // ABBA and BABA over templates of several lengths
  for (const IoiPair& r : generate_ioi_detailed(toy_tokenizer(), o)) {
    const PromptPair& p = r.pair;
    ASSERT_EQ(p.positions.size(), 5u);
    std::vector<std::string> names;
    for (const NamedPosition& np : p.positions) names.push_back(np.name);
    EXPECT_EQ(names, (std::vector<std::string>{"IO", "S1", "S1+1", "S2", "END"}));
    EXPECT_EQ(p.positions[0].index, r.io_pos);
    EXPECT_EQ(p.clean[p.positions[0].index], p.answers[0]);  // the IO name
    EXPECT_EQ(p.clean[p.positions[1].index], p.wrongs[0]);   // S1
    EXPECT_EQ(p.positions[2].index, p.positions[1].index + 1);
    EXPECT_EQ(p.clean[p.positions[3].index], p.wrongs[0]);   // S2
    EXPECT_NE(p.corrupted[p.positions[3].index], p.clean[p.positions[3].index]);
    EXPECT_EQ(p.positions[4].index, static_cast<int>(p.clean.size()) - 1);
  }
}

// ---- JSONL ----

TEST(NamedPositions, RoundTripThroughJsonl) {
  const PairDataset d = parse_pairs_jsonl(
      R"({"clean": [1, 2, 3, 4], "corrupted": [1, 2, 5, 4], "answer": 7, "wrong": 8, "positions": {"S2": 2, "A": 0, "END": -1}})"
      "\n"
      R"({"clean": [1, 2, 3, 4, 6], "corrupted": [1, 2, 3, 5, 6], "answer": 7, "wrong": 8, "positions": {"A": 1, "S2": 3, "END": 4}})"
      "\n",
      "pairs.jsonl", nullptr);
  ASSERT_EQ(d.pairs.size(), 2u);
  // The line's order is kept; -1 counts from the end.
  EXPECT_EQ(d.pairs[0].positions,
            (std::vector<NamedPosition>{{"S2", 2}, {"A", 0}, {"END", 3}}));
  EXPECT_EQ(d.position_names(), (std::vector<std::string>{"S2", "A", "END"}));

  fixtures::TempDir dir("positions");
  const fs::path file = dir.path() / "pairs.jsonl";
  write_pairs_jsonl(file, d.pairs);
  const PairDataset back = load_pairs_jsonl(file, nullptr);
  ASSERT_EQ(back.pairs.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(back.pairs[i].positions, d.pairs[i].positions);

  // Generated IOI pairs keep theirs through a file too.
  IoiOptions o;
  o.n = 6;
  const std::vector<PromptPair> ioi = generate_ioi(toy_tokenizer(), o);
  write_pairs_jsonl(file, ioi);
  const PairDataset again = load_pairs_jsonl(file, &toy_tokenizer());
  for (size_t i = 0; i < ioi.size(); ++i) EXPECT_EQ(again.pairs[i].positions, ioi[i].positions);
}

void expect_error(const std::string& text, const std::vector<std::string>& parts) {
  try {
    const PairDataset d = parse_pairs_jsonl(text, "pairs.jsonl", nullptr);
    d.position_names();
    ADD_FAILURE() << "no error for " << text;
  } catch (const InputError& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "'" << p << "' not in: " << e.what();
  }
}

TEST(NamedPositions, BadValuesNameTheLineAndKey) {
  const std::string ok = R"({"clean": [1, 2, 3], "corrupted": [1, 5, 3], "answer": 7, "wrong": 8)";
  expect_error(ok + R"(, "positions": [1, 2]})", {"pairs.jsonl: line 1: positions", "expected an object"});
  expect_error(ok + R"(, "positions": {}})", {"line 1: positions", "empty"});
  expect_error(ok + R"(, "positions": {"IO": "2"}})", {"line 1: positions.IO", "integer"});
  expect_error(ok + R"(, "positions": {"IO": 3}})", {"line 1: positions.IO", "outside the prompt"});
  expect_error(ok + R"(, "positions": {"IO": -4}})", {"line 1: positions.IO", "outside the prompt"});
  // Every pair must name the same positions.
  expect_error(ok + R"(, "positions": {"IO": 1}})" "\n" + ok + R"(, "positions": {"S2": 1}})",
               {"line 2: positions", "names S2 but line 1 names IO"});
  expect_error(ok + R"(, "positions": {"IO": 1}})" "\n" + ok + "}", {"line 2: positions", "missing"});
}

// ---- sweeps by named position ----

// Pairs of random tokens of the given lengths, corrupted at two positions, each naming the
// positions `at[i]` (names A, B, C in that order).
PairDataset named_pairs(const std::vector<int>& lengths, const std::vector<std::array<int, 3>>& at,
                        uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, tiny_model().config().vocab_size - 2);
  PairDataset d;
  d.source = "named pairs";
  for (size_t i = 0; i < lengths.size(); ++i) {
    PromptPair p;
    for (int t = 0; t < lengths[i]; ++t) p.clean.push_back(tok(rng));
    p.corrupted = p.clean;
    p.corrupted[at[i][0]] = tok(rng);
    p.corrupted[at[i][1]] = tok(rng);
    p.answers = {tok(rng)};
    p.wrongs = {tok(rng)};
    p.line = static_cast<int>(i) + 1;
    p.positions = {{"A", at[i][0]}, {"B", at[i][1]}, {"C", at[i][2]}};
    d.pairs.push_back(p);
  }
  return d;
}

SweepRequest request(SweepKind kind, bool named, Direction dir = Direction::Denoising) {
  SweepRequest r;
  r.spec.kind = kind;
  r.spec.by_pos = true;
  r.spec.named = named;
  r.direction = dir;
  r.pairs_per_block = 2;  // blocks that mix pairs of different layouts
  return r;
}

// The token-index cell that named cell `c` of `named` means in a pair whose names sit at `at`.
int64_t index_cell(const SweepGrid& named, const SweepGrid& plain, int64_t c, const std::array<int, 3>& at) {
  int64_t flat = 0;
  int64_t rest = c;
  std::vector<int64_t> idx(named.axes.size());
  for (int d = static_cast<int>(named.axes.size()) - 1; d >= 0; --d) {
    idx[d] = rest % named.axes[d].size;
    rest /= named.axes[d].size;
  }
  for (size_t d = 0; d < named.axes.size(); ++d) {
    const bool pos = named.axes[d].name == "pos" || named.axes[d].name.ends_with("_pos");
    flat = flat * plain.axes[d].size + (pos ? at[idx[d]] : idx[d]);
  }
  return flat;
}

const std::vector<SweepKind> kKinds = {SweepKind::ResidPre, SweepKind::HeadOut,
                                       SweepKind::HeadPatternDestSrc};

TEST(NamedSweep, EqualsTheIndexSweepWhenEveryPairHasOneLayout) {
  const std::array<int, 3> at{5, 1, 3};
  const PairDataset d = named_pairs({7, 7, 7}, {at, at, at}, 11);
  for (SweepKind kind : kKinds) {
    const SweepResult named = SweepRunner(tiny_model(), d, request(kind, true)).run();
    const SweepResult plain = SweepRunner(tiny_model(), d, request(kind, false)).run();
    for (const GridAxis& a : named.grid.axes)
      if (a.name.ends_with("pos")) {
        EXPECT_EQ(a.size, 3);
        EXPECT_EQ(a.labels, (std::vector<std::string>{"A", "B", "C"}));
      }
    const int64_t nc = static_cast<int64_t>(named.grid.cells.size()),
                  pc = static_cast<int64_t>(plain.grid.cells.size());
    for (int p = 0; p < 3; ++p)
      for (int64_t c = 0; c < nc; ++c)
        EXPECT_NEAR(named.effect[p * nc + c], plain.effect[p * pc + index_cell(named.grid, plain.grid, c, at)], 1e-5)
            << SweepSpec{kind}.name() << " pair " << p << " cell " << c;
  }
}

// Pairs of different lengths and layouts: each pair's row of the named sweep equals that pair
// swept alone by token index, at its own indices of the names.
TEST(NamedSweep, FollowsEachPairsOwnIndices) {
  const std::vector<std::array<int, 3>> at = {{1, 4, 5}, {6, 2, 7}, {3, 5, 6}};
  const PairDataset d = named_pairs({6, 8, 7}, at, 5);
  for (Direction dir : {Direction::Denoising, Direction::Noising})
    for (SweepKind kind : kKinds) {
      const SweepResult named = SweepRunner(tiny_model(), d, request(kind, true, dir)).run();
      const SweepResult est = AttributionRunner(tiny_model(), d, request(kind, true, dir), {}).run();
      const int64_t nc = static_cast<int64_t>(named.grid.cells.size());
      int moved = 0;
      for (int p = 0; p < 3; ++p) {
        PairDataset one;
        one.source = d.source;
        one.pairs = {d.pairs[p]};
        const SweepResult alone = SweepRunner(tiny_model(), one, request(kind, false, dir)).run();
        const SweepResult alone_est = AttributionRunner(tiny_model(), one, request(kind, false, dir), {}).run();
        for (int64_t c = 0; c < nc; ++c) {
          const int64_t k = index_cell(named.grid, alone.grid, c, at[p]);
          const float v = named.effect[p * nc + c];
          ASSERT_FALSE(std::isnan(v)) << "pair " << p << " cell " << c;
          EXPECT_NEAR(v, alone.effect[k], 1e-5) << SweepSpec{kind}.name() << " pair " << p << " cell " << c;
          EXPECT_NEAR(est.effect[p * nc + c], alone_est.effect[k], 1e-5)
              << "attribution " << SweepSpec{kind}.name() << " pair " << p << " cell " << c;
          moved += std::abs(v - named.effect[c]) > 1e-4;
        }
      }
      EXPECT_GT(moved, 0) << "the pairs should not all have the same effects";
    }
}

TEST(NamedSweep, RefusedWithoutNamesOrAPositionAxis) {
  PairDataset d = named_pairs({6, 6}, {{{1, 2, 3}}, {{1, 2, 3}}}, 2);
  d.pairs[1].positions.clear();
  try {
    SweepRunner(tiny_model(), d, request(SweepKind::ResidPre, true));
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2: positions"), std::string::npos) << e.what();
  }
  SweepRequest all = request(SweepKind::HeadOut, true);
  all.spec.by_pos = false;
  EXPECT_THROW(SweepRunner(tiny_model(), named_pairs({6}, {{{1, 2, 3}}}, 2), all), InputError);
}

// ---- prompts of different lengths ----

TEST(UnalignedPositions, PerPositionSweepIsRefusedSayingHowToAlign) {
  const PairDataset d = named_pairs({6, 8, 7}, {{{1, 2, 3}}, {{1, 2, 3}}, {{1, 2, 3}}}, 4);
  for (SweepKind kind : kKinds) {
    try {
      SweepRunner(tiny_model(), d, request(kind, false));
      ADD_FAILURE() << "no error for " << SweepSpec{kind}.name();
    } catch (const InputError& e) {
      const std::string msg = e.what();
      for (const char* part : {"different lengths", "line 1: 6 tokens", "line 2: 8 tokens",
                               "positions = \"named\"", "one length"})
        EXPECT_NE(msg.find(part), std::string::npos) << part << " not in: " << msg;
    }
    EXPECT_THROW(AttributionRunner(tiny_model(), d, request(kind, false), {}), InputError);
  }
  // Sweeps without a position axis do not care.
  SweepRequest all = request(SweepKind::HeadOut, false);
  all.spec.by_pos = false;
  EXPECT_NO_THROW(SweepRunner(tiny_model(), d, all));
}

// ---- labels ----

TEST(PositionLabels, SharedTokensOrPositionNumbersAlwaysValidUtf8) {
  const Tokenizer tok = Tokenizer::from_model_dir(fixtures::kDataDir / "tiny-gpt2");
  // A byte token that is not UTF-8 by itself (GPT-2's lone lead bytes).
  int32_t lone = -1;
  for (int32_t id = 0; id < 256 && lone < 0; ++id)
    if (!is_valid_utf8(tok.token_text(id))) lone = id;
  ASSERT_GE(lone, 0);
  PairDataset d = named_pairs({4, 4, 5}, {{{0, 1, 2}}, {{0, 1, 2}}, {{0, 1, 2}}}, 9);
  for (PromptPair& p : d.pairs) p.clean[0] = 5, p.clean[2] = lone;
  d.pairs[1].clean[1] = d.pairs[0].clean[1] + 1;
  const std::vector<std::string> labels = position_labels(d, &tok);
  ASSERT_EQ(labels.size(), 5u);
  EXPECT_EQ(labels[0], tok.token_text(5));
  EXPECT_EQ(labels[1], "pos 1");  // pairs differ here
  EXPECT_EQ(labels[2], escape_invalid_utf8(tok.token_text(lone)));
  EXPECT_NE(labels[2], tok.token_text(lone));
  EXPECT_EQ(labels[4], "pos 4");  // past the shorter prompts
  for (const std::string& l : labels) EXPECT_TRUE(is_valid_utf8(l)) << l;
  EXPECT_EQ(position_labels(d, nullptr)[0], "pos 0");
}

}  // namespace
}  // namespace causeway
