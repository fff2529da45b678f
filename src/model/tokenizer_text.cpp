// UTF-8, Unicode classes, regexes and GPT-2's byte map for the tokenizer (tokenizer_text.h).
#include "model/tokenizer_text.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <cstdio>
#include <span>

namespace causeway::tokenizer_text {

// ---------------------------------------------------------------------------------------------
// UTF-8

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

Utf8Step utf8_step(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {0, -1};
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return {0, -k};
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return {0, -k};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need + 1};
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step st = utf8_step(s, i);
    if (st.len < 0) return false;
    i += st.len;
  }
  return true;
}

// Python's bytes.decode("utf-8", errors="replace"), re-encoded: HF sees a Python str, and this
// is the str a caller holding these bytes would most likely have given it.
std::string replace_invalid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size();) {
    const Utf8Step st = utf8_step(s, i);
    if (st.len > 0) {
      out.append(s.substr(i, st.len));
      i += st.len;
    } else {
      append_utf8(out, 0xFFFD);
      i += -st.len;
    }
  }
  return out;
}

namespace {

struct CodeRange {
  char32_t first, last;
};

// Unicode White_Space: what HF's regex means by \s and Rust's char::is_whitespace (lstrip /
// rstrip). PCRE2's \s differs (it adds U+180E), so the pattern spells the set out.
constexpr CodeRange kWhiteSpace[] = {{0x09, 0x0D}, {0x20, 0x20},     {0x85, 0x85},
                                     {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                                     {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                                     {0x3000, 0x3000}};

// Letters and numbers of Unicode 15-16 that HF's regex engine (Oniguruma in `tokenizers`
// 0.23) puts in \p{L} / \p{N} but Unicode 14 (PCRE2 10.42 of Debian 12) does not know. Added to
// the classes so the result does not depend on the system PCRE2's Unicode version. Printed by
// tests/reference/make_tokenizer_goldens.py --print-class-fixes; test TokenizerGpt2.
// CodepointClasses checks the boundary of every class run against HF.
constexpr CodeRange kExtraLetters[] = {
    {0x1C89, 0x1C8A},   {0xA7CB, 0xA7CD},   {0xA7DA, 0xA7DC},   {0x105C0, 0x105F3},
    {0x10D4A, 0x10D65}, {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x1123F, 0x11240},
    {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x113B5},
    {0x113B7, 0x113B7}, {0x113D1, 0x113D1}, {0x113D3, 0x113D3}, {0x11BC0, 0x11BE0},
    {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33}, {0x1342F, 0x1342F},
    {0x13441, 0x13446}, {0x13460, 0x143FA}, {0x16100, 0x1611D}, {0x16D40, 0x16D6C},
    {0x18CFF, 0x18CFF}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1DF25, 0x1DF2A},
    {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB}, {0x1E5D0, 0x1E5ED}, {0x1E5F0, 0x1E5F0},
    {0x2B739, 0x2B739}, {0x2EBF0, 0x2EE5D}, {0x31350, 0x323AF}};
constexpr CodeRange kExtraNumbers[] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x11F50, 0x11F59},
    {0x16130, 0x16139}, {0x16D70, 0x16D79}, {0x1CCF0, 0x1CCF9}, {0x1D2C0, 0x1D2D3},
    {0x1E4F0, 0x1E4F9}, {0x1E5F1, 0x1E5FA}};

bool in_ranges(std::span<const CodeRange> ranges, char32_t cp) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [cp](const CodeRange& r) { return cp >= r.first && cp <= r.last; });
}

// ---------------------------------------------------------------------------------------------
// GPT-2's pre-tokenizer regex

std::string class_items(std::span<const CodeRange> ranges) {
  std::string s;
  char buf[40];
  for (const CodeRange& r : ranges) {
    std::snprintf(buf, sizeof buf, "\\x{%X}-\\x{%X}", static_cast<unsigned>(r.first),
                  static_cast<unsigned>(r.last));
    s += buf;
  }
  return s;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ with \s, \p{L} and
// \p{N} replaced by the explicit sets above.
std::string gpt2_pattern() {
  const std::string ws = class_items(kWhiteSpace);
  const std::string letters = "\\p{L}" + class_items(kExtraLetters);
  const std::string numbers = "\\p{N}" + class_items(kExtraNumbers);
  return "'s|'t|'re|'ve|'m|'ll|'d| ?[" + letters + "]+| ?[" + numbers + "]+| ?[^" + ws + letters +
         numbers + "]+|[" + ws + "]+(?![^" + ws + "])|[" + ws + "]+";
}

std::shared_ptr<const pcre2_code> compile_gpt2_regex() {
  std::string error;
  auto re = compile_regex(gpt2_pattern(), 0, error);
  if (!re) throw Error("tokenizer: GPT-2 regex " + error);
  return re;
}

}  // namespace

