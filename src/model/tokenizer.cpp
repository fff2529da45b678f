// GPT-2 byte-level BPE. The reference is Hugging Face `tokenizers` (what transformers 5's
// GPT2Tokenizer runs): BPE::merge_word / Word::merge_all for the merge order, AddedVocabulary
// for special tokens, the ByteLevel pre-tokenizer and decoder. Where this file follows a quirk of
// that code on purpose, the comment says so.
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace causeway {

namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// UTF-8

struct CodeRange {
  char32_t first, last;
};

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

// One step of a UTF-8 decoder: the well-formed character at s[i] (len > 0), or the maximal
// ill-formed subpart there (len < 0, its length negated), the unit that Python's
// errors="replace" turns into one U+FFFD.
struct Utf8Step {
  char32_t cp;
  int len;
};

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
  const std::string pattern = gpt2_pattern();
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error("tokenizer: GPT-2 regex does not compile at offset " +
                std::to_string(err_offset) + ": " + reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // failure (no JIT) leaves the interpreter
  return {code, pcre2_code_free};
}

// Compiled once per process: the code is read-only and pcre2_match is thread-safe on it.
std::shared_ptr<const pcre2_code> gpt2_regex() {
  static const std::shared_ptr<const pcre2_code> re = compile_gpt2_regex();
  return re;
}

struct MatchData {
  explicit MatchData(const pcre2_code* code)
      : md(pcre2_match_data_create_from_pattern(code, nullptr)) {
    if (!md) throw std::bad_alloc();
  }
  ~MatchData() { pcre2_match_data_free(md); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* md;
};

// ---------------------------------------------------------------------------------------------
// GPT-2's byte <-> printable character map (bytes_to_unicode in the original encoder.py)

struct ByteMap {
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 0x144> cp_to_byte;  // -1 where the code point is no byte's image
};

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

// ---------------------------------------------------------------------------------------------
// Tables

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Merge {
  uint32_t rank;
  int32_t new_id;
};
using MergeMap = std::unordered_map<uint64_t, Merge>;

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct AddedToken {
  std::string content;
  int32_t id;
  bool lstrip = false, rstrip = false, normalized = false;
};

// A value from a file, shortened so one bad entry cannot flood the message.
std::string show(std::string_view s) {
  std::string q(1, '"');
  q.append(s.substr(0, 60)).append(s.size() > 60 ? "...\"" : "\"");
  return q;
}

// Arrays and objects are named, not printed: a deeply nested value would recurse in dump().
std::string show(const json& v) {
  if (v.is_array()) return "an array of " + std::to_string(v.size());
  if (v.is_object()) return "an object";
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

constexpr int64_t kMaxTokenId = std::numeric_limits<int32_t>::max() - 1;

int32_t parse_token_id(const json& v, const std::string& file, const std::string& field) {
  if (!v.is_number_integer())
    throw InputError(file, field, "token id must be an integer, got " + show(v));
  const bool negative = v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0;
  if (negative || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(kMaxTokenId)))
    throw InputError(file, field,
                     "token id " + show(v) + " is outside [0, " + std::to_string(kMaxTokenId) + "]");
  return static_cast<int32_t>(v.get<int64_t>());
}

Vocab parse_vocab(const json& obj, const std::string& file, const std::string& prefix) {
  if (!obj.is_object())
    throw InputError(file, prefix.empty() ? "" : prefix,
                     "the vocabulary must be a JSON object {token: id}, got " + show(obj));
  Vocab vocab;
  vocab.reserve(obj.size());
  for (const auto& [token, id] : obj.items())
    vocab[token] = parse_token_id(id, file, prefix + show(std::string_view(token)));
  return vocab;
}

json parse_json(std::string_view text, const std::string& file) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(file, "", std::string("malformed JSON: ") + e.what());
  }
}

