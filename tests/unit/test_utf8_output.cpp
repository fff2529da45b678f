// Text that causeway prints is valid UTF-8 even when tokens are single bytes of a character
// (issue 10, D): the checker against Unicode's table of well-formed sequences, the escaper,
// and `causeway logits` on byte tokens of the tiny model's GPT-2 byte alphabet.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli_support.h"
#include "core/utf8.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kTiny = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2";

TEST(Utf8, WellFormedSequencesAreValid) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ASCII"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA2"));              // U+00E2
  EXPECT_TRUE(is_valid_utf8("\xE2\x80\x99"));          // U+2019
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));          // U+D7FF, just below the surrogates
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));      // U+1F600
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));      // U+10FFFF
}

TEST(Utf8, IllFormedSequencesAreInvalid) {
  EXPECT_FALSE(is_valid_utf8("\xE2"));                 // a lead byte alone
  EXPECT_FALSE(is_valid_utf8("\xE2\x80"));             // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));                 // a continuation byte alone
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));             // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));         // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));         // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));     // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xFF"));
}

TEST(Utf8, EscapingKeepsValidTextAndWritesStrayBytesAsHex) {
  EXPECT_EQ(escape_invalid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(escape_invalid_utf8("\xE2"), "<0xE2>");
  EXPECT_EQ(escape_invalid_utf8("\xE2\x80"), "<0xE2><0x80>");
  EXPECT_EQ(escape_invalid_utf8("a\x99" "b\xE2\x80\x99"), "a<0x99>b\xE2\x80\x99");
  EXPECT_EQ(escape_invalid_utf8("\xED\xA0\x80"), "<0xED><0xA0><0x80>");
  // Every single byte escapes to valid text.
  for (int b = 0; b < 256; ++b)
    EXPECT_TRUE(is_valid_utf8(escape_invalid_utf8(std::string(1, static_cast<char>(b))))) << b;
}

// The tiny model's vocabulary is GPT-2's byte alphabet then merges: id 158 'â' is the byte
// 0xE2 (first byte of U+2019), 222 'Ģ' the byte 0x80, 215 'ě' the escape byte 0x1B, 198 'Ċ' a
// newline. --top 1000 prints the whole vocabulary, all 256 byte tokens included.
TEST(Utf8, LogitsPrintsValidUtf8WithTokenStringsBesideIds) {
  const fixtures::CliResult r = fixtures::run_causeway(
      "logits --model " + kTiny.string() + " --tokens 158,222,215,198,256 --top 1000");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(is_valid_utf8(r.output)) << escape_invalid_utf8(r.output);
  EXPECT_NE(r.output.find("158:'<0xE2>' 222:'<0x80>' 215:'<0x1B>' 198:'\\n' 256:' t'"),
            std::string::npos)
      << r.output;
  // The same bytes among the ranked candidates, beside their ids.
  for (const char* row : {" 158  '<0xE2>' ", " 222  '<0x80>' ", " 215  '<0x1B>' "})
    EXPECT_NE(r.output.find(row), std::string::npos) << row;
}

// Column, in characters, where the probability starts on the ranked row of `id`.
size_t probability_column(const std::string& out, int id) {
  const std::string cell = std::string(8 - std::to_string(id).size(), ' ') + std::to_string(id) + "  '";
  const size_t at = out.find(cell);
  if (at == std::string::npos) return 0;
  const size_t begin = out.rfind('\n', at) + 1;
  const std::string line = out.substr(begin, out.find('\n', at) - begin);
  const size_t prob = line.find_first_not_of(' ', line.rfind('\'') + 1);
  size_t chars = 0;
  for (size_t i = 0; i < prob; ++i)
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80) ++chars;
  return chars;
}

TEST(Utf8, LogitsColumnsAlignAfterMultiByteTokens) {
  // 'é' (id 165) is two bytes but one character: its probability starts where 'e''s (id 68) does.
  const fixtures::CliResult r =
      fixtures::run_causeway("logits --model " + kTiny.string() + " --tokens 1 --top 1000");
  ASSERT_EQ(r.code, 0) << r.output;
  const size_t ascii = probability_column(r.output, 68);
  EXPECT_GT(ascii, 20u) << r.output;
  EXPECT_EQ(probability_column(r.output, 165), ascii);
}

}  // namespace
}  // namespace causeway
