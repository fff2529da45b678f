// Text helpers of the tokenizer: UTF-8 stepping and repair, the Unicode classes HF's regex
// engine uses, PCRE2 regexes (GPT-2's and tokenizer.json Split patterns) and GPT-2's byte <->
// printable character map. Internal to src/model/tokenizer*.cpp.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "core/error.h"

namespace causeway::tokenizer_text {

void append_utf8(std::string& out, char32_t cp);

// One step of a UTF-8 decoder: the well-formed character at s[i] (len > 0), or the maximal
// ill-formed subpart there (len < 0, its length negated), the unit that Python's
// errors="replace" turns into one U+FFFD.
struct Utf8Step {
  char32_t cp;
  int len;
};

Utf8Step utf8_step(std::string_view s, size_t i);
bool is_valid_utf8(std::string_view s);
// Python's bytes.decode("utf-8", errors="replace"), re-encoded: HF sees a Python str, and this
// is the str a caller holding these bytes would most likely have given it.
std::string replace_invalid_utf8(std::string_view s);

// Unicode Normalization Form C of valid UTF-8 (ICU; HF's NFC normalizer, used by Qwen2).
std::string nfc(std::string_view utf8);

// Unicode White_Space (HF's \s, Rust's char::is_whitespace).
bool is_white_space(char32_t cp);

// A pattern compiled in UTF + UCP mode (JIT when available); null with `error` set if it does
// not compile.
std::shared_ptr<const pcre2_code> compile_regex(const std::string& pattern, uint32_t options,
                                                std::string& error);
// GPT-2's pre-tokenizer regex, compiled once per process (pcre2_match is thread-safe on it).
std::shared_ptr<const pcre2_code> gpt2_regex();
// A tokenizer.json Split regex (Oniguruma syntax) rewritten for PCRE2 with HF's Unicode classes.
std::string translate_split_regex(std::string_view pat);

struct MatchData {
  // One pair is all the splitting reads; a pattern with groups still matches (rc 0).
  MatchData() : md(pcre2_match_data_create(1, nullptr)) {
    if (!md) throw std::bad_alloc();
  }
  ~MatchData() { pcre2_match_data_free(md); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* md;
};

// Calls fn(piece, matched) for each piece of `seg` a regex gives, as HF's Split with Isolated
// behaviour: matches and the gaps between them (an empty match splits nothing).
template <typename Fn>
void for_each_regex_piece(const pcre2_code* re, pcre2_match_data* md, std::string_view seg, Fn&& fn) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(seg.data());
  size_t done = 0;
  for (size_t pos = 0; pos < seg.size();) {
    const int rc = pcre2_match(re, subject, seg.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(std::string("tokenizer: regex match failed: ") + reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] <= ov[0]) {
      if (ov[0] >= seg.size()) break;
      pos = ov[0] + static_cast<size_t>(std::max(utf8_step(seg, ov[0]).len, 1));
      continue;
    }
    if (ov[0] > done) fn(seg.substr(done, ov[0] - done), false);
    fn(seg.substr(ov[0], ov[1] - ov[0]), true);
    done = pos = ov[1];
  }
  if (done < seg.size()) fn(seg.substr(done), false);
}

// GPT-2's byte <-> printable character map (bytes_to_unicode in the original encoder.py).
struct ByteMap {
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 0x144> cp_to_byte;  // -1 where the code point is no byte's image
};

const ByteMap& byte_map();
// Each byte as its printable character: the form byte-level vocabularies store.
std::string bytes_to_token(std::string_view bytes);
// HF's ByteLevel decoder: every character maps back to its byte, unless one of them is not a
// byte's image, and then the token's own UTF-8 is used whole.
std::string token_to_bytes(std::string_view token);

}  // namespace causeway::tokenizer_text