// Like HF's BpeBuilder: a merge whose parts or result are not tokens is an error, and a pair
// listed twice keeps its last rank (the merge map is built by inserting in order).
void add_merge(MergeMap& merges, const Vocab& vocab, std::string_view a, std::string_view b,
               uint32_t rank, const std::string& file, const std::string& field) {
  auto id_of = [&](std::string_view tok) {
    const auto it = vocab.find(tok);
    if (it == vocab.end())
      throw InputError(file, field, "merge token " + show(tok) + " is not in the vocabulary");
    return it->second;
  };
  const int32_t ia = id_of(a), ib = id_of(b);
  const int32_t merged = id_of(std::string(a) + std::string(b));
  merges[pair_key(ia, ib)] = Merge{rank, merged};
}

// merges.txt as HF reads it (BPE::read_file): lines split on '\n' with one "\r" before it
// dropped, lines starting with "#version" skipped, every other line exactly "a b".
MergeMap parse_merges_txt(std::string_view text, const Vocab& vocab, const std::string& file) {
  MergeMap merges;
  size_t line_no = 0;
  uint32_t rank = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    ++line_no;
    if (end != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("#version")) continue;
    const std::string field = "line " + std::to_string(line_no);
    if (!is_valid_utf8(line)) throw InputError(file, field, "not valid UTF-8");
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos)
      throw InputError(file, field,
                       "expected two tokens separated by one space, got " + show(line));
    add_merge(merges, vocab, line.substr(0, sp), line.substr(sp + 1), rank++, file, field);
  }
  return merges;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Tokenizer::Impl {
  Vocab vocab;                                     // byte-level token string -> id
  MergeMap merges;                                 // (left id, right id) -> rank, merged id
  std::array<int32_t, 256> byte_id{};              // the id of each single-byte token, or -1
  std::vector<AddedToken> added;                   // matched in the text before the regex
  std::unordered_map<int32_t, std::string> text_of_id;  // decoded bytes of every token
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> id_of_text;
  std::optional<int32_t> unk_id;
  bool fuse_unk = false;
  bool ignore_merges = false;  // HF's option: a piece that is itself a token skips BPE
  bool add_prefix_space = false;
  bool use_regex = true;
  int32_t size = 0;
  std::optional<int32_t> eos;
  std::shared_ptr<const pcre2_code> regex = gpt2_regex();

  void finish();
};

// Tables derived from vocab + added tokens. Decoding goes through the ByteLevel decoder for
// added tokens too, as HF's does.
void Tokenizer::Impl::finish() {
  const ByteMap& bm = byte_map();
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab.find(bm.byte_to_utf8[b]);
    byte_id[b] = it == vocab.end() ? -1 : it->second;
  }
  std::vector<std::pair<int32_t, const std::string*>> by_id;
  by_id.reserve(vocab.size() + added.size());
  for (const auto& [tok, id] : vocab) by_id.emplace_back(id, &tok);
  std::sort(by_id.begin(), by_id.end(),
            [](const auto& x, const auto& y) { return x.first != y.first ? x.first < y.first : *x.second < *y.second; });
  for (const AddedToken& t : added) by_id.emplace_back(t.id, &t.content);  // last wins below
  for (const auto& [id, tok] : by_id) text_of_id[id] = token_to_bytes(*tok);
  for (const auto& [id, text] : text_of_id) {
    auto [it, fresh] = id_of_text.try_emplace(text, id);
    if (!fresh) it->second = std::min(it->second, id);  // lowest id for equal texts
  }
  for (const AddedToken& t : added) id_of_text[token_to_bytes(t.content)] = t.id;
  for (const auto& entry : by_id) size = std::max(size, entry.first + 1);
  const auto eot = id_of_text.find(std::string_view("<|endoftext|>"));
  if (eot != id_of_text.end()) eos = eot->second;
}