std::string nfc(std::string_view utf8) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) throw Error(std::string("tokenizer: ICU NFC unavailable: ") + u_errorName(status));
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
  const icu::UnicodeString out = norm->normalize(in, status);
  if (U_FAILURE(status)) throw Error(std::string("tokenizer: NFC failed: ") + u_errorName(status));
  std::string result;
  out.toUTF8String(result);
  return result;
}

bool is_white_space(char32_t cp) { return in_ranges(kWhiteSpace, cp); }

std::shared_ptr<const pcre2_code> compile_regex(const std::string& pattern, uint32_t options,
                                                std::string& error) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  const uint32_t ucp = options & PCRE2_LITERAL ? 0 : PCRE2_UCP;  // PCRE2 refuses UCP with LITERAL
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | options | ucp, &err, &err_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    error = "does not compile at offset " + std::to_string(err_offset) + ": " +
            reinterpret_cast<const char*>(msg);
    return nullptr;
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // failure (no JIT) leaves the interpreter
  return {code, pcre2_code_free};
}

// A tokenizer.json Split regex (Oniguruma syntax in HF) for PCRE2: \s, \S, \p{L} and \p{N}
// become the explicit sets above, inside and outside character classes, so that Llama 3's and
// Qwen2's patterns split as HF does whatever Unicode version the system PCRE2 knows.
std::string translate_split_regex(std::string_view pat) {
  const std::string ws = class_items(kWhiteSpace);
  const std::string letters = "\\p{L}" + class_items(kExtraLetters);
  const std::string numbers = "\\p{N}" + class_items(kExtraNumbers);
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pat.size(); ++i) {
    const char c = pat[i];
    if (c == '\\' && i + 1 < pat.size()) {
      const std::string_view rest = pat.substr(i + 1);
      auto put = [&](const std::string& items, size_t skip) {
        out += in_class ? items : "[" + items + "]";
        i += skip;
      };
      if (rest[0] == 's') put(ws, 1);
      else if (rest[0] == 'S' && !in_class) out += "[^" + ws + "]", i += 1;
      else if (rest.starts_with("p{L}")) put(letters, 4);
      else if (rest.starts_with("p{N}")) put(numbers, 4);
      else out.append(pat.substr(i, 2)), i += 1;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pat.size() && pat[i + 1] == '^') out += '^', ++i;
      if (i + 1 < pat.size() && pat[i + 1] == ']') out += ']', ++i;  // a literal ] first
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

// Compiled once per process: the code is read-only and pcre2_match is thread-safe on it.
std::shared_ptr<const pcre2_code> gpt2_regex() {
  static const std::shared_ptr<const pcre2_code> re = compile_gpt2_regex();
  return re;
}

// ---------------------------------------------------------------------------------------------
// GPT-2's byte <-> printable character map (bytes_to_unicode in the original encoder.py)

const ByteMap& byte_map() {
  static const ByteMap m = [] {
    ByteMap bm;
    bm.cp_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      append_utf8(bm.byte_to_utf8[b], cp);
      bm.cp_to_byte[cp] = static_cast<int16_t>(b);
    }
    return bm;
  }();
  return m;
}

std::string bytes_to_token(std::string_view bytes) {
  const ByteMap& bm = byte_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += bm.byte_to_utf8[static_cast<unsigned char>(c)];
  return out;
}

// HF's ByteLevel decoder: every character maps back to its byte, unless one of them is not a
// byte's image, and then the token's own UTF-8 is used whole.
std::string token_to_bytes(std::string_view token) {
  const ByteMap& bm = byte_map();
  std::string out;
  for (size_t i = 0; i < token.size();) {
    const Utf8Step st = utf8_step(token, i);
    if (st.len < 0 || st.cp >= bm.cp_to_byte.size() || bm.cp_to_byte[st.cp] < 0)
      return std::string(token);
    out += static_cast<char>(bm.cp_to_byte[st.cp]);
    i += st.len;
  }
  return out;
}

}  // namespace causeway::tokenizer_text