namespace {

// ---------------------------------------------------------------------------------------------
// tokenizer.json

bool flag(const json& obj, const char* key, bool fallback, const std::string& file,
          const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  if (!obj[key].is_boolean())
    throw InputError(file, where + "." + key, "must be true or false, got " + show(obj[key]));
  return obj[key].get<bool>();
}

std::string string_or_empty(const json& obj, const char* key, const std::string& file,
                            const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return "";
  if (!obj[key].is_string())
    throw InputError(file, where + "." + key, "must be a string, got " + show(obj[key]));
  return obj[key].get<std::string>();
}

void check_supported_model(const json& model, const std::string& file) {
  if (string_or_empty(model, "type", file, "model") != "BPE" && model.contains("type"))
    throw InputError(file, "model.type",
                     "only BPE models are supported, got " + show(model["type"]));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!string_or_empty(model, key, file, "model").empty())
      throw InputError(file, std::string("model.") + key, "must be empty for byte-level BPE");
  if (flag(model, "byte_fallback", false, file, "model"))
    throw InputError(file, "model.byte_fallback", "byte fallback is not supported");
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    throw InputError(file, "model.dropout", "BPE dropout is not supported, got " + show(model["dropout"]));
}

// A pipeline component by its "type", e.g. "NFC" for {"type": "NFC", ...}.
std::string component_name(const json& c) {
  if (c.is_object() && c.contains("type") && c["type"].is_string()) return show(c["type"]);
  return show(c);
}

void read_pipeline(const json& root, Tokenizer::Impl& t, const std::string& file) {
  if (root.contains("normalizer") && !root["normalizer"].is_null())
    throw InputError(file, "normalizer",
                     "normalizers are not supported (GPT-2 has none), got " +
                         component_name(root["normalizer"]));
  const json* pre = root.contains("pre_tokenizer") ? &root["pre_tokenizer"] : nullptr;
  if (!pre || !pre->is_object() || string_or_empty(*pre, "type", file, "pre_tokenizer") != "ByteLevel")
    throw InputError(file, "pre_tokenizer",
                     "only the ByteLevel pre-tokenizer is supported, got " +
                         (pre ? component_name(*pre) : std::string("nothing")));
  t.add_prefix_space = flag(*pre, "add_prefix_space", true, file, "pre_tokenizer");
  t.use_regex = flag(*pre, "use_regex", true, file, "pre_tokenizer");
}

void read_merges_json(const json& model, Tokenizer::Impl& t, const std::string& file) {
  if (!model.contains("merges") || model["merges"].is_null()) return;
  const json& merges = model["merges"];
  if (!merges.is_array())
    throw InputError(file, "model.merges", "must be an array, got " + show(merges));
  t.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string field = "model.merges[" + std::to_string(i) + "]";
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw InputError(file, field, "expected two tokens separated by one space, got " + show(m));
      add_merge(t.merges, t.vocab, std::string_view(s).substr(0, sp),
                std::string_view(s).substr(sp + 1), static_cast<uint32_t>(i), file, field);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      add_merge(t.merges, t.vocab, m[0].get_ref<const std::string&>(),
                m[1].get_ref<const std::string&>(), static_cast<uint32_t>(i), file, field);
    } else {
      throw InputError(file, field, "expected \"a b\" or [\"a\", \"b\"], got " + show(m));
    }
  }
}

// The id HF gives an added token: its vocabulary id if its text is a token, else the next id
// after the vocabulary and the added tokens so far (AddedVocabulary::add_tokens). The file's
// "id" field is not used, only checked: HF ignores it too (and logs a warning if it differs).
int32_t added_token_id(const Tokenizer::Impl& t, const std::string& content, const std::string& file,
                       const std::string& where) {
  for (const AddedToken& a : t.added)
    if (a.content == content) return a.id;
  const auto it = t.vocab.find(content);
  if (it != t.vocab.end()) return it->second;
  const auto vocab_count = static_cast<int64_t>(t.vocab.size());
  int64_t id = vocab_count;
  if (!t.added.empty()) {
    int64_t max_id = 0;
    for (const AddedToken& a : t.added) max_id = std::max<int64_t>(max_id, a.id);
    if (max_id >= vocab_count || vocab_count == 0) id = max_id + 1;
  }
  if (id > kMaxTokenId) throw InputError(file, where, "too many tokens for 32-bit ids");
  return static_cast<int32_t>(id);
}

AddedToken read_added_token(const Tokenizer::Impl& t, const json& a, const std::string& file,
                            const std::string& where) {
  if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string())
    throw InputError(file, where, "expected {\"id\": int, \"content\": string, ...}, got " + show(a));
  parse_token_id(a["id"], file, where + ".id");
  if (flag(a, "single_word", false, file, where))
    throw InputError(file, where + ".single_word", "single_word added tokens are not supported");
  AddedToken tok{a["content"].get<std::string>(), 0};
  tok.id = added_token_id(t, tok.content, file, where);
  tok.lstrip = flag(a, "lstrip", false, file, where);
  tok.rstrip = flag(a, "rstrip", false, file, where);
  tok.normalized = flag(a, "normalized", !flag(a, "special", false, file, where), file, where);
  return tok;
}

void read_added_tokens(const json& root, Tokenizer::Impl& t, const std::string& file) {
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return;
  const json& list = root["added_tokens"];
  if (!list.is_array())
    throw InputError(file, "added_tokens", "must be an array, got " + show(list));
  for (size_t i = 0; i < list.size(); ++i) {
    AddedToken tok = read_added_token(t, list[i], file, "added_tokens[" + std::to_string(i) + "]");
    if (tok.content.empty()) continue;  // HF skips these
    const auto same = std::find_if(t.added.begin(), t.added.end(),
                                   [&](const AddedToken& a) { return a.content == tok.content; });
    if (same != t.added.end())
      *same = std::move(tok);  // a repeated text keeps its id, takes the new flags
    else
      t.added.push_back(std::move(tok));
  }
}

void read_unk(const json& model, Tokenizer::Impl& t, const std::string& file) {
  const std::string unk = string_or_empty(model, "unk_token", file, "model");
  t.fuse_unk = flag(model, "fuse_unk", false, file, "model");
  if (unk.empty()) return;
  const auto it = t.vocab.find(unk);
  if (it == t.vocab.end())
    throw InputError(file, "model.unk_token", show(std::string_view(unk)) + " is not in the vocabulary");
  t.unk_id = it->second;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "", "cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path.string(), "", "read error");
  return std::move(ss).str();
}

// ---------------------------------------------------------------------------------------------
// Encoding

bool is_white_space(char32_t cp) { return in_ranges(kWhiteSpace, cp); }

// Start of the run of whitespace that ends at `end` (not before `floor`); text is valid UTF-8.
size_t white_space_start(std::string_view text, size_t floor, size_t end) {
  while (end > floor) {
    size_t b = end - 1;
    while (b > floor && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
    const Utf8Step st = utf8_step(text, b);
    if (st.len <= 0 || !is_white_space(st.cp)) break;
    end = b;
  }
  return end;
}

size_t white_space_end(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    const Utf8Step st = utf8_step(text, begin);
    if (st.len <= 0 || !is_white_space(st.cp)) break;
    begin += st.len;
  }
  return begin;
}

struct Segment {
  size_t begin, end;
  int32_t added_id;  // -1: ordinary text
};

// HF's AddedVocabulary::find_matches over one text segment: leftmost-longest matches of the
// given tokens, widened by lstrip / rstrip over whitespace. As in HF, a token that starts in
// whitespace the previous token's rstrip took is still a match, cut to what is left of it,
// and dropped if nothing is.
void split_on_added(std::string_view text, Segment seg, std::span<const AddedToken* const> tokens,
                    std::vector<Segment>& out) {
  const std::string_view window = text.substr(0, seg.end);
  std::vector<size_t> next;  // next occurrence of each token at or after pos
  for (const AddedToken* tok : tokens) next.push_back(window.find(tok->content, seg.begin));
  size_t pos = seg.begin, done = seg.begin;
  for (;;) {
    size_t best = std::string_view::npos, best_k = 0;
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (next[k] != std::string_view::npos && next[k] < pos)
        next[k] = window.find(tokens[k]->content, pos);
      if (next[k] == std::string_view::npos) continue;
      if (next[k] < best || (next[k] == best && tokens[k]->content.size() > tokens[best_k]->content.size()))
        best = next[k], best_k = k;
    }
    if (best == std::string_view::npos) break;
    const AddedToken& tok = *tokens[best_k];
    pos = best + tok.content.size();  // matches do not see the whitespace that rstrip takes
    size_t start = best, stop = pos;
    if (tok.lstrip) start = std::max(white_space_start(window, seg.begin, start), done);
    if (tok.rstrip) stop = white_space_end(window, stop);
    if (done < start) out.push_back({done, start, -1});
    if (start < stop) out.push_back({start, stop, tok.id});  // HF drops emptied splits
    done = stop;  // after an overlapping match this re-reads text, as HF does
  }
  if (done < seg.end) out.push_back({done, seg.end, -1});
}

// Two passes like HF: tokens that match the raw text first, then `normalized` ones (the same
// text here, since there is no normalizer) inside the remaining segments.
std::vector<Segment> split_added(const Tokenizer::Impl& t, std::string_view text) {
  std::vector<const AddedToken*> raw, normalized;
  for (const AddedToken& a : t.added) (a.normalized ? normalized : raw).push_back(&a);
  std::vector<Segment> first, out;
  split_on_added(text, {0, text.size(), -1}, raw, first);
  for (const Segment& s : first) {
    if (s.added_id >= 0)
      out.push_back(s);
    else
      split_on_added(text, s, normalized, out);
  }
  return out;
}

// Calls fn(piece) for each regex piece of one segment, as HF's Split with Isolated behaviour
// (unmatched gaps would be pieces too; GPT-2's pattern leaves none).
template <typename Fn>
void for_each_regex_piece(const Tokenizer::Impl& t, pcre2_match_data* md, std::string_view seg, Fn&& fn) {
  if (!t.use_regex) {
    fn(seg);
    return;
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(seg.data());
  for (size_t pos = 0; pos < seg.size();) {
    const int rc = pcre2_match(t.regex.get(), subject, seg.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) {
      fn(seg.substr(pos));
      return;
    }
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(std::string("tokenizer: regex match failed: ") + reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[0] > pos) fn(seg.substr(pos, ov[0] - pos));
    if (ov[1] <= ov[0]) throw Error("tokenizer: the GPT-2 regex matched an empty piece");
    fn(seg.substr(ov[0], ov[1] - ov[0]));
    pos = ov[1];
  }
}

// Calls fn(piece, added_id) for every piece of valid UTF-8 text, added_id -1 for BPE pieces.
template <typename Fn>
void for_each_piece(const Tokenizer::Impl& t, std::string_view text, Fn&& fn) {
  MatchData match(t.regex.get());
  std::string prefixed;
  for (const Segment& s : split_added(t, text)) {
    std::string_view seg = text.substr(s.begin, s.end - s.begin);
    if (s.added_id >= 0) {
      fn(seg, s.added_id);
      continue;
    }
    if (t.add_prefix_space && !seg.starts_with(' ')) {  // HF adds it per segment
      prefixed.assign(1, ' ').append(seg);
      seg = prefixed;
    }
    for_each_regex_piece(t, match.md, seg, [&](std::string_view piece) { fn(piece, -1); });
  }
}

// BPE of one piece, merge for merge as HF's Word::merge_all: a heap of candidate pairs ordered
// by (rank, position); a popped pair is applied only if its two symbols still merge into the
// same id. Scratch buffers and a word cache live for one encode() call.
class PieceEncoder {
 public:
  explicit PieceEncoder(const Tokenizer::Impl& t) : t_(t) {}

  void encode(std::string_view piece, std::vector<int32_t>& out) {
    const bool cacheable = piece.size() <= kMaxCachedBytes;
    if (cacheable) {
      const auto hit = cache_.find(piece);
      if (hit != cache_.end()) {
        out.insert(out.end(), hit->second.begin(), hit->second.end());
        return;
      }
    }
    const size_t first = out.size();
    if (!whole_token(piece, out)) {
      init_symbols(piece);
      merge_all();
      for (const Symbol& s : symbols_)
        if (s.len > 0) out.push_back(s.id);
    }
    if (cacheable) cache_.emplace(std::string(piece), std::vector<int32_t>(out.begin() + first, out.end()));
  }

 private:
  static constexpr size_t kMaxCachedBytes = 256;
  struct Symbol {
    int32_t id, prev, next, len;
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  bool whole_token(std::string_view piece, std::vector<int32_t>& out) const {
    if (!t_.ignore_merges) return false;
    const auto it = t_.vocab.find(bytes_to_token(piece));
    if (it == t_.vocab.end()) return false;
    out.push_back(it->second);
    return true;
  }

  void add_symbol(int32_t id, int32_t len) {
    const auto n = static_cast<int32_t>(symbols_.size());
    if (n > 0) symbols_.back().next = n;
    symbols_.push_back({id, n - 1, -1, len});
  }

  // One symbol per byte whose token exists; a missing byte becomes the unk token if there is
  // one (runs fused under fuse_unk), else it is dropped, as in HF's merge_word.
  void init_symbols(std::string_view piece) {
    symbols_.clear();
    int32_t pending_unk = 0;
    for (char c : piece) {
      const int32_t id = t_.byte_id[static_cast<unsigned char>(c)];
      if (id >= 0) {
        if (pending_unk) add_symbol(*t_.unk_id, pending_unk), pending_unk = 0;
        add_symbol(id, 1);
      } else if (t_.unk_id) {
        if (pending_unk && !t_.fuse_unk) add_symbol(*t_.unk_id, pending_unk), pending_unk = 0;
        ++pending_unk;
      }
    }
    if (pending_unk) add_symbol(*t_.unk_id, pending_unk);
  }

  void push_pair(int32_t left) {
    const Symbol& l = symbols_[left];
    if (l.next < 0) return;
    const auto it = t_.merges.find(pair_key(l.id, symbols_[l.next].id));
    if (it == t_.merges.end()) return;
    heap_.push_back({it->second.rank, left, it->second.new_id});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
  }

  void merge_all() {
    heap_.clear();
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols_.size()); ++i) push_pair(i);
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
      const Candidate top = heap_.back();
      heap_.pop_back();
      Symbol& l = symbols_[top.pos];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = symbols_[l.next];
      const auto it = t_.merges.find(pair_key(l.id, r.id));
      if (it == t_.merges.end() || it->second.new_id != top.new_id) continue;
      l.id = top.new_id;
      l.len += r.len;
      l.next = r.next;
      r.len = 0;
      if (l.next >= 0) symbols_[l.next].prev = top.pos;
      if (l.prev >= 0) push_pair(l.prev);
      push_pair(top.pos);
    }
  }

  const Tokenizer::Impl& t_;
  std::vector<Symbol> symbols_;
  std::vector<Candidate> heap_;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

// Text as HF would see it: valid UTF-8 as is, anything else through Python's errors="replace".
std::string_view usable_text(std::string_view utf8, std::string& storage) {
  if (is_valid_utf8(utf8)) return utf8;
  storage = replace_invalid_utf8(utf8);
  return storage;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loading

Tokenizer Tokenizer::from_strings(std::string_view vocab_json_text, std::string_view merges_text,
                                  const std::string& vocab_name, const std::string& merges_name) {
  auto t = std::make_shared<Impl>();
  t->vocab = parse_vocab(parse_json(vocab_json_text, vocab_name), vocab_name, "");
  t->merges = parse_merges_txt(merges_text, t->vocab, merges_name);
  // HF registers <|endoftext|> as GPT-2's special token (eos, bos and unk of GPT2Tokenizer).
  const auto eot = t->vocab.find(std::string_view("<|endoftext|>"));
  if (eot != t->vocab.end()) t->added.push_back({eot->first, eot->second});
  t->finish();
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_tokenizer_json_string(std::string_view json_text, const std::string& name) {
  const json root = parse_json(json_text, name);
  if (!root.is_object()) throw InputError(name, "", "must be a JSON object, got " + show(root));
  if (!root.contains("model") || !root["model"].is_object())
    throw InputError(name, "model", "missing or not an object");
  const json& model = root["model"];
  check_supported_model(model, name);
  auto t = std::make_shared<Impl>();
  read_pipeline(root, *t, name);
  if (!model.contains("vocab")) throw InputError(name, "model.vocab", "missing");
  t->vocab = parse_vocab(model["vocab"], name, "model.vocab.");
  read_merges_json(model, *t, name);
  read_added_tokens(root, *t, name);
  read_unk(model, *t, name);
  t->ignore_merges = flag(model, "ignore_merges", false, name, "model");
  t->finish();
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_files(const std::filesystem::path& vocab_json,
                                const std::filesystem::path& merges_txt) {
  const std::string vocab = read_file(vocab_json);  // vocab first: its errors come first
  return from_strings(vocab, read_file(merges_txt), vocab_json.string(), merges_txt.string());
}

Tokenizer Tokenizer::from_tokenizer_json(const std::filesystem::path& tokenizer_json) {
  return from_tokenizer_json_string(read_file(tokenizer_json), tokenizer_json.string());
}

Tokenizer Tokenizer::from_model_dir(const std::filesystem::path& dir) {
  const auto vocab = dir / "vocab.json", merges = dir / "merges.txt", tj = dir / "tokenizer.json";
  if (std::filesystem::is_regular_file(vocab) && std::filesystem::is_regular_file(merges))
    return from_files(vocab, merges);
  if (std::filesystem::is_regular_file(tj)) return from_tokenizer_json(tj);
  throw InputError(dir.string(), "",
                   "no tokenizer: expected vocab.json + merges.txt or tokenizer.json in this folder");
}

// ---------------------------------------------------------------------------------------------
// Use

std::vector<int32_t> Tokenizer::encode(std::string_view utf8) const {
  std::string storage;
  const std::string_view text = usable_text(utf8, storage);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  PieceEncoder bpe(*impl_);
  for_each_piece(*impl_, text, [&](std::string_view piece, int32_t added_id) {
    if (added_id >= 0)
      ids.push_back(added_id);
    else
      bpe.encode(piece, ids);
  });
  return ids;
}

std::vector<std::string> Tokenizer::pretokenize(std::string_view utf8) const {
  std::string storage;
  std::vector<std::string> pieces;
  for_each_piece(*impl_, usable_text(utf8, storage),
                 [&](std::string_view piece, int32_t) { pieces.emplace_back(piece); });
  return pieces;
}

std::string Tokenizer::token_text(int32_t id) const {
  const auto it = impl_->text_of_id.find(id);
  if (it == impl_->text_of_id.end())
    throw InputError("", "token id",
                     std::to_string(id) + " is not in the vocabulary (size " +
                         std::to_string(impl_->size) + ")");
  return it->second;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += token_text(id);
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->size; }

std::optional<int32_t> Tokenizer::token_id(std::string_view token_text) const {
  const auto it = impl_->id_of_text.find(token_text);
  if (it == impl_->id_of_text.end()) return std::nullopt;
  return it->second;
}

std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }

std::vector<std::pair<uint8_t, std::string>> gpt2_byte_alphabet() {
  // Images in code-point order are exactly GPT-2's numbering.
  const ByteMap& bm = byte_map();
  std::vector<std::pair<uint8_t, std::string>> out;
  for (size_t cp = 0; cp < bm.cp_to_byte.size(); ++cp)
    if (bm.cp_to_byte[cp] >= 0) {
      const auto b = static_cast<uint8_t>(bm.cp_to_byte[cp]);
      out.emplace_back(b, bm.byte_to_utf8[b]);
    }
  return out;
}

}  // namespace causeway
